//! Analytics: what the rollups say. Every read here is O(days) for one link
//! (or O(links x days) for the all-time totals), never O(clicks).

use serde::Serialize;

use time::Date;

use crate::error::ErrorCode;
use crate::links::Slug;
use crate::storage::{Rows, SqlStore, SqlValue, Statement, StoreError};

/// At most this many entries per breakdown (referrers, browsers, OSes),
/// the most clicked first; the rest are summed into one last row marked
/// `"other": true` (named [`OTHER`]). Referrer hosts come from anonymous
/// visitors, so a breakdown would otherwise grow with every host anyone sends.
///
/// It is also the write-time cap (the `clicks_rollup` trigger of migration
/// 4, which spells it as the literal 100): per link and dimension the first
/// `MAX_BREAKDOWN` distinct values are rolled up by name, later new ones
/// under [`OTHER`], and "no referrer" always by name. So a link's rollups
/// hold at most `MAX_BREAKDOWN + 2` values per dimension and day, and a
/// stats read sorts at most that many per dimension.
pub const MAX_BREAKDOWN: usize = 100;

/// The name of the row that sums a breakdown beyond [`MAX_BREAKDOWN`]
/// (no host or family can be spelt with parentheses).
pub const OTHER: &str = "(other)";

/// The folded total plus the clicks not folded yet (a fold that could not
/// run, e.g. while another connection holds the write lock, leaves them
/// there): the tail is read by id from the watermark on (`+slug` keeps the
/// planner off the slug index, which would read every click of the link).
const LINK_TOTAL: Statement = Statement {
    sql: "SELECT coalesce((SELECT sum(clicks) FROM daily_clicks WHERE slug = ?1), 0) \
          + (SELECT count(*) FROM clicks c WHERE c.id > (SELECT folded_up_to FROM rollup_watermark WHERE id = 1) \
             AND +c.slug = ?1)",
    operation: "SELECT",
    table: "daily_clicks",
};
const DAILY: Statement = Statement {
    sql: "SELECT day, clicks, humans, bots, visitors FROM daily_clicks WHERE slug = ?1 ORDER BY day",
    operation: "SELECT",
    table: "daily_clicks",
};
/// Both breakdown reads answer at most `?4` rows per dimension, most clicks
/// first, and one more (`other` = 1) summing the rest: the values ranked
/// beyond the top (rows written before the write-time cap) and the clicks
/// the rollup trigger already counted under [`OTHER`] (migration 4).
const BREAKDOWN: Statement = Statement {
    sql: "WITH ranked AS (SELECT dimension, value, n, \
              CASE WHEN value = '(other)' THEN ?4 + 1 \
                   ELSE row_number() OVER (PARTITION BY dimension ORDER BY value = '(other)', n DESC, value) END AS rank \
              FROM (SELECT dimension, value, sum(clicks) AS n FROM daily_dimensions \
                    WHERE slug = ?1 AND day >= ?2 AND day <= ?3 GROUP BY dimension, value)) \
          SELECT dimension, value, n, 0 AS other FROM ranked WHERE rank <= ?4 \
          UNION ALL SELECT dimension, '', sum(n), 1 FROM ranked WHERE rank > ?4 GROUP BY dimension \
          ORDER BY 1, 4, 3 DESC, 2",
    operation: "SELECT",
    table: "daily_dimensions",
};
const ALL_TIME_BREAKDOWN: Statement = Statement {
    sql: "WITH ranked AS (SELECT dimension, value, clicks AS n, \
              CASE WHEN value = '(other)' THEN ?2 + 1 \
                   ELSE row_number() OVER (PARTITION BY dimension ORDER BY value = '(other)', clicks DESC, value) END AS rank \
              FROM link_dimensions WHERE slug = ?1) \
          SELECT dimension, value, n, 0 AS other FROM ranked WHERE rank <= ?2 \
          UNION ALL SELECT dimension, '', sum(n), 1 FROM ranked WHERE rank > ?2 GROUP BY dimension \
          ORDER BY 1, 4, 3 DESC, 2",
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

/// The one spelling of a UTC day, in SQLite rows and on the wire: `YYYY-MM-DD`.
pub const DAY_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// `date` as `YYYY-MM-DD`.
pub fn day_text(date: Date) -> String {
    date.format(DAY_FORMAT).unwrap_or_default()
}

/// A refused `from` / `to`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayRangeError {
    /// Not a `YYYY-MM-DD` date (or not written the one way we write it).
    #[error("`{0}` must be a date as YYYY-MM-DD.")]
    InvalidDate(&'static str),
    /// `from` after `to`.
    #[error("`from` must not be after `to`.")]
    Inverted,
}

impl DayRangeError {
    /// The API's `error.code` of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            DayRangeError::InvalidDate(_) => ErrorCode::InvalidDate,
            DayRangeError::Inverted => ErrorCode::InvalidDateRange,
        }
    }
}

/// A validated, inclusive day range; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayRange {
    /// First day.
    pub from: Option<Date>,
    /// Last day.
    pub to: Option<Date>,
}

impl DayRange {
    /// Parses optional `from` and `to`; absent ends are open. A day must be
    /// exactly `YYYY-MM-DD` with a year from 0000 to 9999: what does not
    /// format back to the same text (`+2030-06-01`, `2030-6-1`) and signed
    /// years are refused, and the ends are compared as dates.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, DayRangeError> {
        let day = |field: &'static str, raw: &str| {
            Date::parse(raw, DAY_FORMAT)
                .ok()
                .filter(|d| (0..=9999).contains(&d.year()) && day_text(*d) == raw)
                .ok_or(DayRangeError::InvalidDate(field))
        };
        let range = Self {
            from: from.map(|f| day("from", f)).transpose()?,
            to: to.map(|t| day("to", t)).transpose()?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to)
            && from > to
        {
            return Err(DayRangeError::Inverted);
        }
        Ok(range)
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: Date) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day <= t)
    }

    /// The ends as SQL parameters (`YYYY-MM-DD`; open ends as the first and
    /// last day the format can hold).
    pub(crate) fn sql_bounds(&self) -> (String, String) {
        (
            self.from.map_or_else(|| "0000-01-01".to_owned(), day_text),
            self.to.map_or_else(|| "9999-12-31".to_owned(), day_text),
        )
    }
}

/// Clicks on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
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
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Referrer {
    /// The host ([`OTHER`] on the row summing the rest).
    pub host: Option<String>,
    /// Clicks.
    pub clicks: i64,
    /// `true` only on the last row, which sums the hosts beyond [`MAX_BREAKDOWN`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
}

/// Clicks from one browser or OS family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Family {
    /// The family ([`OTHER`] on the row summing the rest).
    pub name: String,
    /// Clicks.
    pub clicks: i64,
    /// `true` only on the last row, which sums the families beyond [`MAX_BREAKDOWN`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
}

/// The stats of one link over a day range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
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
    /// Clicks each redirect rule served, by rule index (rules that served
    /// none left out); the rest went to the link's URL. Filled by
    /// [`rule_clicks`] (its own read, so that it can move on its own).
    pub rules: Vec<RuleClicks>,
    /// With a click outbox (`click_outbox`): the clicks of the answering
    /// replica that are not in these stats yet, because the shared click
    /// database could not take them (`crate::outbox`). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<crate::outbox::Lag>,
}

/// Clicks a redirect rule served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct RuleClicks {
    /// The rule's index in the link's `rules` when the clicks were served.
    pub index: i64,
    /// Clicks.
    pub clicks: i64,
}

/// The clicks served by each rule, from the raw `clicks` rows through the
/// partial index `clicks_rules` (migration 8), which holds only
/// rule-served clicks: the one place that knows where these counts live.
const RULE_CLICKS: Statement = Statement {
    sql: "SELECT rule, count(*) FROM clicks WHERE slug = ?1 AND rule IS NOT NULL \
          AND day >= ?2 AND day <= ?3 GROUP BY rule ORDER BY rule",
    operation: "SELECT",
    table: "clicks",
};

/// The clicks each redirect rule of `slug` served over `range`.
pub async fn rule_clicks(
    sql: &dyn SqlStore,
    slug: &Slug,
    range: &DayRange,
) -> Result<Vec<RuleClicks>, StoreError> {
    let (from, to) = range.sql_bounds();
    let rows = sql
        .execute(
            &RULE_CLICKS,
            vec![slug.as_str().into(), from.into(), to.into()],
        )
        .await?;
    Ok(rows
        .rows
        .iter()
        .map(|r| RuleClicks {
            index: int(r, 0),
            clicks: int(r, 1),
        })
        .collect())
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
    crate::rollups::fold_for_read(sql).await;
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
    crate::rollups::fold_for_read(sql).await;
    let all_days = sql.execute(&DAILY, vec![slug.as_str().into()]).await?;
    let (in_range, outside): (Vec<_>, Vec<_>) = all_days.rows.into_iter().partition(|row| {
        row.first()
            .and_then(SqlValue::as_str)
            .and_then(|day| Date::parse(day, DAY_FORMAT).ok())
            .is_some_and(|day| range.contains(day))
    });
    let covers_all = outside.is_empty();
    let daily_rows = Rows { rows: in_range };
    let top = SqlValue::Integer(MAX_BREAKDOWN as i64);
    let breakdown = if covers_all {
        sql.execute(&ALL_TIME_BREAKDOWN, vec![slug.as_str().into(), top])
            .await?
    } else {
        let (from, to) = range.sql_bounds();
        let params = vec![SqlValue::from(slug.as_str()), from.into(), to.into(), top];
        sql.execute(&BREAKDOWN, params).await?
    };
    Ok(assemble(slug, range, &daily_rows, &breakdown))
}

fn assemble(slug: &Slug, range: &DayRange, daily_rows: &Rows, breakdown: &Rows) -> Stats {
    let mut stats = Stats {
        slug: slug.to_string(),
        from: range.from.map(day_text),
        to: range.to.map(day_text),
        total: 0,
        humans: 0,
        bots: 0,
        unique_visitors: 0,
        daily: Vec::new(),
        referrers: Vec::new(),
        browsers: Vec::new(),
        operating_systems: Vec::new(),
        rules: Vec::new(),
        lag: None,
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
        let other = int(row, 3) == 1;
        let family = || Family {
            name: if other {
                OTHER.to_owned()
            } else {
                value.clone()
            },
            clicks,
            other,
        };
        match dimension.as_str() {
            "referrer" => stats.referrers.push(Referrer {
                host: if other {
                    Some(OTHER.to_owned())
                } else {
                    (!value.is_empty()).then(|| value.clone())
                },
                clicks,
                other,
            }),
            "browser" => stats.browsers.push(family()),
            "os" => stats.operating_systems.push(family()),
            _ => {}
        }
    }
    stats
}

/// All-time clicks by humans and by bots, deleted links included.
pub async fn all_time(sql: &dyn SqlStore) -> Result<(i64, i64), StoreError> {
    crate::rollups::fold_for_read(sql).await;
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
        let day = |s| Date::parse(s, DAY_FORMAT).unwrap();
        assert!(r.contains(day("1969-12-31")) && r.contains(day("2999-12-31")));
        assert!(r.contains(Date::MIN) && r.contains(Date::MAX));
    }

    #[test]
    fn days_that_do_not_round_trip_are_refused() {
        for bad in [
            "+2030-06-01",
            "-2030-06-01",
            "2030-6-01",
            "02030-06-01",
            " 2030-06-01",
        ] {
            assert_eq!(
                DayRange::parse(Some(bad), None),
                Err(DayRangeError::InvalidDate("from")),
                "{bad}"
            );
            assert!(DayRange::parse(None, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_compare_dates_not_text() {
        let r = DayRange::parse(Some("2030-06-01"), Some("2030-06-30")).unwrap();
        let day = |s| Date::parse(s, DAY_FORMAT).unwrap();
        assert!(r.contains(day("2030-06-01")) && r.contains(day("2030-06-30")));
        assert!(!r.contains(day("2030-05-31")) && !r.contains(day("2030-07-01")));
        assert_eq!(day_text(day("0042-01-02")), "0042-01-02");
    }

    #[test]
    fn malformed_or_inverted_ranges_are_refused() {
        assert!(DayRange::parse(Some("2030-13-01"), None).is_err());
        assert!(DayRange::parse(Some("yesterday"), None).is_err());
        assert!(DayRange::parse(Some("2030-01-02"), Some("2030-01-01")).is_err());
        assert!(DayRange::parse(Some("2030-01-01"), Some("2030-01-01")).is_ok());
    }
}
