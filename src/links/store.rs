//! `Links`: link storage over the two ports. The record lives in key-value
//! under `link:<slug>`; the SQLite `links` registry owns the slug.

use time::OffsetDateTime;

use super::{
    Link, LinkError, LinkPatch, NewLink, RANDOM_SLUG_ATTEMPTS, SearchText, Slug, SlugSource, kv_key,
};
use crate::storage::{KvStore, SqlStore, SqlValue, Statement, StoreError};

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
/// Notes a registered slug whose record does not decode; a row only the
/// first time (`RETURNING` says so), none for a slug the registry lacks.
const NOTE_CORRUPT: Statement = Statement {
    sql: "INSERT INTO corrupt_records (slug, reason) SELECT slug, ?2 FROM links WHERE slug = ?1 \
          ON CONFLICT (slug) DO NOTHING RETURNING slug",
    operation: "INSERT",
    table: "corrupt_records",
};
/// Registered links whose record was found not to decode (for `/metrics`):
/// each counted once from its first read until its delete.
pub const CORRUPT_COUNT: Statement = Statement {
    sql: "SELECT count(*) FROM corrupt_records",
    operation: "SELECT",
    table: "corrupt_records",
};
/// Registry rows a search reads per request, at most (see [`Links::search`]).
pub const SEARCH_SCAN_LIMIT: usize = 1000;

/// Number of links (for `/metrics`).
pub const COUNT: Statement = Statement {
    sql: "SELECT count(*) FROM links",
    operation: "SELECT",
    table: "links",
};

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

    /// The link named `slug`, if stored. A record that does not decode is a
    /// [`LinkError::CorruptRecord`], noted once per slug (see [`Self::note_corrupt`]).
    pub async fn get(&self, slug: &Slug) -> Result<Option<Link>, LinkError> {
        let Some(bytes) = self.kv.get(&kv_key(slug)).await? else {
            return Ok(None);
        };
        match decode(slug, &bytes) {
            Ok(link) => Ok(Some(link)),
            Err(e) => {
                self.note_corrupt(slug, &e).await;
                Err(e)
            }
        }
    }

    /// The link named `slug` for a list or a search: a corrupt record is
    /// skipped (noted and logged by [`Self::get`]), so one bad record never
    /// hides the links around it.
    async fn listed(&self, slug: &Slug) -> Result<Option<Link>, LinkError> {
        match self.get(slug).await {
            Err(LinkError::CorruptRecord { .. }) => Ok(None),
            other => other,
        }
    }

    /// Counts a registered slug's corrupt record in `corrupt_records` (read
    /// by `/metrics` as `shortener_corrupt_records`) and logs it the first
    /// time it is seen, on any instance; later sightings are silent. A
    /// failure to note it is logged and otherwise ignored: the caller's
    /// answer does not depend on it.
    async fn note_corrupt(&self, slug: &Slug, error: &LinkError) {
        let LinkError::CorruptRecord { reason, .. } = error else {
            return;
        };
        let noted = self
            .sql
            .execute(
                &NOTE_CORRUPT,
                vec![slug.as_str().into(), reason.as_str().into()],
            )
            .await;
        match noted {
            Ok(rows) if !rows.rows.is_empty() => {
                eprintln!(
                    "shortener: {error}; lists and searches skip it, a read answers corrupt_record \
                     (counted in shortener_corrupt_records until the link is deleted)"
                );
            }
            Ok(_) => {}
            Err(e) => eprintln!("shortener: {error}; could not count it: {e}"),
        }
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
            // A slug claimed by a create still writing its record is skipped,
            // and so is a corrupt record.
            if let Some(link) = self.listed(&slug).await? {
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
                // A slug claimed by a create still writing its record is
                // skipped, and so is a corrupt record.
                if let Some(link) = self.listed(&slug).await?
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
    use crate::links::{OwnOrigins, TargetUrl, random_slugs};

    fn base() -> OwnOrigins {
        OwnOrigins::new(&url::Url::parse("https://sho.rt").unwrap(), &[]).unwrap()
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
}
