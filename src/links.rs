//! Links: the domain types and their storage.
//!
//! A link's record lives in the key-value store under `link:<slug>` (one fast
//! read on the redirect path). The SQLite `links` registry is the arbiter of
//! slug ownership — key-value stores have no create-if-absent, SQLite's
//! primary key does — and the ordered index behind paging.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::{Host, Url};

use crate::storage::{KvStore, SqlStore, SqlValue, Statement, StoreError};

/// Words a slug may not take: the first path segment of every route the app
/// serves (compared case-insensitively). The one list: custom slugs are
/// refused and random ones redrawn.
pub const RESERVED_SLUGS: &[&str] = &["api", "console", "health", "metrics"];

/// Longest target URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// How often a random slug is redrawn after a collision before giving up.
pub const RANDOM_SLUG_ATTEMPTS: usize = 8;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

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
    /// The custom slug is owned by another link.
    #[error("The slug `{0}` is already taken.")]
    SlugTaken(Slug),
    /// Every random draw collided.
    #[error("no free random slug of length {len} after {RANDOM_SLUG_ATTEMPTS} attempts")]
    NoFreeSlug {
        /// The slug length drawn.
        len: usize,
    },
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
    /// The snake_case code of a validation error (the API's `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::InvalidSlug => "invalid_slug",
            LinkError::ReservedSlug(_) => "reserved_slug",
            LinkError::InvalidUrl(_) => "invalid_url",
            LinkError::SelfReferencing => "self_referencing_url",
            LinkError::InvalidTimestamp(_) => "invalid_timestamp",
            LinkError::ExpiryNotInFuture => "invalid_expiry",
            LinkError::SlugTaken(_) => "slug_taken",
            LinkError::SearchTooLong => "invalid_search",
            LinkError::NoFreeSlug { .. } | LinkError::CorruptRecord { .. } => "internal",
            LinkError::Store(_) => "internal",
        }
    }
}

/// A short-link name: `[A-Za-z0-9_-]{3,64}`, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Validates `raw` as a slug.
    pub fn parse(raw: &str) -> Result<Self, LinkError> {
        let len_ok = (3..=64).contains(&raw.len());
        let chars_ok = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !len_ok || !chars_ok {
            return Err(LinkError::InvalidSlug);
        }
        if is_reserved(raw) {
            return Err(LinkError::ReservedSlug(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A random base62 slug of `len` characters, redrawn while it is a
    /// reserved word (`metrics` and `console` are 7 characters, the default).
    pub fn random(len: usize, rng: &mut impl Rng) -> Self {
        loop {
            let s: String = (0..len)
                .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
                .collect();
            if !is_reserved(&s) {
                return Self(s);
            }
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_reserved(raw: &str) -> bool {
    RESERVED_SLUGS.iter().any(|r| r.eq_ignore_ascii_case(raw))
}

impl TryFrom<String> for Slug {
    type Error = LinkError;
    fn try_from(s: String) -> Result<Self, LinkError> {
        Slug::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where this shortener answers, as a target URL would name it: the host
/// and port of `public_base_url` and of every operator alias
/// (`public_host_aliases`), under the base's path prefix.
///
/// Hosts are compared normalised: lower case, without a trailing dot,
/// IPv4-mapped / -compatible IPv6 as IPv4, and every loopback or unspecified
/// address (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`, `0.0.0.0`, `::`)
/// as one "this machine". Ports are compared with their scheme's default
/// filled in; the web ports 80 and 443 count as one, since a proxy serving
/// one normally serves (or redirects) the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOrigins {
    origins: Vec<(HostKey, Option<u16>)>,
    path_prefix: String,
}

/// A host, normalised for "is it us?".
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKey {
    /// Any loopback or unspecified address, or `localhost`.
    ThisMachine,
    Ip(IpAddr),
    Name(String),
}

impl HostKey {
    fn of(host: Host<&str>) -> Self {
        match host {
            Host::Domain(name) => {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    HostKey::ThisMachine
                } else if let Ok(ip) = name.parse::<IpAddr>() {
                    Self::ip(ip)
                } else {
                    HostKey::Name(name)
                }
            }
            Host::Ipv4(ip) => Self::ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Self::ip(IpAddr::V6(ip)),
        }
    }

    fn ip(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => {
                v6.to_ipv4().map_or(IpAddr::V6(v6), IpAddr::V4)
            }
            other => other,
        };
        if ip.is_loopback() || ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            HostKey::ThisMachine
        } else {
            HostKey::Ip(ip)
        }
    }
}

/// Whether two ports reach the same server (80 and 443 count as one).
fn same_port(a: u16, b: u16) -> bool {
    let web = |p| p == 80 || p == 443;
    a == b || (web(a) && web(b))
}

impl OwnOrigins {
    /// Our origins from the (validated) base URL and alias entries
    /// (`host` or `host:port`; IPv6 in brackets). An alias without a port
    /// stands for the base's port and the web ports.
    pub fn new(base: &Url, aliases: &[String]) -> Result<Self, String> {
        let mut origins = Vec::with_capacity(1 + aliases.len());
        let base_port = base.port_or_known_default().unwrap_or(80);
        if let Some(host) = base.host() {
            origins.push((HostKey::of(host), Some(base_port)));
        }
        for alias in aliases {
            let url = Url::parse(&format!("http://{alias}"))
                .ok()
                .filter(|u| {
                    u.path() == "/"
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none()
                })
                .ok_or_else(|| format!("`{alias}` is not a host or host:port"))?;
            let host = HostKey::of(url.host().ok_or_else(|| format!("`{alias}` has no host"))?);
            // `http://h:80` reports no port: it is a web port like none given.
            if url.port().is_none() {
                origins.push((host.clone(), Some(base_port)));
            }
            origins.push((host, url.port()));
        }
        Ok(Self {
            origins,
            path_prefix: base.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Whether `url` resolves to one of our origins, under our path prefix.
    pub fn contains(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return false;
        };
        let key = HostKey::of(host);
        let ours = self
            .origins
            .iter()
            .any(|(h, p)| *h == key && same_port(p.unwrap_or(80), port));
        let prefix = &self.path_prefix;
        ours && (prefix.is_empty()
            || url.path() == prefix
            || url
                .path()
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// A redirect target: an absolute http(s) URL with a host, at most
/// [`MAX_URL_BYTES`], without credentials, not pointing at our own links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

impl TargetUrl {
    /// Validates `raw`; `ours` is where this shortener answers.
    pub fn parse(raw: &str, ours: &OwnOrigins) -> Result<Self, LinkError> {
        let invalid = |m: &'static str| LinkError::InvalidUrl(Cow::Borrowed(m));
        if raw.len() > MAX_URL_BYTES {
            return Err(LinkError::InvalidUrl(
                format!("The URL is longer than {MAX_URL_BYTES} bytes.").into(),
            ));
        }
        if raw.trim() != raw || raw.is_empty() {
            return Err(invalid("The URL is empty or has surrounding white space."));
        }
        let url = Url::parse(raw)
            .map_err(|e| LinkError::InvalidUrl(format!("The URL is not valid: {e}.").into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("Only http and https URLs can be shortened."));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("The URL has no host."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("URLs with embedded credentials are not accepted."));
        }
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(LinkError::InvalidUrl(
                format!("The URL is longer than {MAX_URL_BYTES} bytes once normalised.").into(),
            ));
        }
        if ours.contains(&url) {
            return Err(LinkError::SelfReferencing);
        }
        Ok(Self(url))
    }

    /// The normalised URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
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
}

impl Link {
    /// Whether the link has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
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

const CLAIM: Statement = Statement {
    sql: "INSERT INTO links (slug, created_at) VALUES (?1, ?2) ON CONFLICT (slug) DO NOTHING RETURNING slug",
    operation: "INSERT",
    table: "links",
};
const RELEASE: Statement = Statement {
    sql: "DELETE FROM links WHERE slug = ?1 AND created_at = ?2",
    operation: "DELETE",
    table: "links",
};
const PAGE: Statement = Statement {
    sql: "SELECT slug FROM links WHERE slug > ?1 ORDER BY slug LIMIT ?2",
    operation: "SELECT",
    table: "links",
};
const REMOVE: Statement = Statement {
    sql: "DELETE FROM links WHERE slug = ?1 RETURNING slug",
    operation: "DELETE",
    table: "links",
};
const REGISTERED: Statement = Statement {
    sql: "SELECT count(*) FROM links WHERE slug = ?1",
    operation: "SELECT",
    table: "links",
};
/// Registry rows a search reads per request, at most (see [`Links::search`]).
pub const SEARCH_SCAN_LIMIT: usize = 1000;
/// Longest search text accepted, in bytes.
pub const MAX_SEARCH_BYTES: usize = 256;

/// Number of links (for `/metrics`).
pub const COUNT: Statement = Statement {
    sql: "SELECT count(*) FROM links",
    operation: "SELECT",
    table: "links",
};

/// What a create asks for, validated.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// The target.
    pub url: TargetUrl,
    /// A custom slug, or `None` for a random one.
    pub slug: Option<Slug>,
    /// When it stops redirecting.
    pub expires_at: Option<OffsetDateTime>,
}

/// What an edit changes, validated. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    /// A new target.
    pub url: Option<TargetUrl>,
    /// A new expiry; `Some(None)` removes it.
    pub expires_at: Option<Option<OffsetDateTime>>,
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
}

/// Where random slug candidates come from (swappable in tests). A candidate
/// that is no valid slug (a reserved word) is redrawn like a collision.
pub type SlugSource = std::sync::Arc<dyn Fn(usize) -> String + Send + Sync>;

/// Random base62 slugs from the thread's CSPRNG.
pub fn random_slugs() -> SlugSource {
    std::sync::Arc::new(|len| Slug::random(len, &mut rand::rng()).0)
}

/// Link storage over the two ports.
pub struct Links<'a> {
    /// Key-value store (records).
    pub kv: &'a dyn KvStore,
    /// SQLite (registry).
    pub sql: &'a dyn SqlStore,
    /// Random slug candidates.
    pub slugs: &'a SlugSource,
}

impl Links<'_> {
    /// Stores a new link. A taken custom slug is a conflict and is never
    /// overwritten, also when two creates race: the SQLite registry insert
    /// decides who owns the slug before anything is written to key-value.
    /// Everything that can be refused is checked before the claim, and a
    /// claim whose record could not be written is released.
    pub async fn create(
        &self,
        new: NewLink,
        slug_length: usize,
        now: OffsetDateTime,
    ) -> Result<Link, LinkError> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let created_unix = now.unix_timestamp();
        let slug = match new.slug {
            Some(slug) => {
                if !self.claim(&slug, created_unix).await? {
                    return Err(LinkError::SlugTaken(slug));
                }
                slug
            }
            None => self.claim_random(slug_length, created_unix).await?,
        };
        let link = Link {
            slug: slug.clone(),
            url: new.url.as_str().to_owned(),
            created_at: now,
            expires_at: new.expires_at,
        };
        let written = match serde_json::to_vec(&link) {
            Ok(record) => self
                .kv
                .set(&kv_key(&slug), &record)
                .await
                .map_err(Into::into),
            Err(e) => Err(LinkError::CorruptRecord {
                slug: slug.to_string(),
                reason: e.to_string(),
            }),
        };
        if let Err(e) = written {
            // Give the slug back so a retry can succeed; nothing else was written.
            let release = self
                .sql
                .execute(
                    &RELEASE,
                    vec![slug.as_str().into(), SqlValue::Integer(created_unix)],
                )
                .await;
            if let Err(r) = release {
                tracing::error!(error = %r, "could not release a claimed slug");
            }
            return Err(e);
        }
        Ok(link)
    }

    async fn claim(&self, slug: &Slug, created_unix: i64) -> Result<bool, StoreError> {
        let rows = self
            .sql
            .execute(
                &CLAIM,
                vec![slug.as_str().into(), SqlValue::Integer(created_unix)],
            )
            .await?;
        Ok(!rows.rows.is_empty())
    }

    async fn claim_random(&self, len: usize, created_unix: i64) -> Result<Slug, LinkError> {
        for _ in 0..RANDOM_SLUG_ATTEMPTS {
            let Ok(slug) = Slug::parse(&(self.slugs)(len)) else {
                continue;
            };
            if self.claim(&slug, created_unix).await? {
                return Ok(slug);
            }
        }
        Err(LinkError::NoFreeSlug { len })
    }

    /// The link named `slug`, if stored.
    pub async fn get(&self, slug: &Slug) -> Result<Option<Link>, LinkError> {
        let Some(bytes) = self.kv.get(&kv_key(slug)).await? else {
            return Ok(None);
        };
        decode(slug, &bytes).map(Some)
    }

    /// Up to `limit` links after `cursor`, in slug order, and the cursor of
    /// the next page.
    pub async fn page(
        &self,
        cursor: Option<&Slug>,
        limit: usize,
    ) -> Result<(Vec<Link>, Option<String>), LinkError> {
        let after = cursor.map_or("", Slug::as_str);
        let slugs = self.slugs_after(after, limit + 1).await?;
        let more = slugs.len() > limit;
        let mut links = Vec::with_capacity(limit);
        for raw in slugs.iter().take(limit) {
            let slug = Slug(raw.clone());
            // A slug claimed by a create still writing its record is skipped.
            if let Some(link) = self.get(&slug).await? {
                links.push(link);
            }
        }
        let next = more.then(|| slugs[limit - 1].clone());
        Ok((links, next))
    }

    /// Up to `limit` links after `cursor` whose slug or target URL contains
    /// `needle` (ASCII case-insensitive), in slug order, and the cursor of the
    /// next page.
    ///
    /// Target URLs live only in key-value, so this walks the registry in slug
    /// order and reads each record. It reads at most [`SEARCH_SCAN_LIMIT`]
    /// registry rows per call: when that budget runs out first, the page holds
    /// the matches found so far (maybe none) and `next` is the last slug read,
    /// so the caller continues exactly where this call stopped. Keyset paging
    /// stays exact: every match is returned once, `next` is `None` only when
    /// the registry has no slug after the last one read.
    pub async fn search(
        &self,
        needle: &SearchText,
        cursor: Option<&Slug>,
        limit: usize,
    ) -> Result<(Vec<Link>, Option<String>), LinkError> {
        const BATCH: usize = 100;
        let mut after = cursor.map_or_else(String::new, |c| c.as_str().to_owned());
        let mut found = Vec::with_capacity(limit);
        let mut scanned = 0;
        loop {
            let want = BATCH.min(SEARCH_SCAN_LIMIT - scanned);
            let slugs = self.slugs_after(&after, want).await?;
            let exhausted = slugs.len() < want;
            for (i, raw) in slugs.iter().enumerate() {
                scanned += 1;
                after.clone_from(raw);
                let slug = Slug(raw.clone());
                // A slug claimed by a create still writing its record is skipped.
                if let Some(link) = self.get(&slug).await?
                    && needle.matches(&link)
                {
                    found.push(link);
                }
                if found.len() == limit {
                    let last_of_registry = exhausted && i + 1 == slugs.len();
                    let next = if last_of_registry {
                        None
                    } else {
                        self.any_after(&after).await?.then(|| after.clone())
                    };
                    return Ok((found, next));
                }
            }
            if exhausted {
                return Ok((found, None));
            }
            if scanned >= SEARCH_SCAN_LIMIT {
                let next = self.any_after(&after).await?.then_some(after);
                return Ok((found, next));
            }
        }
    }

    async fn any_after(&self, after: &str) -> Result<bool, LinkError> {
        Ok(!self.slugs_after(after, 1).await?.is_empty())
    }

    /// Up to `count` registered slugs after `after`, in slug order.
    async fn slugs_after(&self, after: &str, count: usize) -> Result<Vec<String>, LinkError> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let rows = self
            .sql
            .execute(&PAGE, vec![after.into(), SqlValue::Integer(count)])
            .await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| r.first().and_then(SqlValue::as_str).map(str::to_owned))
            .collect())
    }

    /// Applies `patch` to the stored link; `None` when no such link.
    ///
    /// The registry stays the arbiter: a record is only rewritten for a slug
    /// the registry holds, and when a delete removed the slug while this write
    /// was under way, the rewritten record is removed again, so no record ever
    /// outlives its registry row.
    pub async fn update(&self, slug: &Slug, patch: LinkPatch) -> Result<Option<Link>, LinkError> {
        let Some(mut link) = self.get(slug).await? else {
            return Ok(None);
        };
        if !self.registered(slug).await? {
            return Ok(None);
        }
        if let Some(url) = patch.url {
            link.url = url.as_str().to_owned();
        }
        if let Some(expires_at) = patch.expires_at {
            link.expires_at = expires_at;
        }
        let record = serde_json::to_vec(&link).map_err(|e| LinkError::CorruptRecord {
            slug: slug.to_string(),
            reason: e.to_string(),
        })?;
        self.kv.set(&kv_key(slug), &record).await?;
        if !self.registered(slug).await? {
            // Deleted meanwhile: the delete wins.
            self.kv.delete(&kv_key(slug)).await?;
            return Ok(None);
        }
        Ok(Some(link))
    }

    async fn registered(&self, slug: &Slug) -> Result<bool, LinkError> {
        let rows = self
            .sql
            .execute(&REGISTERED, vec![slug.as_str().into()])
            .await?;
        Ok(rows.scalar_i64() > 0)
    }

    /// Removes the link, its clicks and its rollups. `false` when absent.
    ///
    /// Never half-deleted: the record is removed from key-value first, then
    /// the registry row (one statement: the `links_delete` trigger removes
    /// clicks and rollups atomically with it). If that statement fails, the
    /// record is written back, so the link is either wholly there or wholly
    /// gone.
    pub async fn delete(&self, slug: &Slug) -> Result<bool, LinkError> {
        let key = kv_key(slug);
        let record = self.kv.get(&key).await?;
        if record.is_some() {
            self.kv.delete(&key).await?;
        }
        let removed = match self.sql.execute(&REMOVE, vec![slug.as_str().into()]).await {
            Ok(rows) => !rows.rows.is_empty(),
            Err(e) => {
                if let Some(record) = &record
                    && let Err(restore) = self.kv.set(&key, record).await
                {
                    tracing::error!(error = %restore, "could not restore a link record");
                }
                return Err(e.into());
            }
        };
        Ok(record.is_some() || removed)
    }
}

fn decode(slug: &Slug, bytes: &[u8]) -> Result<Link, LinkError> {
    serde_json::from_slice(bytes).map_err(|e| LinkError::CorruptRecord {
        slug: slug.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> OwnOrigins {
        ours("https://sho.rt", &[])
    }

    fn ours(base: &str, aliases: &[&str]) -> OwnOrigins {
        let aliases: Vec<String> = aliases.iter().map(|a| (*a).to_owned()).collect();
        OwnOrigins::new(&Url::parse(base).unwrap(), &aliases).unwrap()
    }

    #[test]
    fn slugs_of_the_allowed_alphabet_and_length_parse() {
        for ok in ["abc", "A-b_9", &"x".repeat(64)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn slugs_too_short_too_long_or_with_other_characters_are_refused() {
        for bad in [
            "ab",
            "",
            &"x".repeat(65),
            "a b",
            "ab/c",
            "abc.d",
            "ünï",
            "ab%20",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_words_are_refused_in_any_case() {
        for bad in ["api", "API", "Health", "metrics"] {
            let err = Slug::parse(bad).unwrap_err();
            assert_eq!(err.code(), "reserved_slug");
        }
    }

    #[test]
    fn random_slugs_are_base62_of_the_requested_length() {
        let mut rng = rand::rng();
        for len in [4, 7, 32] {
            let s = Slug::random(len, &mut rng);
            assert_eq!(s.as_str().len(), len);
            assert!(s.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(Slug::parse(s.as_str()).is_ok());
        }
    }

    #[test]
    fn absolute_http_and_https_urls_are_accepted() {
        for ok in [
            "https://example.com",
            "http://example.com/a?b=c#d",
            "https://xn--bcher-kva.example/",
        ] {
            assert!(TargetUrl::parse(ok, &base()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn other_schemes_relative_urls_and_credentials_are_refused() {
        for bad in [
            "ftp://example.com",
            "javascript:alert(1)",
            "/relative",
            "example.com",
            "https://user:pw@example.com",
            "mailto:a@b.c",
            "",
            " https://example.com",
            "http://",
        ] {
            assert!(TargetUrl::parse(bad, &base()).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_over_2048_bytes_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(TargetUrl::parse(&long, &base()).is_err());
        let fits = format!("https://example.com/{}", "a".repeat(2048 - 20));
        assert_eq!(fits.len(), 2048);
        assert!(TargetUrl::parse(&fits, &base()).is_ok());
    }

    #[test]
    fn urls_pointing_back_at_the_shortener_are_refused() {
        for bad in ["https://sho.rt/abc", "http://SHO.RT/x", "https://sho.rt"] {
            let err = TargetUrl::parse(bad, &base()).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        let with_path = ours("https://example.com/s/", &[]);
        assert!(TargetUrl::parse("https://example.com/s/abc", &with_path).is_err());
        assert!(TargetUrl::parse("https://example.com/s", &with_path).is_err());
        assert!(TargetUrl::parse("https://example.com/other", &with_path).is_ok());
        assert!(TargetUrl::parse("https://example.com/sx", &with_path).is_ok());
    }

    #[test]
    fn urls_reaching_the_shortener_by_another_name_are_refused() {
        let local = ours("http://127.0.0.1:3000", &[]);
        for bad in [
            "http://localhost:3000/x",
            "http://LOCALHOST.:3000/x",
            "http://app.localhost:3000/x",
            "http://127.0.0.1.:3000/x",
            "http://127.1:3000/x",
            "http://2130706433:3000/x",
            "http://127.0.0.2:3000/x",
            "http://[::1]:3000/x",
            "http://[::ffff:127.0.0.1]:3000/x",
            "http://[::ffff:7f00:1]:3000/x",
            "http://0.0.0.0:3000/x",
            "http://[::]:3000/x",
        ] {
            let err = TargetUrl::parse(bad, &local).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        // Another port on this machine is another service.
        assert!(TargetUrl::parse("http://localhost:8080/x", &local).is_ok());

        let public = ours("https://sho.rt", &["go.example", "10.1.2.3:8443"]);
        for bad in [
            "https://sho.rt./x",
            "http://sho.rt:80/x",
            "https://sho.rt:443/x",
            "https://GO.example./x",
            "https://10.1.2.3:8443/x",
            "https://[::ffff:10.1.2.3]:8443/x",
        ] {
            let err = TargetUrl::parse(bad, &public).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        for ok in [
            "https://sho.rt:8443/x",
            "https://10.1.2.3/x",
            "https://notsho.rt/x",
            "http://localhost/x",
        ] {
            assert!(TargetUrl::parse(ok, &public).is_ok(), "{ok}");
        }
    }

    #[test]
    fn search_text_matches_slug_or_url_ignoring_ascii_case() {
        let link = Link {
            slug: Slug::parse("Launch-2030").unwrap(),
            url: "https://example.com/Docs?x=1".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
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

    /// A key-value store whose `set` first lets a concurrent delete of the
    /// slug's registry row through (the race `update` must survive).
    struct DeleteDuringSet {
        kv: crate::native::MemoryKv,
        sql: std::sync::Arc<crate::native::SqliteStore>,
    }

    #[async_trait::async_trait]
    impl KvStore for DeleteDuringSet {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.kv.get(key).await
        }
        async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            let slug = key.trim_start_matches("link:");
            self.sql.execute(&REMOVE, vec![slug.into()]).await?;
            self.kv.set(key, value).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.kv.delete(key).await
        }
        async fn exists(&self, key: &str) -> Result<bool, StoreError> {
            self.kv.exists(key).await
        }
        async fn get_keys(&self) -> Result<Vec<String>, StoreError> {
            self.kv.get_keys().await
        }
    }

    #[tokio::test]
    async fn an_update_racing_a_delete_leaves_no_record_behind() {
        let dir = tempfile::tempdir().unwrap();
        let sql =
            std::sync::Arc::new(crate::native::SqliteStore::open(dir.path().join("l.db")).unwrap());
        crate::migrations::run(sql.as_ref(), 0).await.unwrap();
        let kv = crate::native::MemoryKv::default();
        let slugs = random_slugs();
        let plain = Links {
            kv: &kv,
            sql: sql.as_ref(),
            slugs: &slugs,
        };
        let new = NewLink {
            url: TargetUrl::parse("https://e.com/", &base()).unwrap(),
            slug: Some(Slug::parse("racy").unwrap()),
            expires_at: None,
        };
        plain
            .create(new, 7, OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap();

        let racing = DeleteDuringSet {
            kv: kv.clone(),
            sql: sql.clone(),
        };
        let links = Links {
            kv: &racing,
            sql: sql.as_ref(),
            slugs: &slugs,
        };
        let patch = LinkPatch {
            url: Some(TargetUrl::parse("https://f.com/", &base()).unwrap()),
            expires_at: None,
        };
        let slug = Slug::parse("racy").unwrap();
        assert_eq!(links.update(&slug, patch).await.unwrap(), None);
        assert_eq!(kv.get(&kv_key(&slug)).await.unwrap(), None);
        assert!(!plain.registered(&slug).await.unwrap());
    }

    #[test]
    fn expiry_is_inclusive_of_the_instant() {
        let at = |s| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let link = Link {
            slug: Slug::parse("abc").unwrap(),
            url: "https://e.com/".into(),
            created_at: at("2030-01-01T00:00:00Z"),
            expires_at: Some(at("2030-01-02T00:00:00Z")),
        };
        assert!(!link.is_expired(at("2030-01-01T23:59:59Z")));
        assert!(link.is_expired(at("2030-01-02T00:00:00Z")));
    }
}
