//! The import: another shortener's export (or ours) read into [`Entry`]
//! rows, then created through `links::Links::create`.
//!
//! Where each format comes from (the file the tool's own export or API gives):
//!
//! * `shlink`: Shlink's REST API list, `GET /rest/v3/short-urls`:
//!   `{"shortUrls": {"data": [{"shortCode", "longUrl", "tags": [..],
//!   "meta": {"validUntil": <ISO 8601 | null>, ..}, ..}], "pagination": ..}}`
//!   (shlinkio/shlink, `ShortUrl::toArray` / the `ShortUrl` schema of its
//!   OpenAPI docs).
//! * `yourls`: YOURLS's API `yourls-api.php?action=stats&filter=last&limit=N&format=json`
//!   (`yourls_get_stats` in includes/functions-infos.php):
//!   `{"links": {"link_1": {"shorturl", "url", "title", "timestamp", "ip",
//!   "clicks"}, ..}, "stats": .., "statusCode": 200}`. The keyword is the
//!   last path segment of `shorturl`; rows are in `link_<n>` order.
//!   YOURLS has no tags or expiry.
//! * `kutt`: Kutt's API v2 list, `GET /api/v2/links`
//!   (thedevs-network/kutt, `utils.sanitize.link`):
//!   `{"total", "limit", "skip", "data": [{"id", "address", "target",
//!   "expire_in": <ISO 8601 | null>, "visit_count", "link", ..}]}`. Kutt
//!   has no tags.
//! * `bitly`: Bitly's API v4, `GET /v4/groups/{group_guid}/bitlinks`:
//!   `{"links": [{"id": "bit.ly/abc", "link", "long_url", "tags": [..],
//!   "created_at", ..}], "pagination": ..}`. The slug is the back-half of
//!   `id`. Bitly's list has no expiry.
//! * `csv`: our own link export (`GET /api/export/links?format=csv`), or
//!   any RFC 4180 file with a header row. Only `url` is required; `slug`,
//!   `tags` (comma-separated) and `expires_at` (RFC 3339) are read when
//!   present, other columns ignored. So a hand-written `slug,url` file
//!   imports.
//!
//! A row without a slug (a CSV without a `slug` column or cell) gets one
//! derived from its URL ([`derived_slug`]), so importing the same file
//! again finds it and creates nothing. Tags carry over (folded to lower
//! case, as the API folds them; a tag we refuse is an error of its line).
//! Click history never carries over.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::TransferError;
use crate::app::App;
use crate::links::{self, LinkError, NewLink, Slug, TargetUrl};

/// Where an import comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Shlink's short-URL list (JSON).
    Shlink,
    /// YOURLS's `stats` API answer (JSON).
    Yourls,
    /// Kutt's API v2 link list (JSON).
    Kutt,
    /// Bitly's API v4 bitlinks list (JSON).
    Bitly,
    /// Our CSV export, or a CSV with a `url` column.
    Csv,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 5] = [
        Source::Shlink,
        Source::Yourls,
        Source::Kutt,
        Source::Bitly,
        Source::Csv,
    ];

    /// Its name in `?source=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Shlink => "shlink",
            Source::Yourls => "yourls",
            Source::Kutt => "kutt",
            Source::Bitly => "bitly",
            Source::Csv => "csv",
        }
    }

    /// The source named `raw` (exactly).
    pub fn parse(raw: &str) -> Result<Self, TransferError> {
        Source::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(TransferError::InvalidSource)
    }
}

/// One link the file asks for, as the source wrote it (validated by [`run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is in the file: the CSV line, or the 1-based position in the
    /// source's list of links.
    pub line: usize,
    /// The source's slug; `None`: derived from the URL.
    pub slug: Option<String>,
    /// The target.
    pub url: String,
    /// The source's tags (folded to lower case; a tag we refuse is an
    /// error of its line).
    pub tags: Vec<String>,
    /// The source's expiry, as written (ISO 8601 / RFC 3339).
    pub expires_at: Option<String>,
}

/// A row that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct RowError {
    /// The CSV line, or the 1-based position in the source's list.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// A slug that exists here with another target: reported, never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Conflict {
    /// The slug.
    pub slug: String,
    /// Why.
    pub reason: String,
}

/// A file read into rows, and the rows that did not read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The rows to import.
    pub entries: Vec<Entry>,
    /// The rows that could not be read.
    pub errors: Vec<RowError>,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Report {
    /// Links created.
    pub created: usize,
    /// Slugs that exist here with the same target.
    pub skipped_existing: usize,
    /// Slugs that exist here with another target.
    pub conflicts: Vec<Conflict>,
    /// Rows refused: no or an invalid URL, a slug we refuse, a bad expiry.
    pub errors: Vec<RowError>,
}

/// Reads `body` as `source`'s format. A body that is not that format at all
/// is an error; a row that is not usable is one of [`Parsed::errors`].
pub fn parse(source: Source, body: &[u8]) -> Result<Parsed, TransferError> {
    let invalid = |reason: String| TransferError::InvalidImport {
        tool: source.as_str(),
        reason,
    };
    if source == Source::Csv {
        return parse_csv(body).map_err(invalid);
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let list = match source {
        Source::Shlink => list_at(&json, &["shortUrls", "data"]),
        Source::Yourls => yourls_links(&json),
        Source::Kutt => list_at(&json, &["data"]),
        Source::Bitly => list_at(&json, &["links"]),
        Source::Csv => unreachable!("read above"),
    }
    .ok_or_else(|| {
        invalid(format!(
            "no list of links where {} puts it",
            source.as_str()
        ))
    })?;
    let mut parsed = Parsed::default();
    for (i, item) in list.iter().enumerate() {
        let line = i + 1;
        match json_entry(source, line, item) {
            Ok(entry) => parsed.entries.push(entry),
            Err(reason) => parsed.errors.push(RowError { line, reason }),
        }
    }
    Ok(parsed)
}

/// The array at `path` in `json` (only there: any other JSON is not the
/// source's answer).
fn list_at(json: &Value, path: &[&str]) -> Option<Vec<Value>> {
    let mut at = json;
    for key in path {
        at = at.get(key)?;
    }
    at.as_array().cloned()
}

/// YOURLS's `links` object (`link_1`, `link_2`, ...) in number order; an
/// empty list when YOURLS had no links (it then leaves `links` out, and
/// still answers its `stats`).
fn yourls_links(json: &Value) -> Option<Vec<Value>> {
    let Some(links) = json.get("links") else {
        return json.get("stats").is_some().then(Vec::new);
    };
    match links {
        Value::Object(map) => {
            let mut numbered: Vec<(u64, &Value)> = map
                .iter()
                .map(|(k, v)| {
                    let n = k.strip_prefix("link_").and_then(|n| n.parse().ok());
                    (n.unwrap_or(u64::MAX), v)
                })
                .collect();
            numbered.sort_by_key(|(n, _)| *n);
            Some(numbered.into_iter().map(|(_, v)| v.clone()).collect())
        }
        Value::Array(items) => Some(items.clone()),
        _ => None,
    }
}

fn json_entry(source: Source, line: usize, item: &Value) -> Result<Entry, String> {
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
    let (slug_key, url_key) = match source {
        Source::Shlink => ("shortCode", "longUrl"),
        Source::Yourls => ("shorturl", "url"),
        Source::Kutt => ("address", "target"),
        Source::Bitly => ("id", "long_url"),
        Source::Csv => unreachable!("not JSON"),
    };
    let url = text(url_key).ok_or_else(|| format!("`{url_key}` is missing"))?;
    let raw_slug = text(slug_key).ok_or_else(|| format!("`{slug_key}` is missing"))?;
    let slug = match source {
        // A short URL (YOURLS) or `domain/back-half` (Bitly): the last segment.
        Source::Yourls | Source::Bitly => last_segment(&raw_slug),
        _ => raw_slug,
    };
    let tags = item
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let expires_at = match source {
        Source::Shlink => item
            .get("meta")
            .and_then(|m| m.get("validUntil"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        Source::Kutt => text("expire_in"),
        _ => None,
    };
    Ok(Entry {
        line,
        slug: Some(slug),
        url,
        tags,
        expires_at,
    })
}

fn last_segment(raw: &str) -> String {
    let path = raw.split(['?', '#']).next().unwrap_or(raw);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .to_owned()
}

/// A CSV with a header row naming at least `url`.
fn parse_csv(body: &[u8]) -> Result<Parsed, String> {
    // A UTF-8 byte-order mark (spreadsheets write one) is not part of the header.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let url_at = column("url").ok_or("the header row has no `url` column")?;
    let (slug_at, tags_at, expiry_at) = (column("slug"), column("tags"), column("expires_at"));
    let mut parsed = Parsed::default();
    let mut record = csv::StringRecord::new();
    // The line a record starts on, counted here: after a CRLF the reader
    // puts a record's start on the LF before it (and its line one short).
    let (mut counted_to, mut lines) = (0usize, 1usize);
    let mut line_at = |byte: u64| {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(body.len());
        while byte < body.len() && matches!(body[byte], b'\r' | b'\n') {
            byte += 1;
        }
        if byte >= counted_to {
            lines += body[counted_to..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            counted_to = byte;
        }
        lines
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                parsed.errors.push(RowError {
                    line,
                    reason: format!("The row does not read as CSV: {e}."),
                });
                if e.is_io_error() || matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    continue;
                }
                break;
            }
        }
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        let cell = |at: Option<usize>| {
            at.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(url) = cell(Some(url_at)) else {
            parsed.errors.push(RowError {
                line,
                reason: "The `url` cell is empty.".into(),
            });
            continue;
        };
        let tags = cell(tags_at)
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        parsed.entries.push(Entry {
            line,
            slug: cell(slug_at),
            url,
            tags,
            expires_at: cell(expiry_at),
        });
    }
    Ok(parsed)
}

/// The slug of a row that names none: `len` base62 characters of the
/// SHA-256 of its (normalised) URL, so the same row always gets the same
/// slug and a second import of it is skipped (as long as `slug_length`,
/// which is `len`, is not changed in between).
pub fn derived_slug(url: &TargetUrl, len: usize) -> String {
    use crate::links::BASE62;
    Sha256::digest(url.as_str().as_bytes())
        .iter()
        .cycle()
        .take(len)
        .map(|b| BASE62[usize::from(*b) % BASE62.len()] as char)
        .collect()
}

/// Validates and creates the rows of `parsed`; a dry run reads and reports
/// the same and writes nothing. A slug that exists with the same target is
/// skipped, with another target a conflict, never overwritten (also when a
/// create races the import: the registry decides). A store failure stops
/// the import with the error; the rows before it are created, and running
/// the import again creates the rest.
pub async fn run(app: &App, parsed: Parsed, dry_run: bool) -> Result<Report, LinkError> {
    let now = app.now();
    let mut report = Report {
        errors: parsed.errors,
        ..Report::default()
    };
    // Slugs met earlier in this file, with their target.
    let mut seen: HashMap<String, String> = HashMap::new();
    let links = app.links();
    for entry in parsed.entries {
        let refused = |e: LinkError| RowError {
            line: entry.line,
            reason: e.to_string(),
        };
        let url = match TargetUrl::parse(&entry.url, &app.settings.own_origins) {
            Ok(url) => url,
            Err(e) => {
                report.errors.push(refused(e));
                continue;
            }
        };
        let raw_slug = entry
            .slug
            .clone()
            .unwrap_or_else(|| derived_slug(&url, app.settings.slug_length));
        let slug = match Slug::parse(&raw_slug) {
            Ok(slug) => slug,
            Err(e) => {
                report.errors.push(refused(e));
                continue;
            }
        };
        let expires_at = match entry
            .expires_at
            .as_deref()
            .map(|raw| links::parse_timestamp("expires_at", raw))
            .transpose()
        {
            Ok(at) => at,
            Err(e) => {
                report.errors.push(refused(e));
                continue;
            }
        };
        let tags = match links::Tags::parse(&entry.tags) {
            Ok(tags) => tags,
            Err(e) => {
                report.errors.push(refused(e));
                continue;
            }
        };
        let conflict = |reason: &str| Conflict {
            slug: slug.to_string(),
            reason: reason.to_owned(),
        };
        const OTHER_TARGET: &str =
            "The slug exists here with another target; it was left as it is.";
        if let Some(target) = seen.get(slug.as_str()) {
            if target == url.as_str() {
                report.skipped_existing += 1;
            } else {
                report.conflicts.push(conflict(
                    "The slug appears earlier in the file with another target.",
                ));
            }
            continue;
        }
        seen.insert(slug.to_string(), url.as_str().to_owned());
        let existing = match links.get(&slug).await {
            Ok(existing) => existing,
            Err(LinkError::CorruptRecord { .. }) => {
                report.conflicts.push(conflict(
                    "The slug exists here, and its stored record is corrupt; it was left as it is.",
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        match existing {
            Some(link) if link.url == url.as_str() => report.skipped_existing += 1,
            Some(_) => report.conflicts.push(conflict(OTHER_TARGET)),
            None if dry_run => report.created += 1,
            None => {
                let new = NewLink {
                    url: url.clone(),
                    slug: Some(slug.clone()),
                    expires_at,
                    options: Default::default(),
                    tags: tags.clone(),
                };
                match links.create(new, app.settings.slug_length, now).await {
                    Ok(_) => report.created += 1,
                    // Created meanwhile by someone else: as if it had existed.
                    Err(LinkError::SlugTaken(_)) => match links.get(&slug).await {
                        Ok(Some(link)) if link.url == url.as_str() => report.skipped_existing += 1,
                        _ => report.conflicts.push(conflict(OTHER_TARGET)),
                    },
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(source: Source, body: &str) -> Parsed {
        parse(source, body.as_bytes()).unwrap()
    }

    #[test]
    fn sources_are_named_exactly() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Ok(s));
        }
        assert_eq!(Source::parse("Shlink"), Err(TransferError::InvalidSource));
        assert_eq!(Source::parse(""), Err(TransferError::InvalidSource));
    }

    #[test]
    fn a_two_column_csv_imports_and_quoted_urls_keep_their_commas_and_quotes() {
        let p = entries(
            Source::Csv,
            "slug,url\r\nabc,https://e.com/a\r\n\"q-1\",\"https://e.com/?a=1,2&b=\"\"x\"\"\"\r\n",
        );
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.entries.len(), 2, "{p:?}");
        assert_eq!(p.entries[0].slug.as_deref(), Some("abc"));
        assert_eq!(p.entries[0].line, 2);
        assert_eq!(p.entries[1].url, "https://e.com/?a=1,2&b=\"x\"");
        assert_eq!(p.entries[1].line, 3);
    }

    #[test]
    fn our_own_export_reads_back_with_tags_and_expiry() {
        let p = entries(
            Source::Csv,
            "slug,url,created_at,expires_at,tags,clicks\n\
             abc,https://e.com/,2030-01-01T00:00:00Z,2031-01-01T00:00:00Z,\"a, b\",3\n\
             def,https://e.com/2,2030-01-01T00:00:00Z,,,0\n",
        );
        assert_eq!(p.entries[0].tags, vec!["a", "b"]);
        assert_eq!(
            p.entries[0].expires_at.as_deref(),
            Some("2031-01-01T00:00:00Z")
        );
        assert_eq!(p.entries[1].expires_at, None);
        assert!(p.entries[1].tags.is_empty());
    }

    #[test]
    fn a_csv_without_a_url_column_is_refused_and_an_empty_url_cell_is_a_row_error() {
        let err = parse(Source::Csv, b"slug,target\nabc,https://e.com/\n").unwrap_err();
        assert!(matches!(
            err,
            TransferError::InvalidImport { tool: "csv", .. }
        ));
        let p = entries(Source::Csv, "url,slug\n,abc\n\n");
        assert_eq!(p.entries, vec![]);
        assert_eq!(p.errors[0].line, 2);
    }

    #[test]
    fn json_sources_read_their_own_shapes() {
        let shlink = entries(
            Source::Shlink,
            r#"{"shortUrls":{"data":[{"shortCode":"abc","longUrl":"https://e.com/","tags":["x"],"meta":{"validUntil":"2031-01-01T00:00:00+00:00"}},{"shortCode":"bad"}]}}"#,
        );
        assert_eq!(shlink.entries[0].tags, vec!["x"]);
        assert_eq!(
            shlink.entries[0].expires_at.as_deref(),
            Some("2031-01-01T00:00:00+00:00")
        );
        assert_eq!(shlink.errors[0].line, 2);
        let yourls = entries(
            Source::Yourls,
            r#"{"links":{"link_10":{"shorturl":"https://y.example/ten","url":"https://e.com/10"},"link_2":{"shorturl":"https://y.example/two","url":"https://e.com/2"}}}"#,
        );
        let slugs: Vec<_> = yourls
            .entries
            .iter()
            .map(|e| e.slug.clone().unwrap())
            .collect();
        assert_eq!(slugs, vec!["two", "ten"]);
        let kutt = entries(
            Source::Kutt,
            r#"{"data":[{"address":"k1","target":"https://e.com/k","expire_in":null}]}"#,
        );
        assert_eq!(kutt.entries[0].slug.as_deref(), Some("k1"));
        let bitly = entries(
            Source::Bitly,
            r#"{"links":[{"id":"bit.ly/3xYz","long_url":"https://e.com/b","tags":["t"]}]}"#,
        );
        assert_eq!(bitly.entries[0].slug.as_deref(), Some("3xYz"));
        assert!(parse(Source::Kutt, b"{\"links\":[]}").is_err());
        assert!(
            parse(Source::Shlink, b"[null, null]").is_err(),
            "only its own shape"
        );
        assert!(parse(Source::Yourls, b"{}").is_err());
        let none = entries(
            Source::Yourls,
            r#"{"stats":{"total_links":"0"},"statusCode":200}"#,
        );
        assert_eq!(none, Parsed::default());
        assert!(parse(Source::Bitly, b"not json").is_err());
    }

    #[test]
    fn a_derived_slug_depends_only_on_the_url() {
        let ours = links::OwnOrigins::new(&"https://s.example".parse().unwrap(), &[]).unwrap();
        let a = TargetUrl::parse("https://e.com/a", &ours).unwrap();
        let b = TargetUrl::parse("https://e.com/b", &ours).unwrap();
        assert_eq!(derived_slug(&a, 7), derived_slug(&a, 7));
        assert_ne!(derived_slug(&a, 7), derived_slug(&b, 7));
        assert_eq!(derived_slug(&a, 7).len(), 7);
        assert!(Slug::parse(&derived_slug(&a, 7)).is_ok());
    }
}
