//! Analytics: what the rollups say. Every read here is O(days) for one link
//! (or O(links x days) for the all-time totals), never O(clicks).

use serde::Serialize;

use crate::error::AppError;
use crate::links::Slug;
use crate::storage::{Rows, SqlStore, SqlValue, Statement, StoreError};

/// At most this many entries per breakdown (referrers, browsers, OSes).
pub const MAX_BREAKDOWN: usize = 100;

const LINK_TOTAL: Statement = Statement {
    sql: "SELECT coalesce(sum(clicks), 0) FROM daily_clicks WHERE slug = ?1",
    operation: "SELECT",
    table: "daily_clicks",
};
const DAILY: Statement = Statement {
    sql: "SELECT day, clicks, humans, bots, visitors FROM daily_clicks WHERE slug = ?1 ORDER BY day",
    operation: "SELECT",
    table: "daily_clicks",
};
const BREAKDOWN: Statement = Statement {
    sql: "SELECT dimension, value, sum(clicks) AS n FROM daily_dimensions \
          WHERE slug = ?1 AND day >= ?2 AND day <= ?3 \
          GROUP BY dimension, value ORDER BY dimension, n DESC, value",
    operation: "SELECT",
    table: "daily_dimensions",
};
const ALL_TIME_BREAKDOWN: Statement = Statement {
    sql: "SELECT dimension, value, clicks FROM link_dimensions WHERE slug = ?1 \
          ORDER BY dimension, clicks DESC, value",
    operation: "SELECT",
    table: "link_dimensions",
};
/// All-time clicks by kind, deleted links included (for `/metrics`).
pub const ALL_TIME: Statement = Statement {
    sql: "SELECT (SELECT coalesce(sum(humans), 0) FROM daily_clicks) + humans, \
                 (SELECT coalesce(sum(bots), 0) FROM daily_clicks) + bots \
          FROM retired_clicks WHERE id = 1",
    operation: "SELECT",
    table: "daily_clicks",
};

/// A validated `from`/`to` day range (inclusive, `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
}

impl DayRange {
    /// Parses optional `from` and `to`; absent ends are open.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, AppError> {
        let day = |field: &str, raw: &str| -> Result<String, AppError> {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(raw, &format)
                .map(|_| raw.to_owned())
                .map_err(|_| {
                    AppError::validation(
                        "invalid_date",
                        format!("`{field}` must be a date as YYYY-MM-DD."),
                    )
                })
        };
        let from = from.map(|f| day("from", f)).transpose()?;
        let to = to.map(|t| day("to", t)).transpose()?;
        let range = Self {
            from: from.unwrap_or_else(|| "0000-01-01".into()),
            to: to.unwrap_or_else(|| "9999-12-31".into()),
        };
        if range.from > range.to {
            return Err(AppError::validation(
                "invalid_date_range",
                "`from` must not be after `to`.",
            ));
        }
        Ok(range)
    }
}

/// Clicks on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daily {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// All clicks.
    pub clicks: i64,
    /// Of which by humans.
    pub humans: i64,
    /// Of which by bots.
    pub bots: i64,
}

/// Clicks from one referrer host (`null` = none sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Referrer {
    /// The host.
    pub host: Option<String>,
    /// Clicks.
    pub clicks: i64,
}

/// Clicks from one browser or OS family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Family {
    /// The family.
    pub name: String,
    /// Clicks.
    pub clicks: i64,
}

/// The stats of one link over a day range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The link.
    pub slug: String,
    /// First day of the range.
    pub from: Option<String>,
    /// Last day of the range.
    pub to: Option<String>,
    /// All clicks in range.
    pub total: i64,
    /// By humans.
    pub humans: i64,
    /// By bots.
    pub bots: i64,
    /// Distinct visitors (per day, summed: the visitor hash rotates daily).
    pub unique_visitors: i64,
    /// Per day, oldest first.
    pub daily: Vec<Daily>,
    /// By referrer host, most first.
    pub referrers: Vec<Referrer>,
    /// By browser family, most first.
    pub browsers: Vec<Family>,
    /// By OS family, most first.
    pub operating_systems: Vec<Family>,
}

fn int(row: &[SqlValue], i: usize) -> i64 {
    row.get(i).and_then(SqlValue::as_i64).unwrap_or(0)
}

fn text(row: &[SqlValue], i: usize) -> String {
    row.get(i)
        .and_then(SqlValue::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// All clicks ever counted for `slug` (bots included).
pub async fn link_total(sql: &dyn SqlStore, slug: &Slug) -> Result<i64, StoreError> {
    Ok(sql
        .execute(&LINK_TOTAL, vec![slug.as_str().into()])
        .await?
        .scalar_i64())
}

/// The stats of `slug` over `range`.
///
/// Reads every daily row of the link (one per day it was clicked) and keeps
/// those in range. When the range covers all of them, the breakdowns come
/// from the all-time `link_dimensions` rollup (~100 rows); otherwise from
/// the daily breakdowns of the range.
pub async fn stats(sql: &dyn SqlStore, slug: &Slug, range: &DayRange) -> Result<Stats, StoreError> {
    let all_days = sql.execute(&DAILY, vec![slug.as_str().into()]).await?;
    let (in_range, outside): (Vec<_>, Vec<_>) = all_days.rows.into_iter().partition(|row| {
        let day = row.first().and_then(SqlValue::as_str).unwrap_or_default();
        range.from.as_str() <= day && day <= range.to.as_str()
    });
    let covers_all = outside.is_empty();
    let daily_rows = Rows { rows: in_range };
    let breakdown = if covers_all {
        sql.execute(&ALL_TIME_BREAKDOWN, vec![slug.as_str().into()])
            .await?
    } else {
        let params = vec![
            SqlValue::from(slug.as_str()),
            range.from.clone().into(),
            range.to.clone().into(),
        ];
        sql.execute(&BREAKDOWN, params).await?
    };
    Ok(assemble(slug, range, &daily_rows, &breakdown))
}

fn assemble(slug: &Slug, range: &DayRange, daily_rows: &Rows, breakdown: &Rows) -> Stats {
    let mut stats = Stats {
        slug: slug.to_string(),
        from: (range.from != "0000-01-01").then(|| range.from.clone()),
        to: (range.to != "9999-12-31").then(|| range.to.clone()),
        total: 0,
        humans: 0,
        bots: 0,
        unique_visitors: 0,
        daily: Vec::new(),
        referrers: Vec::new(),
        browsers: Vec::new(),
        operating_systems: Vec::new(),
    };
    for row in &daily_rows.rows {
        let day = Daily {
            date: text(row, 0),
            clicks: int(row, 1),
            humans: int(row, 2),
            bots: int(row, 3),
        };
        stats.total += day.clicks;
        stats.humans += day.humans;
        stats.bots += day.bots;
        stats.unique_visitors += int(row, 4);
        stats.daily.push(day);
    }
    for row in &breakdown.rows {
        let (dimension, value, clicks) = (text(row, 0), text(row, 1), int(row, 2));
        match dimension.as_str() {
            "referrer" if stats.referrers.len() < MAX_BREAKDOWN => stats.referrers.push(Referrer {
                host: (!value.is_empty()).then_some(value),
                clicks,
            }),
            "browser" if stats.browsers.len() < MAX_BREAKDOWN => stats.browsers.push(Family {
                name: value,
                clicks,
            }),
            "os" if stats.operating_systems.len() < MAX_BREAKDOWN => {
                stats.operating_systems.push(Family {
                    name: value,
                    clicks,
                })
            }
            _ => {}
        }
    }
    stats
}

/// All-time clicks by humans and by bots, deleted links included.
pub async fn all_time(sql: &dyn SqlStore) -> Result<(i64, i64), StoreError> {
    let rows = sql.execute(&ALL_TIME, vec![]).await?;
    let row = rows.rows.first().map(Vec::as_slice).unwrap_or_default();
    Ok((int(row, 0), int(row, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ranges_cover_every_day() {
        let r = DayRange::parse(None, None).unwrap();
        assert!(r.from.as_str() < "1970-01-01" && r.to.as_str() > "2999-12-31");
    }

    #[test]
    fn malformed_or_inverted_ranges_are_refused() {
        assert!(DayRange::parse(Some("2030-13-01"), None).is_err());
        assert!(DayRange::parse(Some("yesterday"), None).is_err());
        assert!(DayRange::parse(Some("2030-01-02"), Some("2030-01-01")).is_err());
        assert!(DayRange::parse(Some("2030-01-01"), Some("2030-01-01")).is_ok());
    }
}
