//! Clicks served but not recorded: graceful degradation of the click store.
//!
//! A redirect is the product; its click comes second. When the click write
//! fails (the database is locked by another process past the busy timeout,
//! full, read-only, gone), the redirect is served anyway and the click is
//! counted here instead, so that **served = recorded + unrecorded** per link
//! and kind, always.
//!
//! The tally lives in a second SQLite database (Spin label
//! [`TALLY_LABEL`]), so it survives the click database being locked or
//! unwritable: one row per (slug, link creation time, kind), upserted in one
//! statement. Keying on the link's creation time keeps the count of a deleted
//! link away from a new link of the same slug, while the all-time totals (the
//! Prometheus counter) never go down.
//!
//! Also here: the `PRAGMA busy_timeout` that bounds a redirect's wait, and
//! the write probe `/health` uses to tell whether clicks can be recorded.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde::Serialize;

use crate::migrations::apply_pragma;
use crate::storage::{Rows, SqlStore, SqlValue, Statement, StoreError};

/// The Spin SQLite label of the tally database.
pub const TALLY_LABEL: &str = "unrecorded";

/// The tally's schema: idempotent, applied on first use by every instance.
pub const SCHEMA: [Statement; 1] = [Statement {
    sql: "CREATE TABLE IF NOT EXISTS unrecorded_clicks (slug TEXT NOT NULL, link_created_at TEXT NOT NULL, kind TEXT NOT NULL, clicks INTEGER NOT NULL, last_at INTEGER NOT NULL, PRIMARY KEY (slug, link_created_at, kind)) WITHOUT ROWID",
    operation: "CREATE",
    table: "unrecorded_clicks",
}];

/// One more unrecorded click: one statement, one transaction.
pub const TALLY: Statement = Statement {
    sql: "INSERT INTO unrecorded_clicks (slug, link_created_at, kind, clicks, last_at) VALUES (?1, ?2, ?3, 1, ?4) \
          ON CONFLICT (slug, link_created_at, kind) DO UPDATE SET clicks = clicks + 1, last_at = excluded.last_at",
    operation: "INSERT",
    table: "unrecorded_clicks",
};

const OF_LINK: Statement = Statement {
    sql: "SELECT kind, clicks FROM unrecorded_clicks WHERE slug = ?1 AND link_created_at = ?2",
    operation: "SELECT",
    table: "unrecorded_clicks",
};

const ALL_TIME: Statement = Statement {
    sql: "SELECT kind, sum(clicks) FROM unrecorded_clicks GROUP BY kind",
    operation: "SELECT",
    table: "unrecorded_clicks",
};

/// Unrecorded clicks by kind (`{"human": n, "bot": m}` in the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct ByKind {
    /// By humans.
    pub human: i64,
    /// By bots.
    pub bot: i64,
}

impl ByKind {
    fn from_rows(rows: &[Vec<SqlValue>]) -> Self {
        let mut out = Self::default();
        for row in rows {
            let n = row.get(1).and_then(SqlValue::as_i64).unwrap_or(0);
            match row.first().and_then(SqlValue::as_str) {
                Some("human") => out.human += n,
                Some("bot") => out.bot += n,
                _ => {}
            }
        }
        out
    }
}

/// `PRAGMA busy_timeout = ms`. The statement text must be `'static`; it is
/// made once per connection setup (once per Spin instance, whose memory goes
/// with it), so leaking these few bytes is bounded.
pub fn busy_timeout(ms: u32) -> Statement {
    Statement::pragma(Box::leak(
        format!("PRAGMA busy_timeout = {ms}").into_boxed_str(),
    ))
}

/// Sets the replica's local database up: WAL + `synchronous=NORMAL` like the
/// click database (a refused pragma is logged, not fatal), the tally's table
/// and the click outbox's ([`crate::outbox::SCHEMA`]).
pub async fn prepare(tally: &dyn SqlStore) -> Result<(), StoreError> {
    for pragma in &crate::migrations::PRAGMAS {
        apply_pragma(tally, pragma).await;
    }
    for statement in SCHEMA.iter().chain(&crate::outbox::SCHEMA) {
        tally.execute(statement, vec![]).await?;
    }
    Ok(())
}

/// The tally database, set up on its first use rather than by every
/// instance at start: it is written only when clicks are lost and read by
/// `/health`, `/metrics` and a link's `GET`, never by a redirect whose click
/// is recorded. The first statement applies the busy timeout and
/// [`prepare`]; until that succeeds, every statement tries it again (and
/// fails with its error), so a tally that comes back is used without a
/// restart. Concurrent first statements may both prepare: it is idempotent.
pub struct Tally<S> {
    inner: S,
    busy_timeout: Statement,
    ready: AtomicBool,
}

impl<S: SqlStore> Tally<S> {
    /// The tally over `inner`, its connections waiting `busy_timeout_ms`
    /// for a lock.
    pub fn new(inner: S, busy_timeout_ms: u32) -> Self {
        Self {
            inner,
            busy_timeout: busy_timeout(busy_timeout_ms),
            ready: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl<S: SqlStore> SqlStore for Tally<S> {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        if !self.ready.load(Ordering::Acquire) {
            apply_pragma(&self.inner, &self.busy_timeout).await;
            prepare(&self.inner).await?;
            self.ready.store(true, Ordering::Release);
        }
        self.inner.execute(statement, params).await
    }
}

/// Counts one click that was served but could not be recorded.
pub async fn tally(
    tally: &dyn SqlStore,
    slug: &str,
    link_created_at: &str,
    kind: &'static str,
    at_unix_ms: i64,
) -> Result<(), StoreError> {
    tally
        .execute(
            &TALLY,
            vec![
                slug.into(),
                link_created_at.into(),
                kind.into(),
                SqlValue::Integer(at_unix_ms),
            ],
        )
        .await
        .map(|_| ())
}

/// The unrecorded clicks of one link (this incarnation of its slug).
pub async fn of_link(
    tally: &dyn SqlStore,
    slug: &str,
    link_created_at: &str,
) -> Result<ByKind, StoreError> {
    let rows = tally
        .execute(&OF_LINK, vec![slug.into(), link_created_at.into()])
        .await?;
    Ok(ByKind::from_rows(&rows.rows))
}

/// All unrecorded clicks ever, deleted links included (for `/metrics`).
pub async fn all_time(tally: &dyn SqlStore) -> Result<ByKind, StoreError> {
    let rows = tally.execute(&ALL_TIME, vec![]).await?;
    Ok(ByKind::from_rows(&rows.rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::SqliteStore;

    async fn tally_db() -> (tempfile::TempDir, SqliteStore, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let main = SqliteStore::open(dir.path().join("clicks.db")).unwrap();
        let tally = SqliteStore::open(dir.path().join("unrecorded.db")).unwrap();
        main.execute(&busy_timeout(500), vec![]).await.unwrap();
        prepare(&tally).await.unwrap();
        (dir, main, tally)
    }

    #[tokio::test]
    async fn tallies_add_up_per_link_incarnation_and_kind() {
        let (_dir, _main, db) = tally_db().await;
        for kind in ["human", "human", "bot"] {
            tally(&db, "abc", "2030-01-01T00:00:00Z", kind, 1)
                .await
                .unwrap();
        }
        tally(&db, "abc", "2031-01-01T00:00:00Z", "human", 2)
            .await
            .unwrap();
        let first = of_link(&db, "abc", "2030-01-01T00:00:00Z").await.unwrap();
        assert_eq!(first, ByKind { human: 2, bot: 1 });
        let second = of_link(&db, "abc", "2031-01-01T00:00:00Z").await.unwrap();
        assert_eq!(second, ByKind { human: 1, bot: 0 });
        assert_eq!(all_time(&db).await.unwrap(), ByKind { human: 3, bot: 1 });
    }

    #[tokio::test]
    async fn a_link_with_no_lost_clicks_has_zeros() {
        let (_dir, _main, db) = tally_db().await;
        assert_eq!(of_link(&db, "x", "t").await.unwrap(), ByKind::default());
        assert_eq!(all_time(&db).await.unwrap(), ByKind::default());
    }

    #[tokio::test]
    async fn a_tally_that_could_not_be_set_up_fails_until_a_later_statement_sets_it_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("unrecorded.db")).unwrap();
        store.set_failing(true);
        let db = Tally::new(store, 250);
        assert!(tally(&db, "abc", "t", "human", 1).await.is_err());
        db.inner.set_failing(false);
        tally(&db, "abc", "t", "human", 2).await.unwrap();
        assert_eq!(
            of_link(&db, "abc", "t").await.unwrap(),
            ByKind { human: 1, bot: 0 }
        );
        let wait = Statement::pragma("PRAGMA busy_timeout");
        assert_eq!(db.execute(&wait, vec![]).await.unwrap().scalar_i64(), 250);
    }

    #[tokio::test]
    async fn the_busy_timeout_pragma_sets_the_connections_wait() {
        let (_dir, main, _tally) = tally_db().await;
        let read = Statement::pragma("PRAGMA busy_timeout");
        let rows = main.execute(&read, vec![]).await.unwrap();
        assert_eq!(rows.scalar_i64(), 500);
    }
}
