//! Orphan visits: requests that reached the redirect for no link (an unknown
//! slug, a path that is no slug, a link not yet valid, expired or
//! exhausted; and a `GET` the router has no route for, outside the app's own
//! first segments: `/`, `/wp-admin/setup.php`). Only counts are kept, per UTC day and path: no row per
//! visit, nothing about the visitor.
//!
//! Anyone can send any path, so what is kept is bounded: a path is cut to
//! its first [`MAX_PATH_BYTES`], and per day the first
//! [`MAX_PATHS_PER_DAY`] distinct paths are counted by name, later new ones
//! under [`OTHER`] ("(other)"), in the one upsert [`COUNT`] (as migration 4
//! caps a link's referrers). So a day holds at most `MAX_PATHS_PER_DAY + 1`
//! rows. Only `GET` counts (`HEAD` counts nothing, as for clicks).

use serde::Serialize;
use time::OffsetDateTime;

use crate::analytics::DayRange;
use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// Distinct paths counted by name per day; the rest count under [`OTHER`].
pub const MAX_PATHS_PER_DAY: usize = 1000;
/// The most of a path that is kept, in bytes.
pub const MAX_PATH_BYTES: usize = 256;
/// Paths a report lists, most visited first.
pub const TOP_PATHS: usize = 100;
/// The row that counts the paths beyond [`MAX_PATHS_PER_DAY`].
pub const OTHER: &str = crate::analytics::OTHER;

/// One orphan visit: its path counts by name when it is already counted
/// today or today has fewer than `?3` paths, else under "(other)". The
/// count of today's paths is read only for a path not yet counted today.
pub const COUNT: Statement = Statement {
    sql: "INSERT INTO orphan_visits (day, path, visits) \
          SELECT ?1, CASE WHEN EXISTS (SELECT 1 FROM orphan_visits WHERE day = ?1 AND path = ?2) \
                            OR (SELECT count(*) FROM orphan_visits WHERE day = ?1) < ?3 \
                          THEN ?2 ELSE '(other)' END, 1 WHERE true \
          ON CONFLICT (day, path) DO UPDATE SET visits = visits + 1",
    operation: "INSERT",
    table: "orphan_visits",
};
const DAILY: Statement = Statement {
    sql: "SELECT day, sum(visits) FROM orphan_visits WHERE day >= ?1 AND day <= ?2 \
          GROUP BY day ORDER BY day",
    operation: "SELECT",
    table: "orphan_visits",
};
const PATHS: Statement = Statement {
    sql: "SELECT path, sum(visits) AS n FROM orphan_visits WHERE day >= ?1 AND day <= ?2 \
          GROUP BY path ORDER BY n DESC, path LIMIT ?3",
    operation: "SELECT",
    table: "orphan_visits",
};

/// Counts one orphan visit to `path` at `now`. A failure is logged and
/// otherwise ignored: the visit's answer never depends on it.
pub async fn count(sql: &dyn SqlStore, path: &str, now: OffsetDateTime) {
    let path = crate::clicks::capped(path, MAX_PATH_BYTES);
    let params = vec![
        crate::clicks::utc_day(now).into(),
        path.into(),
        SqlValue::Integer(MAX_PATHS_PER_DAY as i64),
    ];
    if let Err(e) = sql.execute(&COUNT, params).await {
        tracing::warn!(error = %e, "orphan visit not counted");
    }
}

/// Orphan visits on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct DailyVisits {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Visits.
    pub visits: i64,
}

/// Orphan visits to one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct PathVisits {
    /// The path as requested (at most 256 bytes), or `(other)`: the paths
    /// beyond the first 1,000 of a day.
    pub path: String,
    /// Visits.
    pub visits: i64,
}

/// The orphan visits over a day range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Report {
    /// All orphan visits in range.
    pub total: i64,
    /// Per day, oldest first (days without any left out).
    pub daily: Vec<DailyVisits>,
    /// The 100 most visited paths, most first.
    pub paths: Vec<PathVisits>,
}

/// A `(text, count)` row: a day or a path, and its visits.
fn name_and_count(row: &[SqlValue]) -> (String, i64) {
    let name = row.first().and_then(SqlValue::as_str).unwrap_or_default();
    let count = row.get(1).and_then(SqlValue::as_i64).unwrap_or(0);
    (name.to_owned(), count)
}

/// The report over `range`.
pub async fn report(sql: &dyn SqlStore, range: &DayRange) -> Result<Report, StoreError> {
    let (from, to) = range.sql_bounds();
    let bounds = || vec![SqlValue::from(from.as_str()), to.as_str().into()];
    let daily: Vec<DailyVisits> = sql
        .execute(&DAILY, bounds())
        .await?
        .rows
        .iter()
        .map(|r| {
            let (date, visits) = name_and_count(r);
            DailyVisits { date, visits }
        })
        .collect();
    let mut params = bounds();
    params.push(SqlValue::Integer(TOP_PATHS as i64));
    let paths = sql
        .execute(&PATHS, params)
        .await?
        .rows
        .iter()
        .map(|r| {
            let (path, visits) = name_and_count(r);
            PathVisits { path, visits }
        })
        .collect();
    Ok(Report {
        total: daily.iter().map(|d| d.visits).sum(),
        daily,
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::SqliteStore;

    async fn db() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("o.db")).unwrap();
        crate::migrations::run(&db, 0).await.unwrap();
        (dir, db)
    }

    fn day(d: u8) -> OffsetDateTime {
        time::Date::from_calendar_date(2030, time::Month::January, d)
            .unwrap()
            .midnight()
            .assume_utc()
    }

    #[tokio::test]
    async fn visits_count_per_day_and_path_and_the_report_sums_them() {
        let (_dir, db) = db().await;
        for (path, d) in [("/nope", 1), ("/nope", 1), ("/x", 1), ("/nope", 2)] {
            count(&db, path, day(d)).await;
        }
        let all = report(&db, &DayRange::default()).await.unwrap();
        assert_eq!(all.total, 4);
        assert_eq!(
            all.daily,
            [
                DailyVisits {
                    date: "2030-01-01".into(),
                    visits: 3
                },
                DailyVisits {
                    date: "2030-01-02".into(),
                    visits: 1
                },
            ]
        );
        assert_eq!(
            all.paths[0],
            PathVisits {
                path: "/nope".into(),
                visits: 3
            }
        );
        let second = DayRange::parse(Some("2030-01-02"), None).unwrap();
        assert_eq!(report(&db, &second).await.unwrap().total, 1);
    }

    #[tokio::test]
    async fn a_day_keeps_its_first_paths_by_name_and_folds_the_rest_into_other() {
        let (_dir, db) = db().await;
        for i in 0..MAX_PATHS_PER_DAY + 5 {
            count(&db, &format!("/p{i}"), day(1)).await;
        }
        // A path already counted keeps counting by name once the day is full.
        count(&db, "/p0", day(1)).await;
        // A new day starts again.
        count(&db, "/late", day(2)).await;
        let rows = db
            .execute(
                &Statement {
                    sql: "SELECT count(*) FROM orphan_visits WHERE day = '2030-01-01'",
                    operation: "SELECT",
                    table: "orphan_visits",
                },
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(rows.scalar_i64(), MAX_PATHS_PER_DAY as i64 + 1);
        let all = report(&db, &DayRange::default()).await.unwrap();
        assert_eq!(all.total, MAX_PATHS_PER_DAY as i64 + 7);
        assert_eq!(all.paths.len(), TOP_PATHS);
        assert_eq!(
            all.paths[0],
            PathVisits {
                path: OTHER.into(),
                visits: 5
            }
        );
        assert_eq!(
            all.paths[1],
            PathVisits {
                path: "/p0".into(),
                visits: 2
            }
        );
    }

    #[tokio::test]
    async fn a_long_path_is_kept_as_its_capped_prefix() {
        let (_dir, db) = db().await;
        let long = format!("/{}", "a".repeat(4 * MAX_PATH_BYTES));
        count(&db, &long, day(1)).await;
        count(&db, &long[..MAX_PATH_BYTES + 10], day(1)).await;
        let all = report(&db, &DayRange::default()).await.unwrap();
        assert_eq!(all.paths.len(), 1);
        assert_eq!(all.paths[0].path.len(), MAX_PATH_BYTES);
        assert_eq!(all.paths[0].visits, 2);
    }
}
