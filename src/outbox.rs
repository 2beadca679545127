//! The click outbox: with a click database shared over the network (sqld),
//! a redirect writes its click on its own replica first and the clicks
//! reach the shared database in batches.
//!
//! A remote statement costs a round trip and sqld applies writes one at a
//! time, so one remote INSERT per click caps every replica together at what
//! one sqld connection can take (~470 clicks/s here, docs/spin-platform.md).
//! With `click_outbox = "true"` a redirect's click is instead one INSERT
//! into the `outbox` table of the replica's local database (the Spin label
//! [`crate::unrecorded::TALLY_LABEL`], a local file on each replica), at the
//! cost of the benchmark's floor. Then:
//!
//! * **Shipping.** [`ship_batch`] reads the oldest [`SHIP_BATCH`] clicks of
//!   the outbox as one JSON text ([`BATCH`]), sends them to the shared
//!   database as one statement ([`SHIP`]), and only then deletes them from
//!   the outbox ([`SHIPPED`]). The clicks stay on the replica's disk until
//!   the shared database has committed them, so nothing is lost when it is
//!   down, when the answer is lost, or when the instance goes away.
//! * **Exactly once.** Each click carries its origin: the replica's random
//!   id (made once, in its outbox database) and its number there (an
//!   `AUTOINCREMENT` key, never reused even once the outbox is empty). The
//!   shared database keeps one click per origin (a unique index, migration
//!   10), so a batch sent twice, by a retry or by two instances of the
//!   replica at once, inserts each click once.
//! * **Who ships.** Spin runs no background task and does not wait for work
//!   after a response, so shipping happens inside requests, and none can
//!   lose a batch (the outbox keeps it until it is committed):
//!   - the redirect whose click number is a multiple of [`SHIP_EVERY`]
//!     ships one batch before it answers (then folds one rollup batch);
//!   - every read of the analytics and every `/metrics` scrape ships this
//!     replica's whole outbox first ([`ship_for_read`]), so a replica's own
//!     clicks are in what it reads, and an idle replica's tail leaves at
//!     the next scrape.
//! * **While the shared database is down** redirects are still served:
//!   their clicks wait in the outbox, each due ship fails fast and is
//!   logged, and the next one after recovery ships the backlog
//!   ([`SHIP_BATCH`] per due redirect: [`SHIP_BATCH`] / [`SHIP_EVERY`]
//!   times the arrival rate). `/health`, `/metrics` and the stats show the
//!   backlog and its age ([`backlog`]).
//!
//! Links with a `max_clicks` are counted in the shared database directly
//! (`clicks::RECORD_LIMITED`): the limit holds across replicas, and such a
//! redirect answers 503 while that database is down.

use serde::{Deserialize, Serialize};

use crate::clicks::Click;
use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// The outbox's tables in the replica's local database, created with the
/// unrecorded tally's ([`crate::unrecorded::prepare`]): the clicks waiting
/// to be shipped, and the replica's id, drawn once.
pub const SCHEMA: [Statement; 3] = [
    Statement {
        sql: "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, slug TEXT NOT NULL, at INTEGER NOT NULL, \
              day TEXT NOT NULL, referrer_host TEXT, browser TEXT NOT NULL, os TEXT NOT NULL, is_bot INTEGER NOT NULL, \
              visitor TEXT NOT NULL, rule INTEGER)",
        operation: "CREATE",
        table: "outbox",
    },
    Statement {
        sql: "CREATE TABLE IF NOT EXISTS outbox_replica (id INTEGER PRIMARY KEY CHECK (id = 1), replica TEXT NOT NULL)",
        operation: "CREATE",
        table: "outbox_replica",
    },
    Statement {
        sql: "INSERT OR IGNORE INTO outbox_replica (id, replica) VALUES (1, lower(hex(randomblob(8))))",
        operation: "INSERT",
        table: "outbox_replica",
    },
];

/// A click into the outbox; returns its number.
pub const PUT: Statement = Statement {
    sql: "INSERT INTO outbox (slug, at, day, referrer_host, browser, os, is_bot, visitor, rule) \
          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq",
    operation: "INSERT",
    table: "outbox",
};

/// The oldest at most `?1` clicks of the outbox, as one row: the replica's
/// id, the newest click number among them, their count, and the clicks as
/// one JSON array of `[seq, slug, at, day, referrer_host, browser, os,
/// is_bot, visitor, rule]` arrays (one text parameter for [`SHIP`], so the
/// shared database compiles one statement whatever the batch's size).
pub const BATCH: Statement = Statement {
    sql: "SELECT (SELECT replica FROM outbox_replica WHERE id = 1), max(seq), count(*), \
          json_group_array(json_array(seq, slug, at, day, referrer_host, browser, os, is_bot, visitor, rule)) \
          FROM (SELECT * FROM outbox ORDER BY seq LIMIT ?1)",
    operation: "SELECT",
    table: "outbox",
};

/// A batch into the shared click database (`?1` the replica, `?2` the
/// clicks of [`BATCH`]), each click once per origin. As in
/// `clicks::RECORD`, a click whose link is no longer registered is dropped.
pub const SHIP: Statement = Statement {
    sql: "INSERT INTO clicks (slug, at, day, referrer_host, browser, os, is_bot, visitor, rule, origin, origin_seq) \
          SELECT json_extract(b.value, '$[1]'), json_extract(b.value, '$[2]'), json_extract(b.value, '$[3]'), \
                 json_extract(b.value, '$[4]'), json_extract(b.value, '$[5]'), json_extract(b.value, '$[6]'), \
                 json_extract(b.value, '$[7]'), json_extract(b.value, '$[8]'), json_extract(b.value, '$[9]'), \
                 ?1, json_extract(b.value, '$[0]') \
          FROM json_each(?2) AS b \
          WHERE EXISTS (SELECT 1 FROM links WHERE slug = json_extract(b.value, '$[1]')) \
          ORDER BY b.key \
          ON CONFLICT (origin, origin_seq) WHERE origin IS NOT NULL DO NOTHING",
    operation: "INSERT",
    table: "clicks",
};

/// Drops the clicks up to `?1` from the outbox, once they are committed in
/// the shared database.
pub const SHIPPED: Statement = Statement {
    sql: "DELETE FROM outbox WHERE seq <= ?1",
    operation: "DELETE",
    table: "outbox",
};

const BACKLOG: Statement = Statement {
    sql: "SELECT count(*), min(at) FROM outbox",
    operation: "SELECT",
    table: "outbox",
};

/// The most clicks one ship statement carries.
pub const SHIP_BATCH: i64 = 1024;

/// The redirect whose click number is a multiple of this ships one batch.
pub const SHIP_EVERY: i64 = 256;

/// The most batches a read ships before it answers: past that it reads
/// with the rest of the backlog declared ([`backlog`]).
const MAX_BATCHES: usize = 32;

/// The clicks of this replica not yet in the shared database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many.
    pub clicks: i64,
    /// The oldest one's time (Unix milliseconds); `None` when there is none.
    pub oldest_at_ms: Option<i64>,
}

impl Backlog {
    /// How old the oldest waiting click is at `now_ms`, in seconds (0 when
    /// none waits).
    pub fn age_seconds(&self, now_ms: i64) -> f64 {
        self.oldest_at_ms
            .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0)
    }

    /// What a read at `now_ms` says about it.
    pub fn lag(&self, now_ms: i64) -> Lag {
        Lag {
            unshipped_clicks: self.clicks,
            oldest_unshipped_age_seconds: self.age_seconds(now_ms),
            oldest_unshipped_at: self
                .oldest_at_ms
                .and_then(|ms| {
                    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                })
                .map(crate::links::rfc3339),
        }
    }
}

/// How far behind a read is: this replica's clicks it does not count yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Lag {
    /// Clicks served by this replica and waiting in its outbox.
    pub unshipped_clicks: i64,
    /// When the oldest of them was served (RFC 3339); absent when none waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_unshipped_at: Option<String>,
    /// How long ago that was, in seconds (0 when none waits).
    pub oldest_unshipped_age_seconds: f64,
}

/// Writes `click` into the outbox; returns its number.
pub async fn put(local: &dyn SqlStore, click: &Click<'_>) -> Result<i64, StoreError> {
    let mut params = click.values();
    params.push(click.rule.map(|r| r as i64).into());
    let rows = local.execute(&PUT, params).await?;
    Ok(rows.scalar_i64())
}

/// Whether the redirect that put click `seq` ships a batch.
pub fn due(seq: i64) -> bool {
    seq > 0 && seq % SHIP_EVERY == 0
}

/// Ships the oldest batch of the outbox to `central`; returns how many
/// clicks it carried (0: the outbox is empty). On an error nothing is
/// dropped from the outbox; what `central` may have committed is dropped
/// by its unique origin when the batch is sent again.
pub async fn ship_batch(local: &dyn SqlStore, central: &dyn SqlStore) -> Result<i64, StoreError> {
    let rows = local
        .execute(&BATCH, vec![SqlValue::Integer(SHIP_BATCH)])
        .await?;
    let Some(row) = rows.rows.into_iter().next() else {
        return Ok(0);
    };
    let mut row = row.into_iter();
    let (replica, upto, count, clicks) = (row.next(), row.next(), row.next(), row.next());
    // An empty outbox has no newest click (`max(seq)` is NULL).
    let (Some(replica), Some(SqlValue::Integer(upto)), Some(clicks)) = (replica, upto, clicks)
    else {
        return Ok(0);
    };
    let count = count.as_ref().and_then(SqlValue::as_i64).unwrap_or(0);
    central.execute(&SHIP, vec![replica, clicks]).await?;
    local
        .execute(&SHIPPED, vec![SqlValue::Integer(upto)])
        .await?;
    Ok(count)
}

/// Ships the whole outbox (at most [`MAX_BATCHES`] batches).
pub async fn ship_all(local: &dyn SqlStore, central: &dyn SqlStore) -> Result<(), StoreError> {
    for _ in 0..MAX_BATCHES {
        if ship_batch(local, central).await? < SHIP_BATCH {
            return Ok(());
        }
    }
    Ok(())
}

/// This replica's backlog.
pub async fn backlog(local: &dyn SqlStore) -> Result<Backlog, StoreError> {
    let rows = local.execute(&BACKLOG, vec![]).await?;
    let row = rows.rows.first();
    Ok(Backlog {
        clicks: row
            .and_then(|r| r.first())
            .and_then(SqlValue::as_i64)
            .unwrap_or(0),
        oldest_at_ms: row.and_then(|r| r.get(1)).and_then(SqlValue::as_i64),
    })
}

/// Before a read of the analytics (stats, totals, the list, the export,
/// `/metrics`): with an outbox, ships this replica's whole outbox, so that
/// the read counts this replica's clicks. A failure (the shared database is
/// down) is logged, and the read answers without the backlog, which it
/// declares ([`backlog`]).
pub async fn ship_for_read(app: &crate::App) {
    if !app.settings.click_outbox {
        return;
    }
    let shipped = match ensure_schema(app).await {
        Ok(()) => ship_all(app.unrecorded.as_ref(), app.sql.as_ref()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = shipped {
        tracing::warn!(error = %e, "outbox not shipped before a read: the read declares the backlog");
    }
}

/// Migrates the click database first when this instance started while it
/// was unreachable: with an outbox the host keeps such an instance's router
/// (its redirects need only the outbox), and the schema must be in place
/// before a batch or a read reaches the click database.
pub async fn ensure_schema(app: &crate::App) -> Result<(), StoreError> {
    if app.schema_ready() {
        return Ok(());
    }
    crate::migrate(app).await.map(drop)
}

/// With an outbox, what a read that [`ship_for_read`] preceded does not
/// count yet (`None` without an outbox, or when the outbox cannot be read:
/// logged).
pub async fn lag(app: &crate::App) -> Option<Lag> {
    if !app.settings.click_outbox {
        return None;
    }
    match backlog(app.unrecorded.as_ref()).await {
        Ok(backlog) => Some(backlog.lag(app.now_ms())),
        Err(e) => {
            tracing::warn!(error = %e, "outbox backlog not read");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_ships_every_ship_every_th_click() {
        assert!(!due(0));
        assert!(!due(1));
        assert!(due(SHIP_EVERY));
        assert!(!due(SHIP_EVERY + 1));
        assert!(due(4 * SHIP_EVERY));
    }

    #[test]
    fn the_backlogs_age_is_that_of_its_oldest_click() {
        let none = Backlog::default();
        assert_eq!(none.age_seconds(10_000), 0.0);
        let some = Backlog {
            clicks: 3,
            oldest_at_ms: Some(4_000),
        };
        assert_eq!(some.age_seconds(10_000), 6.0);
        assert_eq!(some.age_seconds(1_000), 0.0);
    }
}
