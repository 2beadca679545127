//! Links: the domain types and their storage.
//!
//! A link's record lives in the key-value store under `link:<slug>` (one fast
//! read on the redirect path). The SQLite `links` registry is the arbiter of
//! slug ownership — key-value stores have no create-if-absent, SQLite's
//! primary key does — and the ordered index behind paging.
//!
//! * [`slug`]: `Slug`, its parse and random draws.
//! * [`target`]: `TargetUrl` and `OwnOrigins` (no link points back at us).
//! * [`store`]: `Links`, the storage over the two ports.
//! * [`rules`]: redirect rules, click limits and query forwarding.
//! * [`tags`]: `Tag`, `Tags`.
//! * [`listing`]: `ListQuery` (sort, order, cursor, filters) of a list.
//! * here: `Link`, `LinkError`, timestamps, `NewLink`, `LinkPatch`,
//!   `SearchText`.

pub mod listing;
pub mod rules;
mod slug;
mod store;
mod tags;
mod target;

pub use listing::{ListQuery, Listed, Order, Sort};
pub use rules::{MaxClicks, Rule};
pub use slug::{Slug, SlugSource, random_slugs};
pub use store::{CORRUPT_COUNT, COUNT, Links, TagCount};
pub use tags::{MAX_TAG_CHARS, MAX_TAGS, Tag, Tags};
pub use target::{OwnOrigins, TargetUrl};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ErrorCode;
use crate::storage::StoreError;

/// Words a slug may not take: the first path segment of every route the app
/// serves (compared case-insensitively). The one list: custom slugs are
/// refused and random ones redrawn.
pub const RESERVED_SLUGS: &[&str] = &["api", "console", "health", "metrics"];

/// Longest target URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// How often a random slug is redrawn after a collision before giving up.
pub const RANDOM_SLUG_ATTEMPTS: usize = 8;

/// The base62 alphabet (random slugs and keys, derived import slugs).
pub(crate) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` random base62 characters from `rng` (random slugs, API key ids and
/// secrets).
pub fn random_base62(len: usize, rng: &mut impl rand::Rng) -> String {
    (0..len)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// What is wrong with a link or its storage. `error.rs` maps it to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Not `[A-Za-z0-9_-]{3,64}`.
    #[error("A slug is 3 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.")]
    InvalidSlug,
    /// One of [`RESERVED_SLUGS`].
    #[error("The slug `{0}` is reserved for the app's own routes.")]
    ReservedSlug(String),
    /// Not an acceptable target URL (the message says why).
    #[error("{0}")]
    InvalidUrl(Cow<'static, str>),
    /// The target resolves to this shortener.
    #[error("The URL points back at this shortener; links to short links are refused.")]
    SelfReferencing,
    /// Not an RFC 3339 timestamp we can store.
    #[error("`{0}` must be an RFC 3339 timestamp, e.g. 2030-01-31T12:00:00Z.")]
    InvalidTimestamp(&'static str),
    /// An expiry that is not in the future.
    #[error("`expires_at` must be in the future.")]
    ExpiryNotInFuture,
    /// A redirect rule that is not valid (the message names it and says why).
    #[error("{0}")]
    InvalidRule(String),
    /// A `max_clicks` below 1.
    #[error("`max_clicks` must be a whole number of at least 1, or null.")]
    InvalidMaxClicks,
    /// The custom slug is owned by another link.
    #[error("The slug `{0}` is already taken.")]
    SlugTaken(Slug),
    /// Every random draw collided.
    #[error("no free random slug of length {len} after {RANDOM_SLUG_ATTEMPTS} attempts")]
    NoFreeSlug {
        /// The slug length drawn.
        len: usize,
    },
    /// Tags: not an array of at most 10 tags of 1 to 32 `[a-z0-9-]`.
    #[error(
        "`tags` is an array of at most 10 tags, each 1 to 32 characters from a-z, 0-9 and '-'."
    )]
    InvalidTag,
    /// A tag rename onto a tag that exists (merging is refused, as Shlink does).
    #[error("The tag `{0}` exists already; delete it first or pick another name.")]
    TagTaken(Tag),
    /// A list's `sort` other than `created`, `clicks`, `slug`.
    #[error("`sort` is one of `created`, `clicks`, `slug`.")]
    InvalidSort,
    /// A list's `order` other than `asc`, `desc`.
    #[error("`order` is `asc` or `desc`.")]
    InvalidOrder,
    /// A page size out of range.
    #[error("`limit` must be a whole number from 1 to {}.", listing::MAX_PAGE)]
    InvalidLimit,
    /// A cursor no page of this sort and order returned.
    #[error("`cursor` is not one this API returned for this `sort` and `order`.")]
    InvalidCursor,
    /// A `sort=clicks` cursor whose snapshot the click log no longer reaches.
    #[error("This cursor is too old to page on exactly; start again from the first page.")]
    CursorExpired,
    /// A search text over [`MAX_SEARCH_BYTES`].
    #[error("`q` is longer than {MAX_SEARCH_BYTES} bytes.")]
    SearchTooLong,
    /// A stored record that does not decode.
    #[error("corrupt link record for {slug}: {reason}")]
    CorruptRecord {
        /// Its slug.
        slug: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LinkError {
    /// The API's `error.code` of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            LinkError::InvalidSlug => ErrorCode::InvalidSlug,
            LinkError::ReservedSlug(_) => ErrorCode::ReservedSlug,
            LinkError::InvalidUrl(_) => ErrorCode::InvalidUrl,
            LinkError::SelfReferencing => ErrorCode::SelfReferencingUrl,
            LinkError::InvalidTimestamp(_) => ErrorCode::InvalidTimestamp,
            LinkError::ExpiryNotInFuture => ErrorCode::InvalidExpiry,
            LinkError::InvalidRule(_) => ErrorCode::InvalidRule,
            LinkError::InvalidMaxClicks => ErrorCode::InvalidMaxClicks,
            LinkError::SlugTaken(_) => ErrorCode::SlugTaken,
            LinkError::SearchTooLong => ErrorCode::InvalidSearch,
            LinkError::InvalidTag => ErrorCode::InvalidTag,
            LinkError::InvalidSort => ErrorCode::InvalidSort,
            LinkError::InvalidOrder => ErrorCode::InvalidOrder,
            LinkError::InvalidLimit => ErrorCode::InvalidLimit,
            LinkError::InvalidCursor => ErrorCode::InvalidCursor,
            LinkError::CursorExpired => ErrorCode::CursorExpired,
            LinkError::TagTaken(_) => ErrorCode::TagTaken,
            LinkError::CorruptRecord { .. } => ErrorCode::CorruptRecord,
            LinkError::NoFreeSlug { .. } => ErrorCode::Internal,
            LinkError::Store(_) => ErrorCode::Internal,
        }
    }
}

/// Parses an RFC 3339 timestamp into UTC. Refused: anything that does not
/// parse, and instants that exist only with their offset (e.g.
/// `9999-12-31T23:59:59-01:00`, which is in the year 10000 in UTC) since
/// they could be neither converted nor stored.
pub fn parse_timestamp(field: &'static str, raw: &str) -> Result<OffsetDateTime, LinkError> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .ok()
        .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
        .filter(|utc| utc.format(&Rfc3339).is_ok())
        .ok_or(LinkError::InvalidTimestamp(field))
}

/// The `expires_at` of a create or an edit: a valid timestamp after `now`.
pub fn parse_expiry(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, LinkError> {
    let at = parse_timestamp("expires_at", raw)?;
    if at <= now {
        return Err(LinkError::ExpiryNotInFuture);
    }
    Ok(at)
}

/// A stored link (the key-value record). Timestamps are typed and stored as
/// RFC 3339 text in UTC, the format the records have always had; a record
/// whose timestamp does not parse is corrupt (never "no expiry").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Its name.
    pub slug: Slug,
    /// Where it redirects.
    pub url: String,
    /// When it was created (UTC, whole seconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops redirecting (UTC); `None` = never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    // --- The redirect's options (`rules`). Each has a serde default and is
    // left out of the record at that default, so records written before
    // them decode, and encode again, unchanged.
    /// Whether the request's query is appended to the target's.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub forward_query: bool,
    /// After this many recorded clicks the link answers 410.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clicks: Option<MaxClicks>,
    /// Before this instant the link answers as if it did not exist.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_from: Option<OffsetDateTime>,
    /// Redirect rules, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    // --- tags (the registry mirrors them: `links.tags`, `link_tags`) ---
    /// Its tags; absent in records written before tags (none).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Link {
    /// A link with only a slug, a URL and a creation time: no expiry, no
    /// start, no limit, no rules, no tags, the query forwarded.
    pub fn new(slug: Slug, url: String, created_at: OffsetDateTime) -> Self {
        Self {
            slug,
            url,
            created_at,
            expires_at: None,
            forward_query: true,
            max_clicks: None,
            valid_from: None,
            rules: Vec::new(),
            tags: Tags::default(),
        }
    }

    /// Whether the link has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// Whether `now` is before the link's `valid_from`.
    pub fn is_not_yet_valid(&self, now: OffsetDateTime) -> bool {
        self.valid_from.is_some_and(|v| now < v)
    }
}

/// An instant as RFC 3339 text (UTC). Every stored instant was checked to
/// format by [`parse_timestamp`] or comes from the clock.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The key of a link's record.
pub fn kv_key(slug: &Slug) -> String {
    format!("link:{slug}")
}

/// Longest search text accepted, in bytes.
pub const MAX_SEARCH_BYTES: usize = 256;

/// What a create asks for, validated.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// The target.
    pub url: TargetUrl,
    /// A custom slug, or `None` for a random one.
    pub slug: Option<Slug>,
    /// When it stops redirecting.
    pub expires_at: Option<OffsetDateTime>,
    /// Its tags.
    pub tags: Tags,
    /// The redirect's options.
    pub options: RedirectOptions,
}

/// The redirect's options of a new link (see [`Link`]).
#[derive(Debug, Clone)]
pub struct RedirectOptions {
    /// Append the request's query to the target's.
    pub forward_query: bool,
    /// The click limit.
    pub max_clicks: Option<MaxClicks>,
    /// Not before.
    pub valid_from: Option<OffsetDateTime>,
    /// Redirect rules.
    pub rules: Vec<Rule>,
}

impl Default for RedirectOptions {
    fn default() -> Self {
        Self {
            forward_query: true,
            max_clicks: None,
            valid_from: None,
            rules: Vec::new(),
        }
    }
}

/// What an edit changes, validated. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    /// A new target.
    pub url: Option<TargetUrl>,
    /// A new expiry; `Some(None)` removes it.
    pub expires_at: Option<Option<OffsetDateTime>>,
    // --- The redirect's options; `Some(None)` (or an empty list) clears.
    /// Query forwarding on or off.
    pub forward_query: Option<bool>,
    /// A new click limit.
    pub max_clicks: Option<Option<MaxClicks>>,
    /// A new start.
    pub valid_from: Option<Option<OffsetDateTime>>,
    /// New rules.
    pub rules: Option<Vec<Rule>>,
    /// New tags (replacing them all; empty clears them).
    pub tags: Option<Tags>,
}

impl LinkPatch {
    /// Applies the patch to `link`.
    pub fn apply(&self, link: &mut Link) {
        if let Some(url) = &self.url {
            link.url = url.as_str().to_owned();
        }
        if let Some(expires_at) = self.expires_at {
            link.expires_at = expires_at;
        }
        if let Some(forward_query) = self.forward_query {
            link.forward_query = forward_query;
        }
        if let Some(max_clicks) = self.max_clicks {
            link.max_clicks = max_clicks;
        }
        if let Some(valid_from) = self.valid_from {
            link.valid_from = valid_from;
        }
        if let Some(rules) = &self.rules {
            link.rules = rules.clone();
        }
        if let Some(tags) = &self.tags {
            link.tags = tags.clone();
        }
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.url.is_none()
            && self.expires_at.is_none()
            && self.forward_query.is_none()
            && self.max_clicks.is_none()
            && self.valid_from.is_none()
            && self.rules.is_none()
            && self.tags.is_none()
    }
}

/// A search: what a slug or target URL must contain, lower-cased; 1 to
/// [`MAX_SEARCH_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Validates `raw` (surrounding white space is dropped); `None` when it is
    /// empty, i.e. no filter.
    pub fn parse(raw: &str) -> Result<Option<Self>, LinkError> {
        let text = raw.trim();
        if text.len() > MAX_SEARCH_BYTES {
            return Err(LinkError::SearchTooLong);
        }
        Ok((!text.is_empty()).then(|| Self(text.to_ascii_lowercase())))
    }

    /// Whether `link`'s slug or target URL contains the text.
    pub fn matches(&self, link: &Link) -> bool {
        link.slug.as_str().to_ascii_lowercase().contains(&self.0)
            || link.url.to_ascii_lowercase().contains(&self.0)
    }

    /// The text as a SQL `LIKE` pattern (`%text%`, with `\` escaping `%`,
    /// `_` and itself): SQLite's `LIKE` ignores ASCII case, as
    /// [`Self::matches`] does.
    pub fn like_pattern(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 2);
        out.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('%');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy() -> Link {
        serde_json::from_str(
            r#"{"slug":"old","url":"https://e.com/","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_record_written_before_the_redirect_options_decodes_and_encodes_unchanged() {
        let raw = r#"{"slug":"old","url":"https://e.com/","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#;
        let link: Link = serde_json::from_str(raw).unwrap();
        assert!(link.forward_query);
        assert_eq!((link.max_clicks, link.valid_from), (None, None));
        assert!(link.rules.is_empty());
        assert_eq!(serde_json::to_string(&link).unwrap(), raw);
        let mut limited = link.clone();
        limited.forward_query = false;
        limited.max_clicks = Some(MaxClicks::parse(3).unwrap());
        let text = serde_json::to_string(&limited).unwrap();
        assert!(
            text.contains(r#""forward_query":false"#) && text.contains(r#""max_clicks":3"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Link>(&text).unwrap(), limited);
    }

    #[test]
    fn a_link_is_valid_from_its_start_inclusive() {
        let at = |s| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let mut link = legacy();
        assert!(!link.is_not_yet_valid(at("2000-01-01T00:00:00Z")));
        link.valid_from = Some(at("2030-01-02T00:00:00Z"));
        assert!(link.is_not_yet_valid(at("2030-01-01T23:59:59Z")));
        assert!(!link.is_not_yet_valid(at("2030-01-02T00:00:00Z")));
    }

    #[test]
    fn search_text_matches_slug_or_url_ignoring_ascii_case() {
        let link = Link {
            slug: Slug::parse("Launch-2030").unwrap(),
            url: "https://example.com/Docs?x=1".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            ..legacy()
        };
        let q = |raw| SearchText::parse(raw).unwrap().unwrap();
        assert!(q("launch").matches(&link));
        assert!(q("EXAMPLE.com/docs").matches(&link));
        assert!(q(" x=1 ").matches(&link));
        assert!(!q("other").matches(&link));
    }

    #[test]
    fn empty_search_text_is_no_filter_and_long_text_is_refused() {
        assert_eq!(SearchText::parse("").unwrap(), None);
        assert_eq!(SearchText::parse("   ").unwrap(), None);
        let long = "a".repeat(MAX_SEARCH_BYTES + 1);
        let err = SearchText::parse(&long).unwrap_err();
        assert_eq!(err.code(), "invalid_search");
        assert!(SearchText::parse(&long[1..]).unwrap().is_some());
    }

    #[test]
    fn a_search_as_a_like_pattern_escapes_the_wildcards() {
        let q = |raw| SearchText::parse(raw).unwrap().unwrap().like_pattern();
        assert_eq!(q("Docs"), "%docs%");
        assert_eq!(q("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn a_record_written_before_tags_decodes_with_none_and_untagged_records_look_as_before() {
        let old = r#"{"slug":"abc","url":"https://e.com/","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#;
        let link: Link = serde_json::from_str(old).unwrap();
        assert!(link.tags.is_empty());
        assert_eq!(serde_json::to_string(&link).unwrap(), old);
        let tagged = Link {
            tags: Tags::parse(&["a"]).unwrap(),
            ..link
        };
        assert!(
            serde_json::to_string(&tagged)
                .unwrap()
                .ends_with(r#","tags":["a"]}"#)
        );
    }

    #[test]
    fn expiry_is_inclusive_of_the_instant() {
        let at = |s| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let link = Link {
            slug: Slug::parse("abc").unwrap(),
            url: "https://e.com/".into(),
            created_at: at("2030-01-01T00:00:00Z"),
            expires_at: Some(at("2030-01-02T00:00:00Z")),
            ..legacy()
        };
        assert!(!link.is_expired(at("2030-01-01T23:59:59Z")));
        assert!(link.is_expired(at("2030-01-02T00:00:00Z")));
    }
}
