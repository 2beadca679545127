//! The click rollups, folded off the redirect path.
//!
//! A click is one INSERT into the append-only `clicks` table, as in the
//! benchmark's floor: no rollup is touched while a redirect waits. The
//! rollups (`daily_clicks`, `daily_dimensions`, `link_dimensions`) hold every
//! click up to `rollup_watermark.folded_up_to`; [`FOLD`] moves the watermark
//! over the next batch of clicks in one statement, whose trigger
//! (`rollup_fold`, migration 9) adds the batch to the rollups with the same
//! visitor rule and the same breakdown cap the per-click trigger had, so
//! every analytics answer is what it was (the per-link click total of the
//! registry, kept by triggers on `daily_clicks`, follows the fold).
//!
//! Who folds:
//! * every read of a rollup or of a click total ([`fold_for_read`]: stats,
//!   a link's total, the list, the links export, `/metrics`), so each
//!   counts every click committed before it began;
//! * a redirect whose click id is a multiple of [`FOLD_EVERY`] folds one
//!   batch after its click (still before it answers: Spin does not wait
//!   for work after the response), so the unfolded tail stays about
//!   [`FOLD_EVERY`] clicks long even when nothing reads.
//!
//! A fold is a write: while another connection holds the write lock past
//! the busy timeout (or the database refuses writes), reads answer from the
//! rollups as they are, logged. A link's own total still counts the clicks
//! after the watermark (`analytics::link_total` adds them); its stats, the
//! list's totals and `/metrics` catch up at the next fold.
//!
//! Folds are serialised by SQLite's write lock and each starts at the
//! watermark the previous one left: concurrent folds never count a click
//! twice, and a failed fold changes nothing (one statement, one
//! transaction).

use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// Folds the next at most `?1` unfolded clicks into the rollups and moves
/// the watermark past them; returns the new watermark and the number of
/// clicks folded, or no row when nothing was left to fold.
pub const FOLD: Statement = Statement {
    sql: "INSERT INTO rollup_folds (upto, clicks) \
          SELECT m, n FROM (SELECT max(id) AS m, count(*) AS n FROM (SELECT c.id FROM clicks c, rollup_watermark w \
                            WHERE w.id = 1 AND c.id > w.folded_up_to ORDER BY c.id LIMIT ?1)) \
          WHERE m IS NOT NULL RETURNING upto, clicks",
    operation: "INSERT",
    table: "rollup_folds",
};

/// Whether any click is past the watermark: a read, so that a read of the
/// rollups with nothing to fold takes no write lock and compiles no fold.
pub const PENDING: Statement = Statement {
    sql: "SELECT EXISTS (SELECT 1 FROM clicks WHERE id > (SELECT folded_up_to FROM rollup_watermark WHERE id = 1))",
    operation: "SELECT",
    table: "clicks",
};

/// The most clicks one fold statement takes.
pub const FOLD_BATCH: i64 = 2048;

/// A redirect whose click id is a multiple of this folds one batch.
pub const FOLD_EVERY: i64 = 1024;

/// The most batches one read folds before it reads: past that (clicks
/// arriving faster than reads fold them, which the redirects' own folds
/// make unlikely) the read counts the clicks up to the watermark reached.
const MAX_BATCHES: usize = 64;

/// Whether the redirect that recorded click `id` folds a batch.
pub fn due(id: i64) -> bool {
    id > 0 && id % FOLD_EVERY == 0
}

/// Folds one batch of at most [`FOLD_BATCH`] clicks; returns how many it
/// folded.
pub async fn fold_batch(sql: &dyn SqlStore) -> Result<i64, StoreError> {
    let rows = sql
        .execute(&FOLD, vec![SqlValue::Integer(FOLD_BATCH)])
        .await?;
    Ok(rows
        .rows
        .first()
        .and_then(|row| row.get(1))
        .and_then(SqlValue::as_i64)
        .unwrap_or(0))
}

/// Folds every click committed before the call (at most [`MAX_BATCHES`]
/// batches), so that the rollups read next count them: one read
/// ([`PENDING`]) when nothing waits, then one fold statement unless more
/// than a batch was waiting. (A fold statement that finds nothing still
/// takes the write lock and compiles the fold's trigger: natively ~0.4 ms
/// against ~30 µs for the read.)
pub async fn fold(sql: &dyn SqlStore) -> Result<(), StoreError> {
    if sql.execute(&PENDING, vec![]).await?.scalar_i64() == 0 {
        return Ok(());
    }
    for _ in 0..MAX_BATCHES {
        if fold_batch(sql).await? < FOLD_BATCH {
            return Ok(());
        }
    }
    Ok(())
}

/// [`fold`] before a read of the rollups (stats, totals, lists, exports,
/// `/metrics`). A fold that fails (the database refuses writes) is logged,
/// and the read answers from the rollups as they are.
pub async fn fold_for_read(sql: &dyn SqlStore) {
    if let Err(e) = fold(sql).await {
        tracing::warn!(error = %e, "rollups not folded before a read: it counts the clicks folded so far");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_folds_every_fold_every_th_click() {
        assert!(!due(0));
        assert!(!due(1));
        assert!(due(FOLD_EVERY));
        assert!(!due(FOLD_EVERY + 1));
        assert!(due(3 * FOLD_EVERY));
    }
}
