//! The exports: every link (its own serde form, its click total), and the
//! raw clicks of one link, as CSV or JSON, streamed.
//!
//! Each export is a sequence of pages read by keyset paging (links by slug
//! from the registry, clicks by day and id) and encoded as chunks: the header (or
//! `[`), one chunk per page, then `]` for JSON. A page is at most [`PAGE`]
//! rows, so an export of 100,000 links never holds more than one page.
//!
//! A row is a JSON object. The JSON export writes it as it is, so fields
//! that [`Link`] gains later flow through unchanged; the CSV export writes
//! the columns of one list ([`LINK_COLUMNS`], [`CLICK_COLUMNS`]), taking
//! each from the object by name: a new field is one more name there.

use futures::Stream;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tracing::Instrument;
use woothee::dataset::DATASET;

use super::TransferError;
use crate::analytics::DayRange;
use crate::app::App;
use crate::links::{self, Link, LinkError, Slug};
use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// Rows read and written per chunk.
pub const PAGE: usize = 500;

/// The columns of the link CSV, in order: the link's own fields by their
/// serde names, `tags` (a list, written comma-separated; empty while a link
/// has none), `clicks` (the all-time total), then the redirect's options
/// (`rules` as a JSON array).
pub const LINK_COLUMNS: &[&str] = &[
    "slug",
    "url",
    "created_at",
    "expires_at",
    "tags",
    "clicks",
    "forward_query",
    "max_clicks",
    "valid_from",
    "rules",
];

/// The columns of the click CSV (and the fields of each click in JSON), in
/// order. Never the visitor hash. `rule`: the index of the redirect rule
/// that served the click, empty (`null`) for the link's own URL.
pub const CLICK_COLUMNS: &[&str] = &[
    "id",
    "at",
    "kind",
    "referrer_host",
    "browser",
    "os",
    "device",
    "rule",
];

/// The export's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180, header row first.
    Csv,
    /// One JSON array of objects.
    Json,
}

impl Format {
    /// `csv` or `json`; CSV when absent.
    pub fn parse(raw: Option<&str>) -> Result<Self, TransferError> {
        match raw {
            None | Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some(_) => Err(TransferError::InvalidFormat),
        }
    }

    /// The `Content-Type` of the answer.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// The file name extension.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// Writes rows of one export as chunks.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    columns: &'static [&'static str],
    rows: usize,
}

impl Encoder {
    /// An encoder of `columns` (CSV) in `format`.
    pub fn new(format: Format, columns: &'static [&'static str]) -> Self {
        Self {
            format,
            columns,
            rows: 0,
        }
    }

    /// What comes before the first row: the header row, or `[`.
    pub fn start(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => csv_record(self.columns.iter().copied()),
            Format::Json => b"[".to_vec(),
        }
    }

    /// One chunk of rows.
    pub fn rows(&mut self, rows: &[Map<String, Value>]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            match self.format {
                Format::Csv => {
                    let cells: Vec<String> =
                        self.columns.iter().map(|c| cell(row.get(*c))).collect();
                    out.extend(csv_record(cells.iter().map(String::as_str)));
                }
                Format::Json => {
                    if self.rows > 0 {
                        out.push(b',');
                    }
                    out.push(b'\n');
                    // A map of JSON values always serialises.
                    out.extend(serde_json::to_vec(row).unwrap_or_default());
                }
            }
            self.rows += 1;
        }
        out
    }

    /// What comes after the last row.
    pub fn end(&self) -> Vec<u8> {
        match self.format {
            Format::Csv => Vec::new(),
            Format::Json => b"\n]\n".to_vec(),
        }
    }
}

/// One CSV record (RFC 4180: fields with a comma, quote or line break are
/// quoted, quotes doubled; CRLF line ends).
fn csv_record<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

/// A JSON value as one CSV cell: text as is, `null` empty, a list's items
/// comma-separated, anything else as JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .map(|v| cell(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

// -------------------------------------------------------------------- links

/// A page of the registry with each link's all-time click total, in slug order.
const LINKS_PAGE: Statement = Statement {
    sql: "SELECT l.slug, (SELECT coalesce(sum(d.clicks), 0) FROM daily_clicks d WHERE d.slug = l.slug) \
          FROM links l WHERE l.slug > ?1 ORDER BY l.slug LIMIT ?2",
    operation: "SELECT",
    table: "links",
};

/// A link as an export row: its own serde form plus `clicks`, with the
/// fields a record leaves out at their defaults written out (no tags, the
/// query forwarded, no limit, no start, no rules), so that every row has
/// every field.
pub fn link_row(link: &Link, clicks: i64) -> Map<String, Value> {
    let mut row = match serde_json::to_value(link) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    row.insert("clicks".into(), clicks.into());
    for (field, default) in [
        ("tags", Value::Array(Vec::new())),
        ("forward_query", Value::Bool(true)),
        ("max_clicks", Value::Null),
        ("valid_from", Value::Null),
        ("rules", Value::Array(Vec::new())),
    ] {
        row.entry(field).or_insert(default);
    }
    row
}

/// Up to `limit` links after `after` (slug order) as rows, and the last slug
/// read (`None`: the registry has no more). A slug whose record is missing
/// (a create still writing it) or corrupt is left out, as lists do.
pub async fn link_page(
    app: &App,
    after: &str,
    limit: usize,
) -> Result<(Vec<Map<String, Value>>, Option<String>), LinkError> {
    if after.is_empty() {
        // The totals count every click committed before the export began.
        crate::outbox::ship_for_read(app).await;
        crate::rollups::fold_for_read(app.sql.as_ref()).await;
    }
    let rows = app
        .sql
        .execute(&LINKS_PAGE, vec![after.into(), int(limit)])
        .await?;
    let more = rows.rows.len() == limit;
    let mut out = Vec::with_capacity(rows.rows.len());
    let mut last = None;
    for row in &rows.rows {
        let Some(raw) = row.first().and_then(SqlValue::as_str) else {
            continue;
        };
        last = Some(raw.to_owned());
        let Some(slug) = Slug::registered(raw) else {
            continue;
        };
        let clicks = row.get(1).and_then(SqlValue::as_i64).unwrap_or(0);
        match app.links().get(&slug).await {
            Ok(Some(link)) => out.push(link_row(&link, clicks)),
            Ok(None) | Err(LinkError::CorruptRecord { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((out, last.filter(|_| more)))
}

/// Every link, encoded in `format`, one chunk per page.
pub fn links(app: App, format: Format) -> impl Stream<Item = Result<Vec<u8>, LinkError>> + Send {
    let span = tracing::Span::current();
    paged(Encoder::new(format, LINK_COLUMNS), move |after: String| {
        let app = app.clone();
        async move { link_page(&app, &after, PAGE).await }.instrument(span.clone())
    })
}

// ------------------------------------------------------------------- clicks

/// A page of one link's clicks in a day range after the cursor (`?2`, `?3`):
/// keyset paging on (day, id). The clicks' one index is (slug, day,
/// visitor), so this reads from the cursor's day on and sorts only within
/// a day; ordering by id alone would read and sort every click of the link
/// in range for each page. Ids are assigned in insert order, so within a
/// day (and across days, as clicks are written as they happen) this is id
/// order.
const CLICKS_PAGE: Statement = Statement {
    sql: "SELECT id, at, is_bot, referrer_host, browser, os, day, rule FROM clicks \
          WHERE slug = ?1 AND day >= ?2 AND day <= ?4 AND (day > ?2 OR id > ?3) \
          ORDER BY day, id LIMIT ?5",
    operation: "SELECT",
    table: "clicks",
};

/// A device class from what a click stores. Clicks keep the OS family but
/// no device column, so this is woothee's category of that OS (the same
/// table the classifier takes its labels from): `pc`, `smartphone`,
/// `mobilephone`, `appliance`, `misc`; `crawler` for a bot; `UNKNOWN`.
pub fn device(os: &str, is_bot: bool) -> &'static str {
    if is_bot {
        return "crawler";
    }
    DATASET
        .values()
        .find(|d| d.browser_type == "os" && d.name == os)
        .or_else(|| {
            DATASET
                .values()
                .find(|d| d.os == os && !d.category.is_empty())
        })
        .map_or(woothee::woothee::VALUE_UNKNOWN, |d| d.category)
}

/// A click row as exported.
fn click_row(row: &[SqlValue]) -> Option<(i64, Map<String, Value>)> {
    let id = row.first()?.as_i64()?;
    let at = row.get(1)?.as_i64()?;
    let is_bot = row.get(2)?.as_i64()? != 0;
    let text = |i: usize| row.get(i).and_then(SqlValue::as_str).map(str::to_owned);
    let os = text(5).unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), id.into());
    // Stored in milliseconds.
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .map(links::rfc3339)
        .unwrap_or_default();
    out.insert("at".into(), at.into());
    out.insert("kind".into(), if is_bot { "bot" } else { "human" }.into());
    out.insert("referrer_host".into(), text(3).into());
    out.insert("browser".into(), text(4).unwrap_or_default().into());
    out.insert("device".into(), device(&os, is_bot).into());
    out.insert("os".into(), os.into());
    out.insert("rule".into(), row.get(7).and_then(SqlValue::as_i64).into());
    Some((id, out))
}

/// Where a click page ends: the day and id of its last click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickCursor {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The click id.
    pub id: i64,
}

/// Up to `limit` clicks of `slug` in `range` after `after` (`None`: from
/// the first), and the cursor of the next page (`None`: no more).
pub async fn click_page(
    sql: &dyn SqlStore,
    slug: &Slug,
    range: &DayRange,
    after: Option<&ClickCursor>,
    limit: usize,
) -> Result<(Vec<Map<String, Value>>, Option<ClickCursor>), StoreError> {
    let (from, to) = range.sql_bounds();
    let (day, id) = after.map_or((from, 0), |c| (c.day.clone(), c.id));
    let rows = sql
        .execute(
            &CLICKS_PAGE,
            vec![
                slug.as_str().into(),
                day.into(),
                id.into(),
                to.into(),
                int(limit),
            ],
        )
        .await?;
    let more = rows.rows.len() == limit;
    let mut last = None;
    let mut out = Vec::with_capacity(rows.rows.len());
    for row in &rows.rows {
        if let Some((id, click)) = click_row(row) {
            let day = row.get(6).and_then(SqlValue::as_str).unwrap_or_default();
            last = Some(ClickCursor {
                day: day.to_owned(),
                id,
            });
            out.push(click);
        }
    }
    Ok((out, last.filter(|_| more)))
}

/// The clicks of `slug` in `range`, encoded in `format`, one chunk per page.
pub fn clicks(
    app: App,
    slug: Slug,
    range: DayRange,
    format: Format,
) -> impl Stream<Item = Result<Vec<u8>, LinkError>> + Send {
    let span = tracing::Span::current();
    paged(Encoder::new(format, CLICK_COLUMNS), move |after: String| {
        let (app, slug) = (app.clone(), slug.clone());
        async move {
            // The stream's own cursor text: `<day> <id>` (empty: the first page).
            let first = after.is_empty();
            let after = after.split_once(' ').and_then(|(day, id)| {
                Some(ClickCursor {
                    day: day.to_owned(),
                    id: id.parse().ok()?,
                })
            });
            if first {
                // The export holds this replica's clicks served before it began.
                crate::outbox::ship_for_read(&app).await;
            }
            let (rows, last) =
                click_page(app.sql.as_ref(), &slug, &range, after.as_ref(), PAGE).await?;
            Ok((rows, last.map(|c| format!("{} {}", c.day, c.id))))
        }
        .instrument(span.clone())
    })
}

// ------------------------------------------------------------------- paging

/// Where a paged export is.
enum Step {
    Start,
    After(String),
    End,
    Done,
}

/// The chunks of an export: `encoder`'s start, one chunk per page that
/// `page` reads after a cursor (`""` first; it answers the next cursor, or
/// `None` after the last page), then its end. A failed page ends the stream
/// with the error (the answer is cut short; the cause is logged by the
/// caller).
fn paged<F, Fut>(encoder: Encoder, page: F) -> impl Stream<Item = Result<Vec<u8>, LinkError>> + Send
where
    F: Fn(String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<Map<String, Value>>, Option<String>), LinkError>>
        + Send,
{
    futures::stream::unfold(
        (Step::Start, encoder, page),
        |(step, mut encoder, page)| async move {
            match step {
                Step::Start => {
                    let chunk = encoder.start();
                    Some((Ok(chunk), (Step::After(String::new()), encoder, page)))
                }
                Step::After(after) => match page(after).await {
                    Ok((rows, next)) => {
                        let chunk = encoder.rows(&rows);
                        let step = next.map_or(Step::End, Step::After);
                        Some((Ok(chunk), (step, encoder, page)))
                    }
                    Err(e) => Some((Err(e), (Step::Done, encoder, page))),
                },
                Step::End => {
                    let chunk = encoder.end();
                    Some((Ok(chunk), (Step::Done, encoder, page)))
                }
                Step::Done => None,
            }
        },
    )
}

fn int(n: usize) -> SqlValue {
    SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn format_is_csv_or_json_and_csv_when_absent() {
        assert_eq!(Format::parse(None), Ok(Format::Csv));
        assert_eq!(Format::parse(Some("csv")), Ok(Format::Csv));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        assert_eq!(
            Format::parse(Some("xml")),
            Err(TransferError::InvalidFormat)
        );
        assert_eq!(
            Format::parse(Some("CSV")),
            Err(TransferError::InvalidFormat)
        );
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks_and_reads_back_the_same() {
        let mut enc = Encoder::new(Format::Csv, &["slug", "url", "tags"]);
        let url = r#"https://e.com/a,b?q="x""#;
        let mut out = enc.start();
        out.extend(enc.rows(&[
            row(&[
                ("slug", "abc".into()),
                ("url", url.into()),
                ("tags", serde_json::json!(["a b", "c"])),
            ]),
            row(&[("slug", "two\nlines".into()), ("url", Value::Null)]),
        ]));
        out.extend(enc.end());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("slug,url,tags\r\n"), "{text}");
        assert!(text.contains(r#""https://e.com/a,b?q=""x""""#), "{text}");
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&records[0][1], url);
        assert_eq!(&records[0][2], "a b,c");
        assert_eq!(&records[1][0], "two\nlines");
        assert_eq!(&records[1][1], "");
    }

    #[test]
    fn json_chunks_join_into_one_array() {
        let mut enc = Encoder::new(Format::Json, &[]);
        let mut out = enc.start();
        out.extend(enc.rows(&[row(&[("a", 1.into())])]));
        out.extend(enc.rows(&[]));
        out.extend(enc.rows(&[row(&[("a", 2.into())]), row(&[("a", 3.into())])]));
        out.extend(enc.end());
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, serde_json::json!([{"a": 1}, {"a": 2}, {"a": 3}]));
        let empty = Encoder::new(Format::Json, &[]);
        let mut out = empty.start();
        out.extend(empty.end());
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn a_link_row_is_its_serde_form_with_its_clicks_and_every_default_written_out() {
        let link = Link::new(
            Slug::parse("abc").unwrap(),
            "https://e.com/".into(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let row = link_row(&link, 7);
        let mut expected = match serde_json::to_value(&link).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        expected.insert("clicks".into(), 7.into());
        for (field, value) in [
            ("tags", serde_json::json!([])),
            ("forward_query", serde_json::json!(true)),
            ("max_clicks", Value::Null),
            ("valid_from", Value::Null),
            ("rules", serde_json::json!([])),
        ] {
            expected.insert(field.into(), value);
        }
        assert_eq!(row, expected);
        for column in LINK_COLUMNS {
            assert!(row.contains_key(*column), "{column}");
        }
    }

    #[test]
    fn a_list_of_strings_is_one_comma_separated_cell_and_any_other_list_is_json() {
        let tags = serde_json::json!(["a", "b"]);
        assert_eq!(cell(Some(&tags)), "a,b");
        let rules = serde_json::json!([{"url": "https://e.com/x", "device": "ios"}]);
        assert_eq!(
            cell(Some(&rules)),
            r#"[{"device":"ios","url":"https://e.com/x"}]"#
        );
        assert_eq!(cell(Some(&serde_json::json!([]))), "");
    }

    #[test]
    fn device_is_wootheess_category_of_the_os_and_crawler_for_bots() {
        assert_eq!(device("Android", false), "smartphone");
        assert_eq!(device("iPhone", false), "smartphone");
        assert_eq!(device("Windows 10", false), "pc");
        assert_eq!(device("Mac OSX", false), "pc");
        assert_eq!(device("Windows 10", true), "crawler");
        assert_eq!(device("UNKNOWN", false), "UNKNOWN");
    }
}
