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
//! key-value is their record until their first edit, or the first list,
//! adopts it ([`Links::adopt_legacy`]). The redirect path is untouched: one
//! key-value read, one click insert.
//!
//! # What lists read (migration 7)
//!
//! The row also carries what lists filter and sort on: `url` and `tags`
//! (JSON array), taken from the record's copy by the very statement that
//! writes it (`CLAIM`, `REVISE`: `json_extract(?3, …)`), so they never
//! disagree with it (and triggers of migration 7 take them from the copy when
//! an older version, during a rolling deploy, writes the record alone);
//! `link_tags (tag, slug)` is kept from `tags` by
//! triggers in that statement too; `clicks`, the link's total, is kept by
//! the `link_click_totals_*` triggers (see `crate::migrations`). A list is one
//! statement over these ([`super::listing`]).

use time::OffsetDateTime;

use super::listing::{ListQuery, Listed};
use super::{
    Link, LinkError, LinkPatch, NewLink, RANDOM_SLUG_ATTEMPTS, Slug, SlugSource, Tag, Tags, kv_key,
};
use crate::storage::{KvStore, SqlStore, SqlValue, Statement, StoreError};

/// Claims a free slug and stores its record's authoritative copy, in one
/// statement.
const CLAIM: Statement = Statement {
    sql: "INSERT INTO links (slug, created_at, record, url, tags) \
          VALUES (?1, ?2, ?3, json_extract(?3, '$.url'), json_extract(?3, '$.tags')) \
          ON CONFLICT (slug) DO NOTHING RETURNING slug",
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
/// Compare-and-set of the registry's copy: only when it still is `?2`
/// (with what lists read of it); answers the link's click total.
const REVISE: Statement = Statement {
    sql: "UPDATE links SET record = ?3, url = json_extract(?3, '$.url'), \
          tags = json_extract(?3, '$.tags') WHERE slug = ?1 AND record IS ?2 RETURNING slug, clicks",
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
/// Rows an older version wrote: with a record copy but no `url` (claimed by
/// an older version after migration 7), or no copy at all (before
/// migration 5). `links_legacy` is a partial index of exactly these, so on an
/// adopted registry this reads an empty index.
const LEGACY: Statement = Statement {
    sql: "SELECT slug, record IS NULL FROM links WHERE url IS NULL AND slug > ?1 \
          AND (record IS NULL OR json_valid(record)) \
          AND slug NOT IN (SELECT slug FROM corrupt_records) ORDER BY slug LIMIT 100",
    operation: "SELECT",
    table: "links",
};
/// Fills `url` and `tags` of rows an older version claimed with a copy.
const ADOPT_COPIES: Statement = Statement {
    sql: "UPDATE links SET url = json_extract(record, '$.url'), tags = json_extract(record, '$.tags') \
          WHERE url IS NULL AND json_valid(record)",
    operation: "UPDATE",
    table: "links",
};
/// Every tag with its number of links, by name.
const TAG_COUNTS: Statement = Statement {
    sql: "SELECT tag, count(*) FROM link_tags GROUP BY tag ORDER BY tag",
    operation: "SELECT",
    table: "link_tags",
};
/// The links of one tag.
const TAGGED: Statement = Statement {
    sql: "SELECT slug FROM link_tags WHERE tag = ?1 ORDER BY slug",
    operation: "SELECT",
    table: "link_tags",
};
/// Whether a tag is on any link.
const TAG_USED: Statement = Statement {
    sql: "SELECT EXISTS (SELECT 1 FROM link_tags WHERE tag = ?1)",
    operation: "SELECT",
    table: "link_tags",
};

/// A tag and how many links carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    /// The tag.
    pub tag: Tag,
    /// Its links.
    pub links: i64,
}

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
            tags: new.tags.clone(),
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
        let got = {
            let _profiled = crate::profile::stage(crate::profile::Stage::KvGet);
            self.kv.get(&kv_key(slug)).await?
        };
        let Some(bytes) = got else {
            return Ok(None);
        };
        let _profiled = crate::profile::stage(crate::profile::Stage::Decode);
        if crate::ablation::skip(crate::ablation::Part::Decode) {
            return Ok(Some(Link::new(
                slug.clone(),
                "https://example.com/landing".to_owned(),
                OffsetDateTime::UNIX_EPOCH,
            )));
        }
        match decode(slug, &bytes) {
            Ok(link) => Ok(Some(link)),
            Err(e) => {
                self.note_corrupt(slug, &e).await;
                Err(e)
            }
        }
    }

    /// The link named `slug` for a list: a corrupt record is skipped
    /// (noted and logged by [`Self::get`]), so one bad record never hides
    /// the links around it.
    async fn listed(&self, slug: &Slug) -> Result<Option<Link>, LinkError> {
        match self.get(slug).await {
            Err(LinkError::CorruptRecord { .. }) => Ok(None),
            other => other,
        }
    }

    /// One page of links as `query` asks (see [`super::listing`]): one
    /// statement, after [`Self::adopt_legacy`]. A registry copy that does
    /// not decode is skipped (noted once, like a corrupt key-value record).
    pub async fn list(
        &self,
        query: &ListQuery,
    ) -> Result<(Vec<Listed>, Option<String>), LinkError> {
        self.adopt_legacy().await?;
        let (statement, params) = query.statement();
        let rows = self.sql.execute(statement, params).await?;
        let page = query.read(&rows.rows)?;
        let more = page.rows.len() > query.limit;
        let mut links = Vec::with_capacity(query.limit);
        let rows = &page.rows[..page.rows.len().min(query.limit)];
        for row in rows {
            let slug = Slug(row.slug.clone());
            let Some(record) = &row.record else { continue };
            match decode(&slug, record.as_bytes()) {
                Ok(link) => links.push(Listed {
                    link,
                    clicks: row.total,
                }),
                Err(e) => self.note_corrupt(&slug, &e).await,
            }
        }
        // The cursor is the last row read, listed or skipped.
        Ok((links, query.next(rows.last(), more, page.snapshot)))
    }

    /// Adopts the rows older versions wrote, so that lists see them: rows
    /// with a record copy but no `url` get theirs from the copy (one
    /// statement); rows without a copy (written before migration 5) take
    /// their key-value record as their copy, by the same compare-and-set as
    /// an edit (`REVISE` from `NULL`), so a concurrent edit or delete wins.
    /// A row whose key-value record is missing or corrupt stays as it is
    /// (left out of lists, as before). On an adopted registry this is one
    /// read of an empty index.
    pub async fn adopt_legacy(&self) -> Result<(), LinkError> {
        let mut after = String::new();
        let mut copies_adopted = false;
        loop {
            let rows = self
                .sql
                .execute(&LEGACY, vec![after.as_str().into()])
                .await?;
            if rows.rows.is_empty() {
                return Ok(());
            }
            for row in &rows.rows {
                let Some(raw) = row.first().and_then(SqlValue::as_str) else {
                    continue;
                };
                after = raw.to_owned();
                let without_copy = row.get(1).and_then(SqlValue::as_i64) == Some(1);
                if !without_copy {
                    if !copies_adopted {
                        self.sql.execute(&ADOPT_COPIES, vec![]).await?;
                        copies_adopted = true;
                    }
                    continue;
                }
                let slug = Slug(raw.to_owned());
                let Some(bytes) = self.kv.get(&kv_key(&slug)).await? else {
                    continue;
                };
                if let Err(e) = decode(&slug, &bytes) {
                    self.note_corrupt(&slug, &e).await;
                    continue;
                }
                let adopted = self
                    .sql
                    .execute(
                        &REVISE,
                        vec![slug.as_str().into(), SqlValue::Null, copy(&bytes)],
                    )
                    .await?;
                if !adopted.rows.is_empty() {
                    self.converge(&slug, Some(&bytes)).await?;
                }
            }
        }
    }

    /// Every tag with its number of links.
    pub async fn tags(&self) -> Result<Vec<TagCount>, LinkError> {
        let rows = self.sql.execute(&TAG_COUNTS, vec![]).await?;
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| {
                let tag = Tag::parse(r.first()?.as_str()?).ok()?;
                Some(TagCount {
                    tag,
                    links: r.get(1)?.as_i64()?,
                })
            })
            .collect())
    }

    /// Renames `from` to `to` on every link that has it: each link is edited
    /// like a `PATCH` of its tags (registry first, then key-value,
    /// converged). `Ok(false)` when no link has `from`; refused when `to` is
    /// on a link already (no merge, as Shlink refuses it).
    pub async fn rename_tag(&self, from: &Tag, to: &Tag) -> Result<bool, LinkError> {
        if from == to {
            return self.tag_used(from).await;
        }
        if self.tag_used(to).await? {
            return Err(LinkError::TagTaken(to.clone()));
        }
        self.retag(from, |tags| tags.renamed(from, to)).await
    }

    /// Removes `tag` from every link; `Ok(false)` when no link has it.
    pub async fn delete_tag(&self, tag: &Tag) -> Result<bool, LinkError> {
        self.retag(tag, |tags| tags.without(tag)).await
    }

    async fn tag_used(&self, tag: &Tag) -> Result<bool, LinkError> {
        let rows = self
            .sql
            .execute(&TAG_USED, vec![tag.as_str().into()])
            .await?;
        Ok(rows.scalar_i64() == 1)
    }

    async fn retag(&self, tag: &Tag, change: impl Fn(&Tags) -> Tags) -> Result<bool, LinkError> {
        let rows = self.sql.execute(&TAGGED, vec![tag.as_str().into()]).await?;
        let slugs: Vec<Slug> = rows
            .rows
            .iter()
            .filter_map(|r| r.first().and_then(SqlValue::as_str))
            .map(|s| Slug(s.to_owned()))
            .collect();
        for slug in &slugs {
            match self
                .revise(slug, |link| link.tags = change(&link.tags))
                .await
            {
                // A corrupt record keeps its tags until it is deleted.
                Ok(_) | Err(LinkError::CorruptRecord { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(!slugs.is_empty())
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
        Ok(self.edit(slug, patch).await?.map(|l| l.link))
    }

    /// [`Self::update`], answering the link's click total too.
    pub async fn edit(&self, slug: &Slug, patch: LinkPatch) -> Result<Option<Listed>, LinkError> {
        self.revise(slug, |link| patch.apply(link)).await
    }

    /// The compare-and-set edit behind [`Self::update`] and the tag routes:
    /// `change` applied to the link the registry holds.
    async fn revise(
        &self,
        slug: &Slug,
        change: impl Fn(&mut Link),
    ) -> Result<Option<Listed>, LinkError> {
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
            change(&mut link);
            let record = encode(&link)?;
            let revised = self
                .sql
                .execute(&REVISE, vec![slug.as_str().into(), previous, copy(&record)])
                .await?;
            let Some(row) = revised.rows.first() else {
                // Edited, deleted or created again meanwhile: read again.
                continue;
            };
            let clicks = row.get(1).and_then(SqlValue::as_i64).unwrap_or(0);
            self.kv.set(&kv_key(slug), &record).await?;
            return match self.converge(slug, Some(&record)).await? {
                Owner::Gone => Ok(None),
                _ => Ok(Some(Listed { link, clicks })),
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
