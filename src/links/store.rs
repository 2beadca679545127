//! `Links`: link storage over the two ports. The record lives in key-value
//! under `link:<slug>`; the SQLite `links` registry owns the slug.
//!
//! # No record outlives its registry row
//!
//! Key-value has no compare-and-set, so the registry is the arbiter: its row
//! holds the authoritative copy of the record (`links.record`, migration 5),
//! written by the same statement that claims, revises (compare-and-set on
//! the previous copy) or removes the slug. The key-value record is the
//! redirect's fast copy of it. Every admin write follows one rule:
//!
//! 1. change the registry (one statement: atomic, serialised by SQLite);
//! 2. write key-value;
//! 3. [`Links::converge`]: read the registry row again and, while key-value
//!    does not hold what it says (no row: no record), write that.
//!
//! Guarantee: once the admin writes under way have returned, the key-value
//! record of a slug is exactly its registry row's record, and absent when
//! there is no row. Why: take the last key-value write of all. Its writer
//! then read the registry and found it equal to what it wrote (else it would
//! have written again, and that write would be later). Any registry change
//! after that read is followed by its writer's own key-value write, which
//! would be later still. So the registry did not change after that read, and
//! key-value holds what it says. The one exception is a failed store call,
//! answered as an error: a `DELETE` whose key-value delete failed leaves a
//! record without a row until it is retried (the retry removes it).
//!
//! Meanwhile a reader may see a record one step behind its row (the same as
//! before any race). Rows written by an older version have no copy (`NULL`):
//! key-value is their record until their first edit adopts it. The redirect
//! path is untouched: one key-value read, one click insert.

use time::OffsetDateTime;

use super::{
    Link, LinkError, LinkPatch, NewLink, RANDOM_SLUG_ATTEMPTS, SearchText, Slug, SlugSource, kv_key,
};
use crate::storage::{KvStore, SqlStore, SqlValue, Statement, StoreError};

/// Claims a free slug and stores its record's authoritative copy, in one
/// statement.
const CLAIM: Statement = Statement {
    sql: "INSERT INTO links (slug, created_at, record) VALUES (?1, ?2, ?3) ON CONFLICT (slug) DO NOTHING RETURNING slug",
    operation: "INSERT",
    table: "links",
};
/// Gives back a claim whose record could not be written (only that claim:
/// the same copy).
const RELEASE: Statement = Statement {
    sql: "DELETE FROM links WHERE slug = ?1 AND record IS ?2",
    operation: "DELETE",
    table: "links",
};
/// The registry row's copy of the record: no row = no link; `NULL` = a row
/// written by an older version (key-value holds its record).
const OWNED: Statement = Statement {
    sql: "SELECT record FROM links WHERE slug = ?1",
    operation: "SELECT",
    table: "links",
};
/// Compare-and-set of the registry's copy: only when it still is `?2`.
const REVISE: Statement = Statement {
    sql: "UPDATE links SET record = ?3 WHERE slug = ?1 AND record IS ?2 RETURNING slug",
    operation: "UPDATE",
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
/// How often an edit retries its compare-and-set against concurrent edits,
/// and how many rounds [`Links::converge`] makes, before giving up (logged).
const ATTEMPTS: usize = 8;

/// What the registry says about a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// No row: no link, so no record.
    Gone,
    /// A row with its copy of the record.
    Record(Vec<u8>),
    /// A row an older version wrote, without a copy: key-value is its record.
    Legacy,
}
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
    /// decides who owns the slug (and stores the record's copy) before
    /// anything is written to key-value. Everything that can be refused is
    /// checked before the claim, and a claim whose record could not be
    /// written is released.
    ///
    /// A `DELETE` may remove the claim before the record is written: the
    /// create then finds its claim gone when it converges and removes the
    /// record it wrote. It still answers the link: it was created, then
    /// deleted (that `DELETE` answered that it removed it).
    pub async fn create(
        &self,
        new: NewLink,
        slug_length: usize,
        now: OffsetDateTime,
    ) -> Result<Link, LinkError> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let created_unix = now.unix_timestamp();
        let draft = |slug: Slug| Link {
            slug,
            url: new.url.as_str().to_owned(),
            created_at: now,
            expires_at: new.expires_at,
            forward_query: new.options.forward_query,
            max_clicks: new.options.max_clicks,
            valid_from: new.options.valid_from,
            rules: new.options.rules.clone(),
        };
        let (link, record) = match &new.slug {
            Some(slug) => {
                let link = draft(slug.clone());
                let record = encode(&link)?;
                if !self.claim(slug, created_unix, &record).await? {
                    return Err(LinkError::SlugTaken(slug.clone()));
                }
                (link, record)
            }
            None => self.claim_random(slug_length, created_unix, draft).await?,
        };
        if let Err(e) = self.kv.set(&kv_key(&link.slug), &record).await {
            // Give the slug back so a retry can succeed; nothing else was written.
            let release = self
                .sql
                .execute(&RELEASE, vec![link.slug.as_str().into(), copy(&record)])
                .await;
            if let Err(r) = release {
                tracing::error!(error = %r, "could not release a claimed slug");
            }
            // The failed write may have landed: remove it unless the claim
            // still stands (best effort, the store just failed).
            if let Err(r) = self.converge(&link.slug, Some(&record)).await {
                tracing::error!(error = %r, "could not check a released claim's record");
            }
            return Err(e.into());
        }
        self.converge(&link.slug, Some(&record)).await?;
        Ok(link)
    }

    async fn claim(
        &self,
        slug: &Slug,
        created_unix: i64,
        record: &[u8],
    ) -> Result<bool, StoreError> {
        let rows = self
            .sql
            .execute(
                &CLAIM,
                vec![
                    slug.as_str().into(),
                    SqlValue::Integer(created_unix),
                    copy(record),
                ],
            )
            .await?;
        Ok(!rows.rows.is_empty())
    }

    async fn claim_random(
        &self,
        len: usize,
        created_unix: i64,
        draft: impl Fn(Slug) -> Link,
    ) -> Result<(Link, Vec<u8>), LinkError> {
        for _ in 0..RANDOM_SLUG_ATTEMPTS {
            let Ok(slug) = Slug::parse(&(self.slugs)(len)) else {
                continue;
            };
            let link = draft(slug);
            let record = encode(&link)?;
            if self.claim(&link.slug, created_unix, &record).await? {
                return Ok((link, record));
            }
        }
        Err(LinkError::NoFreeSlug { len })
    }

    /// What the registry says about `slug`.
    async fn owner(&self, slug: &Slug) -> Result<Owner, StoreError> {
        let rows = self.sql.execute(&OWNED, vec![slug.as_str().into()]).await?;
        Ok(match rows.rows.first().and_then(|r| r.first()) {
            None => Owner::Gone,
            Some(SqlValue::Text(t)) => Owner::Record(t.clone().into_bytes()),
            Some(SqlValue::Blob(b)) => Owner::Record(b.clone()),
            Some(_) => Owner::Legacy,
        })
    }

    /// Step 3 of every admin write (see the module's documentation): after
    /// this caller wrote `wrote` to key-value (`None`: deleted it), make
    /// key-value hold what the registry says, re-reading the registry after
    /// each repair. Answers what the registry said last.
    async fn converge(&self, slug: &Slug, wrote: Option<&[u8]>) -> Result<Owner, StoreError> {
        let key = kv_key(slug);
        let mut held = wrote.map(<[u8]>::to_vec);
        let mut owner = Owner::Gone;
        for _ in 0..ATTEMPTS {
            owner = self.owner(slug).await?;
            let want = match &owner {
                Owner::Gone => None,
                Owner::Record(record) => Some(record),
                // An older version's row: key-value is its record.
                Owner::Legacy => return Ok(owner),
            };
            if want == held.as_ref() {
                return Ok(owner);
            }
            match want {
                Some(record) => self.kv.set(&key, record).await?,
                None => self.kv.delete(&key).await?,
            }
            held = want.cloned();
        }
        tracing::error!(
            "a link record is still being rewritten concurrently; gave up repairing it"
        );
        Ok(owner)
    }

    /// The link named `slug`, if stored. A record that does not decode is a
    /// [`LinkError::CorruptRecord`], noted once per slug (see [`Self::note_corrupt`]).
    pub async fn get(&self, slug: &Slug) -> Result<Option<Link>, LinkError> {
        let Some(bytes) = self.kv.get(&kv_key(slug)).await? else {
            return Ok(None);
        };
        if crate::ablation::skip(crate::ablation::Part::Decode) {
            return Ok(Some(Link {
                slug: slug.clone(),
                url: "https://example.com/landing".to_owned(),
                created_at: OffsetDateTime::UNIX_EPOCH,
                expires_at: None,
            }));
        }
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
    /// The edit is a compare-and-set on the registry's copy of the record, so
    /// it applies to the link the slug names at that moment (a link deleted
    /// and created again meanwhile is the new one, never overwritten by the
    /// old one), and concurrent edits are applied one after the other. Then
    /// key-value is written and converged: when a delete removed the slug
    /// meanwhile, the record is removed again (the delete wins: `None`), and
    /// when the slug was created again, its record is put back.
    pub async fn update(&self, slug: &Slug, patch: LinkPatch) -> Result<Option<Link>, LinkError> {
        // A record that does not decode stays as it is (noted, answered
        // `corrupt_record`): only a `DELETE` removes it.
        let stored = self.get(slug).await?;
        for _ in 0..ATTEMPTS {
            let (previous, mut link) = match self.owner(slug).await? {
                Owner::Gone => return Ok(None),
                Owner::Record(record) => {
                    let link = decode(slug, &record)?;
                    (copy(&record), link)
                }
                // Adopted on this first edit: the key-value record is the base.
                Owner::Legacy => match &stored {
                    Some(link) => (SqlValue::Null, link.clone()),
                    None => return Ok(None),
                },
            };
            patch.apply(&mut link);
            let record = encode(&link)?;
            let revised = self
                .sql
                .execute(&REVISE, vec![slug.as_str().into(), previous, copy(&record)])
                .await?;
            if revised.rows.is_empty() {
                // Edited, deleted or created again meanwhile: read again.
                continue;
            }
            self.kv.set(&kv_key(slug), &record).await?;
            return match self.converge(slug, Some(&record)).await? {
                Owner::Gone => Ok(None),
                _ => Ok(Some(link)),
            };
        }
        Err(StoreError::new("busy", "too many concurrent edits of one link").into())
    }

    /// Removes the link, its clicks and its rollups. `false` when absent.
    ///
    /// The registry row goes first (one statement: the `links_delete`
    /// trigger removes clicks and rollups atomically with it), then the
    /// record, then [`Self::converge`]. If the registry delete fails, nothing
    /// changed. If the record's delete fails after it, the answer is an
    /// error and the record is left without a row (lists skip it, the
    /// redirect finds no registered link and counts nothing): the retried
    /// `DELETE` removes it. A record found without a row (left so) counts as
    /// a link to delete.
    pub async fn delete(&self, slug: &Slug) -> Result<bool, LinkError> {
        let removed = self
            .sql
            .execute(&REMOVE, vec![slug.as_str().into()])
            .await?;
        let key = kv_key(slug);
        let record = self.kv.get(&key).await?;
        if record.is_some() {
            self.kv.delete(&key).await?;
        }
        self.converge(slug, None).await?;
        Ok(record.is_some() || !removed.rows.is_empty())
    }
}

fn encode(link: &Link) -> Result<Vec<u8>, LinkError> {
    serde_json::to_vec(link).map_err(|e| LinkError::CorruptRecord {
        slug: link.slug.to_string(),
        reason: e.to_string(),
    })
}

/// A record as the registry stores its copy (JSON text).
fn copy(record: &[u8]) -> SqlValue {
    SqlValue::Text(String::from_utf8_lossy(record).into_owned())
}

fn decode(slug: &Slug, bytes: &[u8]) -> Result<Link, LinkError> {
    serde_json::from_slice(bytes).map_err(|e| LinkError::CorruptRecord {
        slug: slug.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
