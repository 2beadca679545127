//! Lists of links: one SQL statement over the registry answers a page, in
//! any sort order, filtered by tag and searched, with each link's click
//! total. No key-value read: the registry holds the record's authoritative
//! copy (`links.record`) and what lists filter and sort on (`url`, `tags`
//! mirrored into `link_tags`, `created_at`, `clicks`; migration 7).
//!
//! # Keyset paging, exact in every order
//!
//! A cursor is the sort key of the last link of a page, and the next page
//! starts strictly after it (ties broken by slug). Slugs and creation times
//! never change, so those orders are exact as they are. Click totals change
//! while a client pages, so a `sort=clicks` cursor also carries a snapshot:
//! the sequence number of the newest entry of `link_click_log` (every change
//! of a total is logged there by the trigger that makes it, see
//! [`crate::migrations`]). Every page of one listing orders and shows the
//! totals as of that snapshot (current total minus what was logged after it),
//! so no link moves between pages and none is skipped or repeated. The log
//! keeps the last [`CLICK_LOG_KEPT`] changes; a cursor older than that is
//! refused (`cursor_expired`: start again).
//!
//! A page without a search walks the index of its order from the cursor; a
//! search first collects the matching slugs from the narrow `links_url`
//! index (slug and URL only), then sorts the matches: both stay in one
//! statement whatever the number of links.

use super::{Link, LinkError, SearchText, Slug, Tag};
use crate::storage::{SqlValue, Statement};

/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 20;
/// Largest page.
pub const MAX_PAGE: usize = 100;
/// How many changes of click totals `link_click_log` keeps (its pruning
/// trigger, migration 7): a `sort=clicks` cursor stays valid that long.
pub const CLICK_LOG_KEPT: i64 = 1 << 20;

/// What a list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Creation time.
    Created,
    /// Click total.
    Clicks,
    /// Slug (the default).
    Slug,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Sort::Created => "created",
            Sort::Clicks => "clicks",
            Sort::Slug => "slug",
        }
    }

    /// The order when none is given: slugs ascending, newest and most
    /// clicked first.
    pub fn default_order(self) -> Order {
        match self {
            Sort::Slug => Order::Asc,
            Sort::Created | Sort::Clicks => Order::Desc,
        }
    }
}

impl Order {
    fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// `sort=slug`.
    Slug(String),
    /// `sort=created`: its Unix time and slug.
    Created(i64, String),
    /// `sort=clicks`: the listing's snapshot, the total as of it, the slug.
    Clicks {
        snapshot: i64,
        total: i64,
        slug: String,
    },
}

/// A validated list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The order.
    pub sort: Sort,
    /// Its direction.
    pub order: Order,
    /// Page size.
    pub limit: usize,
    /// Only links with this tag.
    pub tag: Option<Tag>,
    /// Only links whose slug or URL contains this.
    pub search: Option<SearchText>,
    after: Option<Position>,
}

/// A listed link with its click total (for `sort=clicks`, as of the
/// listing's snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The link (the registry's copy of its record).
    pub link: Link,
    /// Its click total.
    pub clicks: i64,
}

/// Longest cursor accepted, in bytes (a registered slug is at most 256).
const MAX_CURSOR_BYTES: usize = 320;

impl ListQuery {
    /// Validates the query string's values. Absent: `sort=slug`, its
    /// default order, [`DEFAULT_PAGE`], the first page, no filter.
    pub fn parse(
        sort: Option<&str>,
        order: Option<&str>,
        limit: Option<&str>,
        cursor: Option<&str>,
        tag: Option<&str>,
        q: Option<&str>,
    ) -> Result<Self, LinkError> {
        let sort = match sort {
            None | Some("") | Some("slug") => Sort::Slug,
            Some("created") => Sort::Created,
            Some("clicks") => Sort::Clicks,
            Some(_) => return Err(LinkError::InvalidSort),
        };
        let order = match order {
            None | Some("") => sort.default_order(),
            Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(_) => return Err(LinkError::InvalidOrder),
        };
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => return Err(LinkError::InvalidLimit),
            },
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(parse_cursor(c, sort, order).ok_or(LinkError::InvalidCursor)?),
        };
        let tag = tag.filter(|t| !t.is_empty()).map(Tag::parse).transpose()?;
        let search = q.map(SearchText::parse).transpose()?.flatten();
        Ok(Self {
            sort,
            order,
            limit,
            tag,
            search,
            after,
        })
    }

    fn cursor_after(&self, last: &Row, snapshot: i64) -> String {
        let slug = last.slug.as_str();
        let (sort, order) = (self.sort.as_str(), self.order.as_str());
        match (self.sort, self.order) {
            // The format of every version before sorting: the bare slug.
            (Sort::Slug, Order::Asc) => slug.to_owned(),
            (Sort::Slug, Order::Desc) => format!("{sort}.{order}.{slug}"),
            (Sort::Created, _) => format!("{sort}.{order}.{}.{slug}", last.created_at),
            (Sort::Clicks, _) => format!("{sort}.{order}.{snapshot}.{}.{slug}", last.total),
        }
    }
}

/// A registered slug as a cursor carries it (1 to 256 bytes, no control
/// characters; slugs an older version allowed included).
fn cursor_slug(raw: &str) -> Option<String> {
    ((1..=256).contains(&raw.len()) && !raw.chars().any(char::is_control)).then(|| raw.to_owned())
}

fn parse_cursor(raw: &str, sort: Sort, order: Order) -> Option<Position> {
    if raw.len() > MAX_CURSOR_BYTES {
        return None;
    }
    if (sort, order) == (Sort::Slug, Order::Asc) {
        return Slug::parse(raw).ok().map(|s| Position::Slug(s.to_string()));
    }
    let rest = raw
        .strip_prefix(sort.as_str())?
        .strip_prefix('.')?
        .strip_prefix(order.as_str())?
        .strip_prefix('.')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    match sort {
        Sort::Slug => cursor_slug(rest).map(Position::Slug),
        Sort::Created => {
            let (at, slug) = rest.split_once('.')?;
            Some(Position::Created(number(at)?, cursor_slug(slug)?))
        }
        Sort::Clicks => {
            let mut parts = rest.splitn(3, '.');
            let snapshot = number(parts.next()?)?;
            // A total as of a snapshot is never below zero, except for a
            // slug deleted and created again meanwhile.
            let total = parts.next()?;
            let total = match total.strip_prefix('-') {
                Some(t) => -number(t)?,
                None => number(total)?,
            };
            Some(Position::Clicks {
                snapshot,
                total,
                slug: cursor_slug(parts.next()?)?,
            })
        }
    }
}

/// Declares one list statement. Every one answers rows of
/// `(slug, record, total, snapshot, expired, created_at)`; its parameters are
/// `?1` the limit (one more than the page, to know whether more follow),
/// `?2`, `?3` the position after which it starts (sort key, slug), `?4` the
/// tag or `NULL`, `?5` the search's `LIKE` pattern, `?6` the snapshot of a
/// `sort=clicks` listing (`NULL` on its first page: the statement takes the
/// newest, in the same read as the totals).
macro_rules! walk {
    ($key:literal, $cmp:literal, $dir:literal) => {
        Statement {
            sql: concat!(
                "SELECT l.slug, l.record, l.clicks, NULL, 0, l.created_at FROM links l WHERE (",
                $key,
                ", l.slug) ",
                $cmp,
                " (?2, ?3) AND l.record IS NOT NULL \
                 AND (?4 IS NULL OR l.slug IN (SELECT slug FROM link_tags WHERE tag = ?4)) \
                 ORDER BY ",
                $key,
                " ",
                $dir,
                ", l.slug ",
                $dir,
                " LIMIT ?1"
            ),
            operation: "SELECT",
            table: "links",
        }
    };
}

/// The matching slugs of a search, from the narrow `links_url` index.
macro_rules! hits {
    () => {
        "SELECT slug FROM links INDEXED BY links_url \
         WHERE url LIKE ?5 ESCAPE '\\' OR slug LIKE ?5 ESCAPE '\\'"
    };
}

macro_rules! search {
    ($key:literal, $cmp:literal, $dir:literal) => {
        Statement {
            sql: concat!(
                "SELECT l.slug, l.record, l.clicks, NULL, 0, l.created_at FROM links l WHERE l.slug IN (",
                hits!(),
                ") AND (+",
                $key,
                ", l.slug) ",
                $cmp,
                " (?2, ?3) AND l.record IS NOT NULL \
                 AND (?4 IS NULL OR l.slug IN (SELECT slug FROM link_tags WHERE tag = ?4)) \
                 ORDER BY ",
                $key,
                " ",
                $dir,
                ", l.slug ",
                $dir,
                " LIMIT ?1"
            ),
            operation: "SELECT",
            table: "links",
        }
    };
}

/// The snapshot of a `sort=clicks` listing, what was logged after it, and
/// whether the log still reaches back to it.
macro_rules! snapshot {
    () => {
        "WITH snap(s) AS (SELECT coalesce(?6, (SELECT max(seq) FROM link_click_log), 0)), \
         moved(slug, d) AS (SELECT slug, sum(delta) FROM link_click_log \
             WHERE seq > (SELECT s FROM snap) GROUP BY slug), \
         meta(s, expired) AS (SELECT s, s < coalesce((SELECT min(seq) FROM link_click_log) - 1, s) FROM snap), "
    };
}

macro_rules! clicks_walk {
    ($cmp:literal, $dir:literal) => {
        Statement {
            sql: concat!(
                snapshot!(),
                "page(slug, record, total, created_at) AS ( \
                 SELECT * FROM (SELECT l.slug, l.record, l.clicks, l.created_at FROM links l \
                   WHERE (l.clicks, l.slug) ",
                $cmp,
                " (?2, ?3) AND l.record IS NOT NULL \
                   AND l.slug NOT IN (SELECT slug FROM moved) \
                   AND (?4 IS NULL OR l.slug IN (SELECT slug FROM link_tags WHERE tag = ?4)) \
                   ORDER BY l.clicks ",
                $dir,
                ", l.slug ",
                $dir,
                " LIMIT ?1) \
                 UNION ALL \
                 SELECT l.slug, l.record, l.clicks - m.d, l.created_at FROM moved m JOIN links l ON l.slug = m.slug \
                   WHERE (l.clicks - m.d, l.slug) ",
                $cmp,
                " (?2, ?3) AND l.record IS NOT NULL \
                   AND (?4 IS NULL OR l.slug IN (SELECT slug FROM link_tags WHERE tag = ?4))) \
                 SELECT p.slug, p.record, p.total, meta.s, meta.expired, p.created_at FROM meta LEFT JOIN \
                 (SELECT * FROM page ORDER BY total ",
                $dir,
                ", slug ",
                $dir,
                " LIMIT ?1) p ON NOT meta.expired ORDER BY p.total ",
                $dir,
                ", p.slug ",
                $dir
            ),
            operation: "SELECT",
            table: "links",
        }
    };
}

macro_rules! clicks_search {
    ($cmp:literal, $dir:literal) => {
        Statement {
            sql: concat!(
                snapshot!(),
                "page(slug, record, total, created_at) AS ( \
                 SELECT l.slug, l.record, l.clicks - coalesce(m.d, 0), l.created_at \
                 FROM links l LEFT JOIN moved m ON m.slug = l.slug WHERE l.slug IN (",
                hits!(),
                ") AND l.record IS NOT NULL \
                   AND (?4 IS NULL OR l.slug IN (SELECT slug FROM link_tags WHERE tag = ?4))) \
                 SELECT p.slug, p.record, p.total, meta.s, meta.expired, p.created_at FROM meta LEFT JOIN \
                 (SELECT * FROM page WHERE (total, slug) ",
                $cmp,
                " (?2, ?3) ORDER BY total ",
                $dir,
                ", slug ",
                $dir,
                " LIMIT ?1) p ON NOT meta.expired ORDER BY p.total ",
                $dir,
                ", p.slug ",
                $dir
            ),
            operation: "SELECT",
            table: "links",
        }
    };
}

const BY_SLUG_ASC: Statement = walk!("l.slug", ">", "ASC");
const BY_SLUG_DESC: Statement = walk!("l.slug", "<", "DESC");
const BY_CREATED_ASC: Statement = walk!("l.created_at", ">", "ASC");
const BY_CREATED_DESC: Statement = walk!("l.created_at", "<", "DESC");
const BY_CLICKS_ASC: Statement = clicks_walk!(">", "ASC");
const BY_CLICKS_DESC: Statement = clicks_walk!("<", "DESC");
const SEARCH_BY_SLUG_ASC: Statement = search!("l.slug", ">", "ASC");
const SEARCH_BY_SLUG_DESC: Statement = search!("l.slug", "<", "DESC");
const SEARCH_BY_CREATED_ASC: Statement = search!("l.created_at", ">", "ASC");
const SEARCH_BY_CREATED_DESC: Statement = search!("l.created_at", "<", "DESC");
const SEARCH_BY_CLICKS_ASC: Statement = clicks_search!(">", "ASC");
const SEARCH_BY_CLICKS_DESC: Statement = clicks_search!("<", "DESC");

/// Every list statement (for tests that check them all).
pub const LIST_STATEMENTS: [&Statement; 12] = [
    &BY_SLUG_ASC,
    &BY_SLUG_DESC,
    &BY_CREATED_ASC,
    &BY_CREATED_DESC,
    &BY_CLICKS_ASC,
    &BY_CLICKS_DESC,
    &SEARCH_BY_SLUG_ASC,
    &SEARCH_BY_SLUG_DESC,
    &SEARCH_BY_CREATED_ASC,
    &SEARCH_BY_CREATED_DESC,
    &SEARCH_BY_CLICKS_ASC,
    &SEARCH_BY_CLICKS_DESC,
];

/// One row of a list statement.
pub(super) struct Row {
    pub slug: String,
    /// The registry's copy of the record.
    pub record: Option<String>,
    pub total: i64,
    pub created_at: i64,
}

/// What one list statement answers.
pub(super) struct Page {
    /// At most `limit + 1`.
    pub rows: Vec<Row>,
    /// The snapshot (`sort=clicks`), else 0.
    pub snapshot: i64,
}

impl ListQuery {
    /// The statement of this query and its parameters.
    pub(super) fn statement(&self) -> (&'static Statement, Vec<SqlValue>) {
        use Order::{Asc, Desc};
        let searched = self.search.is_some();
        let statement = match (self.sort, self.order, searched) {
            (Sort::Slug, Asc, false) => &BY_SLUG_ASC,
            (Sort::Slug, Desc, false) => &BY_SLUG_DESC,
            (Sort::Created, Asc, false) => &BY_CREATED_ASC,
            (Sort::Created, Desc, false) => &BY_CREATED_DESC,
            (Sort::Clicks, Asc, false) => &BY_CLICKS_ASC,
            (Sort::Clicks, Desc, false) => &BY_CLICKS_DESC,
            (Sort::Slug, Asc, true) => &SEARCH_BY_SLUG_ASC,
            (Sort::Slug, Desc, true) => &SEARCH_BY_SLUG_DESC,
            (Sort::Created, Asc, true) => &SEARCH_BY_CREATED_ASC,
            (Sort::Created, Desc, true) => &SEARCH_BY_CREATED_DESC,
            (Sort::Clicks, Asc, true) => &SEARCH_BY_CLICKS_ASC,
            (Sort::Clicks, Desc, true) => &SEARCH_BY_CLICKS_DESC,
        };
        // Before the first link: below every key in ascending order (no text
        // sorts below ''), above every key in descending order (a blob sorts
        // above every text).
        let first = || match (self.sort, self.order) {
            (Sort::Slug, Asc) => (SqlValue::Text(String::new()), SqlValue::Text(String::new())),
            (Sort::Slug, Desc) => (SqlValue::Blob(vec![0xff]), SqlValue::Blob(vec![0xff])),
            (_, Asc) => (SqlValue::Integer(i64::MIN), SqlValue::Text(String::new())),
            (_, Desc) => (SqlValue::Integer(i64::MAX), SqlValue::Blob(vec![0xff])),
        };
        let (key, slug, snapshot) = match &self.after {
            None => {
                let (k, s) = first();
                (k, s, SqlValue::Null)
            }
            Some(Position::Slug(s)) => (s.as_str().into(), s.as_str().into(), SqlValue::Null),
            Some(Position::Created(at, s)) => {
                (SqlValue::Integer(*at), s.as_str().into(), SqlValue::Null)
            }
            Some(Position::Clicks {
                snapshot,
                total,
                slug,
            }) => (
                SqlValue::Integer(*total),
                slug.as_str().into(),
                SqlValue::Integer(*snapshot),
            ),
        };
        let limit = i64::try_from(self.limit + 1).unwrap_or(i64::MAX);
        let tag = self
            .tag
            .as_ref()
            .map_or(SqlValue::Null, |t| t.as_str().into());
        let mut params = vec![SqlValue::Integer(limit), key, slug, tag];
        if searched || self.sort == Sort::Clicks {
            params.push(
                self.search
                    .as_ref()
                    .map_or(SqlValue::Null, |s| s.like_pattern().into()),
            );
        }
        if self.sort == Sort::Clicks {
            params.push(snapshot);
        }
        (statement, params)
    }

    /// Reads a statement's rows; `Err(CursorExpired)` when the snapshot is
    /// older than the log.
    pub(super) fn read(&self, rows: &[Vec<SqlValue>]) -> Result<Page, LinkError> {
        let mut page = Page {
            rows: Vec::with_capacity(rows.len()),
            snapshot: 0,
        };
        for row in rows {
            if row.get(4).and_then(SqlValue::as_i64).unwrap_or(0) != 0 {
                return Err(LinkError::CursorExpired);
            }
            if let Some(s) = row.get(3).and_then(SqlValue::as_i64) {
                page.snapshot = s;
            }
            // The row a `sort=clicks` listing answers for an empty page.
            let Some(slug) = row.first().and_then(SqlValue::as_str) else {
                continue;
            };
            let record = match row.get(1) {
                Some(SqlValue::Text(t)) => Some(t.clone()),
                Some(SqlValue::Blob(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            };
            page.rows.push(Row {
                slug: slug.to_owned(),
                record,
                total: row.get(2).and_then(SqlValue::as_i64).unwrap_or(0),
                created_at: row.get(5).and_then(SqlValue::as_i64).unwrap_or(0),
            });
        }
        Ok(page)
    }

    /// The cursor of the page after the one ending with `last`, when `more`
    /// follow.
    pub(super) fn next(&self, last: Option<&Row>, more: bool, snapshot: i64) -> Option<String> {
        more.then_some(last)
            .flatten()
            .map(|l| self.cursor_after(l, snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(sort: &str, order: &str, cursor: &str) -> Result<ListQuery, LinkError> {
        ListQuery::parse(Some(sort), Some(order), None, Some(cursor), None, None)
    }

    #[test]
    fn absent_values_mean_slug_order_ascending_twenty_a_page() {
        let query = ListQuery::parse(None, None, None, None, None, Some("")).unwrap();
        assert_eq!(
            (query.sort, query.order, query.limit),
            (Sort::Slug, Order::Asc, 20)
        );
        assert!(query.tag.is_none() && query.search.is_none() && query.after.is_none());
        let created = ListQuery::parse(Some("created"), None, None, None, None, None).unwrap();
        assert_eq!(created.order, Order::Desc);
    }

    #[test]
    fn bad_sort_order_limit_tag_and_cursor_values_have_their_own_codes() {
        let code = |r: Result<ListQuery, LinkError>| r.unwrap_err().code().as_str();
        let p = ListQuery::parse;
        assert_eq!(
            code(p(Some("url"), None, None, None, None, None)),
            "invalid_sort"
        );
        assert_eq!(
            code(p(None, Some("up"), None, None, None, None)),
            "invalid_order"
        );
        for limit in ["0", "101", "-1", "x"] {
            assert_eq!(
                code(p(None, None, Some(limit), None, None, None)),
                "invalid_limit"
            );
        }
        assert_eq!(
            code(p(None, None, None, None, Some("a b"), None)),
            "invalid_tag"
        );
        for (sort, order, cursor) in [
            ("slug", "asc", "no/such"),
            ("slug", "desc", "abc"),
            ("created", "desc", "created.asc.1.abc"),
            ("created", "desc", "created.desc.x.abc"),
            ("created", "desc", "clicks.desc.1.2.abc"),
            ("clicks", "desc", "clicks.desc.1.abc"),
            ("clicks", "desc", "clicks.desc.-1.2.abc"),
        ] {
            assert_eq!(code(q(sort, order, cursor)), "invalid_cursor", "{cursor}");
        }
    }

    #[test]
    fn a_cursor_names_its_order_and_reads_back_as_it_was_written() {
        let last = Row {
            slug: "abc".into(),
            record: None,
            total: 7,
            created_at: 1_900_000_000,
        };
        for (sort, order, want) in [
            ("slug", "asc", "abc"),
            ("slug", "desc", "slug.desc.abc"),
            ("created", "asc", "created.asc.1900000000.abc"),
            ("clicks", "desc", "clicks.desc.42.7.abc"),
        ] {
            let query = q(sort, order, "").unwrap();
            let cursor = query.next(Some(&last), true, 42).unwrap();
            assert_eq!(cursor, want);
            let again = q(sort, order, &cursor).unwrap();
            assert!(again.after.is_some(), "{cursor}");
            assert_eq!(query.next(Some(&last), false, 42), None);
        }
    }
}
