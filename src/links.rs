//! Links: the domain types and their storage.
//!
//! A link's record lives in the key-value store under `link:<slug>` (one fast
//! read on the redirect path). The SQLite `links` registry is the arbiter of
//! slug ownership — key-value stores have no create-if-absent, SQLite's
//! primary key does — and the ordered index behind paging.

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::error::AppError;
use crate::storage::{KvStore, SqlStore, SqlValue, Statement, StoreError};

/// Words a custom slug may not take: the first path segment of every route
/// the app serves (compared case-insensitively).
pub const RESERVED_SLUGS: &[&str] = &["api", "console", "health", "metrics"];

/// Longest target URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// How often a random slug is redrawn after a collision before giving up.
pub const RANDOM_SLUG_ATTEMPTS: usize = 8;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A short-link name: `[A-Za-z0-9_-]{3,64}`, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Validates `raw` as a slug.
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let len_ok = (3..=64).contains(&raw.len());
        let chars_ok = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !len_ok || !chars_ok {
            return Err(AppError::validation(
                "invalid_slug",
                "A slug is 3 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.",
            ));
        }
        if RESERVED_SLUGS.iter().any(|r| r.eq_ignore_ascii_case(raw)) {
            return Err(AppError::validation(
                "reserved_slug",
                format!("The slug `{raw}` is reserved for the app's own routes."),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A random base62 slug of `len` characters.
    pub fn random(len: usize, rng: &mut impl Rng) -> Self {
        let s: String = (0..len)
            .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
            .collect();
        Self(s)
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = AppError;
    fn try_from(s: String) -> Result<Self, AppError> {
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

/// A redirect target: an absolute http(s) URL with a host, at most
/// [`MAX_URL_BYTES`], without credentials, not pointing at our own links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

impl TargetUrl {
    /// Validates `raw`; `own_base` is the shortener's `public_base_url`.
    pub fn parse(raw: &str, own_base: &Url) -> Result<Self, AppError> {
        if raw.len() > MAX_URL_BYTES {
            return Err(AppError::validation(
                "invalid_url",
                format!("The URL is longer than {MAX_URL_BYTES} bytes."),
            ));
        }
        if raw.trim() != raw || raw.is_empty() {
            return Err(AppError::validation(
                "invalid_url",
                "The URL is empty or has surrounding white space.",
            ));
        }
        let url = Url::parse(raw).map_err(|e| {
            AppError::validation("invalid_url", format!("The URL is not valid: {e}."))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::validation(
                "invalid_url",
                "Only http and https URLs can be shortened.",
            ));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(AppError::validation("invalid_url", "The URL has no host."));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::validation(
                "invalid_url",
                "URLs with embedded credentials are not accepted.",
            ));
        }
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(AppError::validation(
                "invalid_url",
                format!("The URL is longer than {MAX_URL_BYTES} bytes once normalised."),
            ));
        }
        let own_host = own_base.host_str().unwrap_or_default();
        let own_path = own_base.path().trim_end_matches('/');
        if host.eq_ignore_ascii_case(own_host)
            && (own_path.is_empty() || url.path().starts_with(own_path))
        {
            return Err(AppError::validation(
                "self_referencing_url",
                "The URL points back at this shortener; links to short links are refused.",
            ));
        }
        Ok(Self(url))
    }

    /// The normalised URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A UTC instant in RFC 3339 on the wire.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(field: &str, raw: &str) -> Result<OffsetDateTime, AppError> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        AppError::validation(
            "invalid_timestamp",
            format!("`{field}` must be an RFC 3339 timestamp, e.g. 2030-01-31T12:00:00Z."),
        )
    })
}

/// Parses an `expires_at` for a create or an edit: RFC 3339, after `now`.
pub fn parse_expiry(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, AppError> {
    let at = parse_rfc3339("expires_at", raw)?;
    if at <= now {
        return Err(AppError::validation(
            "invalid_expiry",
            "`expires_at` must be in the future.",
        ));
    }
    Ok(at)
}

/// A stored link (the key-value record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Its name.
    pub slug: Slug,
    /// Where it redirects.
    pub url: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; `None` = never.
    pub expires_at: Option<String>,
}

impl Link {
    /// Whether the link has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at
            .as_deref()
            .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
            .is_some_and(|e| now >= e)
    }
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
    pub fn parse(raw: &str) -> Result<Option<Self>, AppError> {
        let text = raw.trim();
        if text.len() > MAX_SEARCH_BYTES {
            return Err(AppError::validation(
                "invalid_search",
                format!("`q` is longer than {MAX_SEARCH_BYTES} bytes."),
            ));
        }
        Ok((!text.is_empty()).then(|| Self(text.to_ascii_lowercase())))
    }

    /// Whether `link`'s slug or target URL contains the text.
    pub fn matches(&self, link: &Link) -> bool {
        link.slug.as_str().to_ascii_lowercase().contains(&self.0)
            || link.url.to_ascii_lowercase().contains(&self.0)
    }
}

/// Where random slugs come from (swappable in tests).
pub type SlugSource = std::sync::Arc<dyn Fn(usize) -> Slug + Send + Sync>;

/// Random base62 slugs from the thread's CSPRNG.
pub fn random_slugs() -> SlugSource {
    std::sync::Arc::new(|len| Slug::random(len, &mut rand::rng()))
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
    pub async fn create(
        &self,
        new: NewLink,
        slug_length: usize,
        now: OffsetDateTime,
    ) -> Result<Link, AppError> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let created_unix = now.unix_timestamp();
        let slug = match new.slug {
            Some(slug) => {
                if !self.claim(&slug, created_unix).await? {
                    return Err(AppError::Conflict(format!(
                        "The slug `{slug}` is already taken."
                    )));
                }
                slug
            }
            None => self.claim_random(slug_length, created_unix).await?,
        };
        let link = Link {
            slug: slug.clone(),
            url: new.url.as_str().to_owned(),
            created_at: rfc3339(now),
            expires_at: new.expires_at.map(rfc3339),
        };
        let record = serde_json::to_vec(&link).map_err(|e| AppError::Internal(e.into()))?;
        if let Err(e) = self.kv.set(&kv_key(&slug), &record).await {
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
            return Err(e.into());
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

    async fn claim_random(&self, len: usize, created_unix: i64) -> Result<Slug, AppError> {
        for _ in 0..RANDOM_SLUG_ATTEMPTS {
            let slug = (self.slugs)(len);
            if self.claim(&slug, created_unix).await? {
                return Ok(slug);
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "no free random slug of length {len} after {RANDOM_SLUG_ATTEMPTS} attempts"
        )))
    }

    /// The link named `slug`, if stored.
    pub async fn get(&self, slug: &Slug) -> Result<Option<Link>, AppError> {
        let Some(bytes) = self.kv.get(&kv_key(slug)).await? else {
            return Ok(None);
        };
        let link: Link = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Internal(anyhow::anyhow!("corrupt link record for {slug}: {e}"))
        })?;
        Ok(Some(link))
    }

    /// Up to `limit` links after `cursor`, in slug order, and the cursor of
    /// the next page.
    pub async fn page(
        &self,
        cursor: Option<&Slug>,
        limit: usize,
    ) -> Result<(Vec<Link>, Option<String>), AppError> {
        let after = cursor.map_or("", Slug::as_str);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let rows = self
            .sql
            .execute(&PAGE, vec![after.into(), SqlValue::Integer(fetch)])
            .await?;
        let slugs: Vec<String> = rows
            .rows
            .iter()
            .filter_map(|r| r.first().and_then(SqlValue::as_str).map(str::to_owned))
            .collect();
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
    ) -> Result<(Vec<Link>, Option<String>), AppError> {
        const BATCH: usize = 100;
        let mut after = cursor.map_or_else(String::new, |c| c.as_str().to_owned());
        let mut found = Vec::with_capacity(limit);
        let mut scanned = 0;
        loop {
            let want = BATCH.min(SEARCH_SCAN_LIMIT - scanned);
            let rows = self
                .sql
                .execute(
                    &PAGE,
                    vec![
                        after.as_str().into(),
                        SqlValue::Integer(i64::try_from(want).unwrap_or(i64::MAX)),
                    ],
                )
                .await?;
            let slugs: Vec<String> = rows
                .rows
                .iter()
                .filter_map(|r| r.first().and_then(SqlValue::as_str).map(str::to_owned))
                .collect();
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

    async fn any_after(&self, after: &str) -> Result<bool, AppError> {
        let rows = self
            .sql
            .execute(&PAGE, vec![after.into(), SqlValue::Integer(1)])
            .await?;
        Ok(!rows.rows.is_empty())
    }

    /// Applies `patch` to the stored link; `None` when no such link.
    ///
    /// The registry stays the arbiter: a record is only rewritten for a slug
    /// the registry holds, and when a delete removed the slug while this write
    /// was under way, the rewritten record is removed again, so no record ever
    /// outlives its registry row.
    pub async fn update(&self, slug: &Slug, patch: LinkPatch) -> Result<Option<Link>, AppError> {
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
            link.expires_at = expires_at.map(rfc3339);
        }
        let record = serde_json::to_vec(&link).map_err(|e| AppError::Internal(e.into()))?;
        self.kv.set(&kv_key(slug), &record).await?;
        if !self.registered(slug).await? {
            // Deleted meanwhile: the delete wins.
            self.kv.delete(&kv_key(slug)).await?;
            return Ok(None);
        }
        Ok(Some(link))
    }

    /// Removes the link, its clicks and its rollups. `false` when absent.
    pub async fn delete(&self, slug: &Slug) -> Result<bool, AppError> {
        let in_kv = self.kv.exists(&kv_key(slug)).await?;
        if in_kv {
            self.kv.delete(&kv_key(slug)).await?;
        }
        // One statement: the `links_delete` trigger removes clicks and
        // rollups atomically with the registry row.
        let removed = self
            .sql
            .execute(&REMOVE, vec![slug.as_str().into()])
            .await?;
        Ok(in_kv || !removed.rows.is_empty())
    }

    /// Whether `slug` is in the registry.
    pub async fn registered(&self, slug: &Slug) -> Result<bool, AppError> {
        let rows = self
            .sql
            .execute(&REGISTERED, vec![slug.as_str().into()])
            .await?;
        Ok(rows.scalar_i64() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://sho.rt").unwrap()
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
        for bad in ["api", "API", "Health", "metrics", "console", "Console"] {
            let err = Slug::parse(bad).unwrap_err();
            assert_eq!(err.status_and_code().1, "reserved_slug");
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
            assert_eq!(err.status_and_code().1, "self_referencing_url", "{bad}");
        }
        let with_path = Url::parse("https://example.com/s/").unwrap();
        assert!(TargetUrl::parse("https://example.com/s/abc", &with_path).is_err());
        assert!(TargetUrl::parse("https://example.com/other", &with_path).is_ok());
    }

    #[test]
    fn search_text_matches_slug_or_url_ignoring_ascii_case() {
        let link = Link {
            slug: Slug::parse("Launch-2030").unwrap(),
            url: "https://example.com/Docs?x=1".into(),
            created_at: "2030-01-01T00:00:00Z".into(),
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
        assert_eq!(err.status_and_code().1, "invalid_search");
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
        let now = OffsetDateTime::UNIX_EPOCH;
        let new = NewLink {
            url: TargetUrl::parse("https://e.com/", &base()).unwrap(),
            slug: Some(Slug::parse("racy").unwrap()),
            expires_at: None,
        };
        plain.create(new, 7, now).await.unwrap();

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
        let link = Link {
            slug: Slug::parse("abc").unwrap(),
            url: "https://e.com/".into(),
            created_at: "2030-01-01T00:00:00Z".into(),
            expires_at: Some("2030-01-02T00:00:00Z".into()),
        };
        let at = |s| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        assert!(!link.is_expired(at("2030-01-01T23:59:59Z")));
        assert!(link.is_expired(at("2030-01-02T00:00:00Z")));
    }
}
