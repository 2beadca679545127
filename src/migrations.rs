//! The SQLite schema, created and migrated by the app itself on first use.
//!
//! Migrations are versioned and recorded in `schema_migrations`. Several Spin
//! instances may start at once and run them concurrently, and Spin cannot
//! span one transaction over several calls without stalling every other
//! writer, so every statement is idempotent (`IF NOT EXISTS`, `OR IGNORE`):
//! running a migration twice is harmless. New migrations must keep that rule.
//!
//! The click write on the redirect path is one `INSERT` into the
//! append-only `clicks`; the rollups are folded from it off the redirect
//! path by the `rollup_fold` trigger (migration 9, `crate::rollups`).

use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

const fn ddl(sql: &'static str) -> Statement {
    Statement {
        sql,
        operation: "CREATE",
        table: "",
    }
}

/// Per-connection settings: WAL (persists in the file) and
/// `synchronous=NORMAL` (per connection). See docs/spin-platform.md §6: together with
/// one connection per instance they are worth 20x on the click write, and
/// WAL+NORMAL survives a process crash (a power loss may drop the last commits).
pub const PRAGMAS: [Statement; 2] = [
    Statement::pragma("PRAGMA journal_mode=WAL"),
    Statement::pragma("PRAGMA synchronous=NORMAL"),
];

const CREATE_MIGRATIONS: Statement = Statement {
    sql: "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    operation: "CREATE",
    table: "schema_migrations",
};

const CURRENT_VERSION: Statement = Statement {
    sql: "SELECT coalesce(max(version), 0) FROM schema_migrations",
    operation: "SELECT",
    table: "schema_migrations",
};

const RECORD_VERSION: Statement = Statement {
    sql: "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
    operation: "INSERT",
    table: "schema_migrations",
};

const ROLLBACK: Statement = Statement {
    sql: "ROLLBACK",
    operation: "ROLLBACK",
    table: "",
};

/// One schema version.
pub struct Migration {
    /// Its number; applied in increasing order.
    pub version: i64,
    /// Idempotent statements.
    pub statements: &'static [Statement],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        statements: &[
            // The link registry: arbiter of slug ownership (KV has no
            // create-if-absent) and the ordered index behind paging.
            ddl(
                "CREATE TABLE IF NOT EXISTS links (slug TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID",
            ),
            // One row per counted redirect. No IP: only a keyed visitor hash.
            ddl(
                "CREATE TABLE IF NOT EXISTS clicks (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, at INTEGER NOT NULL, day TEXT NOT NULL, referrer_host TEXT, browser TEXT NOT NULL, os TEXT NOT NULL, is_bot INTEGER NOT NULL, visitor TEXT NOT NULL)",
            ),
            ddl(
                "CREATE INDEX IF NOT EXISTS clicks_slug_day_visitor ON clicks (slug, day, visitor)",
            ),
            // Per link and day: totals and distinct visitors (the visitor hash
            // includes the day, so daily distinct counts add up over a range).
            ddl(
                "CREATE TABLE IF NOT EXISTS daily_clicks (slug TEXT NOT NULL, day TEXT NOT NULL, clicks INTEGER NOT NULL, humans INTEGER NOT NULL, bots INTEGER NOT NULL, visitors INTEGER NOT NULL, PRIMARY KEY (slug, day)) WITHOUT ROWID",
            ),
            // Per link, day and dimension (referrer / browser / os) value.
            ddl(
                "CREATE TABLE IF NOT EXISTS daily_dimensions (slug TEXT NOT NULL, day TEXT NOT NULL, dimension TEXT NOT NULL, value TEXT NOT NULL, clicks INTEGER NOT NULL, PRIMARY KEY (slug, day, dimension, value)) WITHOUT ROWID",
            ),
            // Per link and dimension value, all time: stats over a link's whole
            // life read ~100 rows here instead of every day's breakdown.
            ddl(
                "CREATE TABLE IF NOT EXISTS link_dimensions (slug TEXT NOT NULL, dimension TEXT NOT NULL, value TEXT NOT NULL, clicks INTEGER NOT NULL, PRIMARY KEY (slug, dimension, value)) WITHOUT ROWID",
            ),
            // Clicks of deleted links, so the Prometheus counter never goes down.
            ddl(
                "CREATE TABLE IF NOT EXISTS retired_clicks (id INTEGER PRIMARY KEY CHECK (id = 1), humans INTEGER NOT NULL, bots INTEGER NOT NULL)",
            ),
            Statement {
                sql: "INSERT OR IGNORE INTO retired_clicks (id, humans, bots) VALUES (1, 0, 0)",
                operation: "INSERT",
                table: "retired_clicks",
            },
            ddl(
                "CREATE TRIGGER IF NOT EXISTS clicks_rollup AFTER INSERT ON clicks BEGIN \
             INSERT INTO daily_clicks (slug, day, clicks, humans, bots, visitors) \
             VALUES (NEW.slug, NEW.day, 1, 1 - NEW.is_bot, NEW.is_bot, \
                     NOT EXISTS (SELECT 1 FROM clicks WHERE slug = NEW.slug AND day = NEW.day AND visitor = NEW.visitor AND id <> NEW.id)) \
             ON CONFLICT (slug, day) DO UPDATE SET clicks = clicks + 1, humans = humans + excluded.humans, \
                bots = bots + excluded.bots, visitors = visitors + excluded.visitors; \
             INSERT INTO daily_dimensions (slug, day, dimension, value, clicks) \
             VALUES (NEW.slug, NEW.day, 'referrer', coalesce(NEW.referrer_host, ''), 1), \
                    (NEW.slug, NEW.day, 'browser', NEW.browser, 1), \
                    (NEW.slug, NEW.day, 'os', NEW.os, 1) \
             ON CONFLICT (slug, day, dimension, value) DO UPDATE SET clicks = clicks + 1; \
             INSERT INTO link_dimensions (slug, dimension, value, clicks) \
             VALUES (NEW.slug, 'referrer', coalesce(NEW.referrer_host, ''), 1), \
                    (NEW.slug, 'browser', NEW.browser, 1), \
                    (NEW.slug, 'os', NEW.os, 1) \
             ON CONFLICT (slug, dimension, value) DO UPDATE SET clicks = clicks + 1; \
             END",
            ),
            // Deleting a link's registry row removes its clicks and rollups in the
            // same statement, and moves its totals to `retired_clicks`.
            ddl(
                "CREATE TRIGGER IF NOT EXISTS links_delete AFTER DELETE ON links BEGIN \
             UPDATE retired_clicks SET \
                humans = humans + coalesce((SELECT sum(humans) FROM daily_clicks WHERE slug = OLD.slug), 0), \
                bots = bots + coalesce((SELECT sum(bots) FROM daily_clicks WHERE slug = OLD.slug), 0) \
             WHERE id = 1; \
             DELETE FROM daily_clicks WHERE slug = OLD.slug; \
             DELETE FROM daily_dimensions WHERE slug = OLD.slug; \
             DELETE FROM link_dimensions WHERE slug = OLD.slug; \
             DELETE FROM clicks WHERE slug = OLD.slug; \
             END",
            ),
        ],
    },
    Migration {
        version: 2,
        statements: &[
            // `/health` writes this one row to prove clicks can be written
            // (crate::health::WRITE_PROBE).
            ddl(
                "CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)",
            ),
        ],
    },
    Migration {
        version: 3,
        statements: &[
            // Registered links whose key-value record was found not to decode
            // (`links::Links::get`): one row per slug, so `/metrics` counts
            // each once (`shortener_corrupt_records`); the reason is the
            // decoder's, for the operator.
            ddl(
                "CREATE TABLE IF NOT EXISTS corrupt_records (slug TEXT PRIMARY KEY, reason TEXT NOT NULL) WITHOUT ROWID",
            ),
            // Deleting the registry row forgets it, in the same statement.
            ddl(
                "CREATE TRIGGER IF NOT EXISTS corrupt_records_delete AFTER DELETE ON links BEGIN \
             DELETE FROM corrupt_records WHERE slug = OLD.slug; \
             END",
            ),
        ],
    },
    Migration {
        version: 4,
        // The rollup trigger again, with the breakdowns capped at write
        // time: per link and dimension, the first
        // `analytics::MAX_BREAKDOWN` (100) distinct values are kept by name,
        // and a click with a value not yet kept once the cap is reached
        // counts under `analytics::OTHER` ("(other)"). "No referrer" ('') is
        // never capped: visitors cannot choose it. So a link's breakdowns hold
        // at most 102 values per dimension, however many hosts anyone sends.
        //
        // Per click, on top of the old upserts: one primary-key lookup per
        // dimension in `link_dimensions` (is the value kept?), and for a new
        // value one more (is "(other)" there yet?), and only while under the
        // cap a count of at most 100 index entries of that link's dimension.
        // The daily breakdown then asks the all-time one (one lookup) so both
        // always agree on the value.
        //
        // The old trigger is replaced by name inside one transaction
        // (BEGIN IMMEDIATE: this one-off migration holds the write lock for
        // two DDL statements, never on the click path), so every click is
        // counted by exactly one trigger, and migration 1's `IF NOT EXISTS`,
        // replayed by a concurrent instance, never brings the old body back.
        // Replaying this migration replaces the trigger with itself. Rows
        // written before it stay as they were: a link that already has more
        // values reads as before, and its new values go to "(other)".
        statements: &[
            Statement {
                sql: "BEGIN IMMEDIATE",
                operation: "BEGIN",
                table: "",
            },
            Statement {
                sql: "DROP TRIGGER IF EXISTS clicks_rollup",
                operation: "DROP",
                table: "",
            },
            ddl("CREATE TRIGGER clicks_rollup AFTER INSERT ON clicks BEGIN \
             INSERT INTO daily_clicks (slug, day, clicks, humans, bots, visitors) \
             VALUES (NEW.slug, NEW.day, 1, 1 - NEW.is_bot, NEW.is_bot, \
                     NOT EXISTS (SELECT 1 FROM clicks WHERE slug = NEW.slug AND day = NEW.day AND visitor = NEW.visitor AND id <> NEW.id)) \
             ON CONFLICT (slug, day) DO UPDATE SET clicks = clicks + 1, humans = humans + excluded.humans, \
                bots = bots + excluded.bots, visitors = visitors + excluded.visitors; \
             INSERT INTO link_dimensions (slug, dimension, value, clicks) \
             SELECT NEW.slug, d.dimension, \
                    CASE WHEN d.value = '' THEN '' \
                         WHEN EXISTS (SELECT 1 FROM link_dimensions WHERE slug = NEW.slug AND dimension = d.dimension AND value = d.value) THEN d.value \
                         WHEN EXISTS (SELECT 1 FROM link_dimensions WHERE slug = NEW.slug AND dimension = d.dimension AND value = '(other)') THEN '(other)' \
                         WHEN (SELECT count(*) FROM (SELECT 1 FROM link_dimensions WHERE slug = NEW.slug AND dimension = d.dimension AND value <> '' LIMIT 100)) < 100 THEN d.value \
                         ELSE '(other)' END, 1 \
             FROM (SELECT 'referrer' AS dimension, coalesce(NEW.referrer_host, '') AS value \
                   UNION ALL SELECT 'browser', NEW.browser UNION ALL SELECT 'os', NEW.os) AS d WHERE true \
             ON CONFLICT (slug, dimension, value) DO UPDATE SET clicks = clicks + 1; \
             INSERT INTO daily_dimensions (slug, day, dimension, value, clicks) \
             SELECT NEW.slug, NEW.day, d.dimension, \
                    CASE WHEN EXISTS (SELECT 1 FROM link_dimensions WHERE slug = NEW.slug AND dimension = d.dimension AND value = d.value) THEN d.value \
                         ELSE '(other)' END, 1 \
             FROM (SELECT 'referrer' AS dimension, coalesce(NEW.referrer_host, '') AS value \
                   UNION ALL SELECT 'browser', NEW.browser UNION ALL SELECT 'os', NEW.os) AS d WHERE true \
             ON CONFLICT (slug, day, dimension, value) DO UPDATE SET clicks = clicks + 1; \
             END"),
            Statement {
                sql: "COMMIT",
                operation: "COMMIT",
                table: "",
            },
        ],
    },
    Migration {
        version: 5,
        statements: &[
            // The registry row's copy of the link's record (`links::store`:
            // the arbiter of what key-value must hold, so that admin races
            // leave no record behind its row). `NULL`
            // on rows written before: key-value holds their record.
            // SQLite has no `ADD COLUMN IF NOT EXISTS`: when a concurrent
            // instance added it first, the "duplicate column" answer counts
            // as done (see `apply`).
            Statement {
                sql: "ALTER TABLE links ADD COLUMN record TEXT",
                operation: "ALTER",
                table: "links",
            },
        ],
    },
    Migration {
        version: 6,
        statements: &[
            // API keys (`keys`): only the SHA-256 of each key; a revoked key's
            // row is deleted. Times are Unix seconds.
            ddl(
                "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, \
                 role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')), \
                 key_hash TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, \
                 last_used_at INTEGER) WITHOUT ROWID",
            ),
        ],
    },
    // --- tags, sorted lists and click totals ---
    Migration {
        version: 7,
        // What lists filter and sort on, in the registry (`links::listing`):
        // one statement answers a page, a tag filter or a search.
        statements: &[
            // The record copy's target and tags, written with the copy by the
            // statement that writes it (`links::store`: CLAIM, REVISE).
            Statement {
                sql: "ALTER TABLE links ADD COLUMN url TEXT",
                operation: "ALTER",
                table: "links",
            },
            Statement {
                sql: "ALTER TABLE links ADD COLUMN tags TEXT",
                operation: "ALTER",
                table: "links",
            },
            // The link's click total: see `link_click_totals_*` below.
            Statement {
                sql: "ALTER TABLE links ADD COLUMN clicks INTEGER NOT NULL DEFAULT 0",
                operation: "ALTER",
                table: "links",
            },
            // One row per tag of a link, kept from `links.tags` by the
            // triggers below inside the statement that writes the row.
            ddl(
                "CREATE TABLE IF NOT EXISTS link_tags (tag TEXT NOT NULL, slug TEXT NOT NULL, \
                 PRIMARY KEY (tag, slug)) WITHOUT ROWID",
            ),
            ddl("CREATE INDEX IF NOT EXISTS link_tags_slug ON link_tags (slug)"),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_tags_insert AFTER INSERT ON links \
                 WHEN NEW.tags IS NOT NULL BEGIN \
                 INSERT OR IGNORE INTO link_tags (tag, slug) SELECT value, NEW.slug FROM json_each(NEW.tags); \
                 END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_tags_update AFTER UPDATE OF tags ON links \
                 WHEN NEW.tags IS NOT OLD.tags BEGIN \
                 DELETE FROM link_tags WHERE slug = NEW.slug; \
                 INSERT OR IGNORE INTO link_tags (tag, slug) SELECT value, NEW.slug FROM json_each(NEW.tags); \
                 END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_tags_delete AFTER DELETE ON links BEGIN \
                 DELETE FROM link_tags WHERE slug = OLD.slug; \
                 END",
            ),
            // An older version (still running during a rolling deploy) writes
            // `record` alone: these keep `url` and `tags` equal to the copy
            // whoever wrote it. For this version's own writes (which set them
            // in the same statement) the condition is false and nothing runs.
            ddl(
                "CREATE TRIGGER IF NOT EXISTS links_record_columns_insert AFTER INSERT ON links \
                 WHEN json_valid(NEW.record) AND (NEW.url IS NOT json_extract(NEW.record, '$.url') \
                   OR NEW.tags IS NOT json_extract(NEW.record, '$.tags')) BEGIN \
                 UPDATE links SET url = json_extract(NEW.record, '$.url'), \
                   tags = json_extract(NEW.record, '$.tags') WHERE slug = NEW.slug; \
                 END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS links_record_columns_update AFTER UPDATE OF record ON links \
                 WHEN json_valid(NEW.record) AND (NEW.url IS NOT json_extract(NEW.record, '$.url') \
                   OR NEW.tags IS NOT json_extract(NEW.record, '$.tags')) BEGIN \
                 UPDATE links SET url = json_extract(NEW.record, '$.url'), \
                   tags = json_extract(NEW.record, '$.tags') WHERE slug = NEW.slug; \
                 END",
            ),
            // Sort orders and the search's narrow index (slug and URL only).
            ddl("CREATE INDEX IF NOT EXISTS links_created ON links (created_at)"),
            ddl("CREATE INDEX IF NOT EXISTS links_clicks ON links (clicks)"),
            ddl("CREATE INDEX IF NOT EXISTS links_url ON links (url)"),
            // Rows older versions wrote (`links::Links::adopt_legacy`).
            ddl("CREATE INDEX IF NOT EXISTS links_legacy ON links (slug) WHERE url IS NULL"),
            // THE CLICK TOTAL, in one place: `links.clicks` follows
            // `daily_clicks` (so it is the sum of a link's days, whoever writes
            // the rollups and whenever: today the `clicks_rollup` trigger,
            // inside the click's own statement), and each change is logged in
            // `link_click_log` with a sequence number, so that a `sort=clicks`
            // listing reads totals as of its snapshot (`links::listing`). The
            // log keeps the last 2^20 changes (`listing::CLICK_LOG_KEPT`),
            // pruned every 4096th; its newest row is never pruned, so sequence
            // numbers only grow. The rollups' own trigger is not touched.
            ddl(
                "CREATE TABLE IF NOT EXISTS link_click_log (seq INTEGER PRIMARY KEY, \
                 slug TEXT NOT NULL, delta INTEGER NOT NULL)",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_click_totals_insert AFTER INSERT ON daily_clicks BEGIN \
                 UPDATE links SET clicks = clicks + NEW.clicks WHERE slug = NEW.slug; \
                 INSERT INTO link_click_log (slug, delta) VALUES (NEW.slug, NEW.clicks); \
                 END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_click_totals_update AFTER UPDATE OF clicks ON daily_clicks \
                 WHEN NEW.clicks <> OLD.clicks BEGIN \
                 UPDATE links SET clicks = clicks + NEW.clicks - OLD.clicks WHERE slug = NEW.slug; \
                 INSERT INTO link_click_log (slug, delta) VALUES (NEW.slug, NEW.clicks - OLD.clicks); \
                 END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS link_click_log_prune AFTER INSERT ON link_click_log \
                 WHEN NEW.seq % 4096 = 0 BEGIN \
                 DELETE FROM link_click_log WHERE seq <= NEW.seq - 1048576; \
                 END",
            ),
            // Backfill, after the triggers exist (so a click meanwhile is
            // counted by one or the other, and a replay recomputes the same):
            // totals from the rollups, target and tags from the record copies
            // (rows without a copy are adopted from key-value by the first
            // list: `links::Links::adopt_legacy`; a copy that is no JSON is
            // left as it is, so the migration never fails on it, and lists
            // skip and count it).
            Statement {
                sql: "UPDATE links SET clicks = \
                      (SELECT coalesce(sum(clicks), 0) FROM daily_clicks WHERE daily_clicks.slug = links.slug)",
                operation: "UPDATE",
                table: "links",
            },
            Statement {
                sql: "UPDATE links SET url = json_extract(record, '$.url'), tags = json_extract(record, '$.tags') \
                      WHERE url IS NULL AND json_valid(record)",
                operation: "UPDATE",
                table: "links",
            },
        ],
    },
    // --- Migration 8: the redirect's options (`links::rules`) and orphan
    // visits (`orphans`).
    Migration {
        version: 8,
        statements: &[
            // Which redirect rule served a click (its index; NULL: the
            // link's own URL). Stats read it through the partial index below,
            // which only rule-served clicks enter (`analytics::rule_clicks`).
            Statement {
                sql: "ALTER TABLE clicks ADD COLUMN rule INTEGER",
                operation: "ALTER",
                table: "clicks",
            },
            ddl(
                "CREATE INDEX IF NOT EXISTS clicks_rules ON clicks (slug, rule, day) WHERE rule IS NOT NULL",
            ),
            // Links with a `max_clicks` (`links::rules::MaxClicks`): the
            // limit and the clicks recorded so far. Derived from the
            // registry's copy of the record by the triggers below, in the
            // statement that writes it, so it never disagrees with the row.
            // A limited link's click is written through its row
            // (`clicks::RECORD_LIMITED`): one UPDATE that counts it only
            // while under the limit and carries the click's values, which
            // `click_limits_click` inserts into `clicks`. So the limit costs
            // nothing to the clicks of links without one: their INSERT and
            // the triggers on `clicks` are as before.
            ddl(
                "CREATE TABLE IF NOT EXISTS click_limits (slug TEXT PRIMARY KEY, max_clicks INTEGER NOT NULL, used INTEGER NOT NULL, \
                 at INTEGER, day TEXT, referrer_host TEXT, browser TEXT, os TEXT, is_bot INTEGER, visitor TEXT, rule INTEGER) WITHOUT ROWID",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS click_limits_click AFTER UPDATE OF used ON click_limits BEGIN \
             INSERT INTO clicks (slug, at, day, referrer_host, browser, os, is_bot, visitor, rule) \
             VALUES (NEW.slug, NEW.at, NEW.day, NEW.referrer_host, NEW.browser, NEW.os, NEW.is_bot, NEW.visitor, NEW.rule); \
             END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS click_limits_claim AFTER INSERT ON links \
             WHEN CASE WHEN json_valid(NEW.record) THEN json_extract(NEW.record, '$.max_clicks') END IS NOT NULL BEGIN \
             INSERT INTO click_limits (slug, max_clicks, used) \
             SELECT NEW.slug, CASE WHEN json_valid(NEW.record) THEN json_extract(NEW.record, '$.max_clicks') END, (SELECT count(*) FROM clicks WHERE slug = NEW.slug) WHERE true \
             ON CONFLICT (slug) DO UPDATE SET max_clicks = excluded.max_clicks; \
             END",
            ),
            // An edit keeps the clicks counted so far; setting a limit on a
            // link with clicks counts them (once, on this admin write). A
            // copy that is not JSON (corrupt) has no limit and fails no write.
            ddl(
                "CREATE TRIGGER IF NOT EXISTS click_limits_revise AFTER UPDATE OF record ON links BEGIN \
             DELETE FROM click_limits WHERE slug = NEW.slug AND CASE WHEN json_valid(NEW.record) THEN json_extract(NEW.record, '$.max_clicks') END IS NULL; \
             INSERT INTO click_limits (slug, max_clicks, used) \
             SELECT NEW.slug, CASE WHEN json_valid(NEW.record) THEN json_extract(NEW.record, '$.max_clicks') END, (SELECT count(*) FROM clicks WHERE slug = NEW.slug) \
             WHERE CASE WHEN json_valid(NEW.record) THEN json_extract(NEW.record, '$.max_clicks') END IS NOT NULL \
             ON CONFLICT (slug) DO UPDATE SET max_clicks = excluded.max_clicks; \
             END",
            ),
            ddl(
                "CREATE TRIGGER IF NOT EXISTS click_limits_delete AFTER DELETE ON links BEGIN \
             DELETE FROM click_limits WHERE slug = OLD.slug; \
             END",
            ),
            // Orphan visits (`orphans`): per UTC day and path, a count; at
            // most `orphans::MAX_PATHS_PER_DAY` paths a day, the rest under
            // "(other)".
            ddl(
                "CREATE TABLE IF NOT EXISTS orphan_visits (day TEXT NOT NULL, path TEXT NOT NULL, visits INTEGER NOT NULL, PRIMARY KEY (day, path)) WITHOUT ROWID",
            ),
        ],
    },
    Migration {
        version: 9,
        // The rollups leave the redirect path (`crate::rollups`): a click is
        // one INSERT into the append-only `clicks`, and the rollups are
        // folded from the clicks after `rollup_watermark.folded_up_to`, in
        // batches, by the `rollup_fold` trigger of `rollup_folds`. The fold
        // gives every rollup row exactly the value the per-click trigger
        // gave: the same visitor rule (a visitor is new on a day when no
        // earlier click of the link that day has it) and the same cap (per
        // link and dimension, the first `analytics::MAX_BREAKDOWN` distinct
        // values in click order keep their name, later new ones count under
        // "(other)"; '' is never capped), applied to the batch's new values
        // in the order of their first click.
        //
        // `clicks_rollup` becomes a trigger that never fires (on an UPDATE
        // of `id`, with `WHEN 0`), so that migration 1's `IF NOT EXISTS`,
        // replayed by an instance that started on an empty database, finds
        // the name taken and never brings a per-click rollup back; a replay
        // of migration 4 is skipped under its lock (`run`). The clicks
        // already rolled up are folded: the watermark starts at the newest
        // click. The delete trigger also retires a deleted link's clicks
        // that were not folded yet. One transaction, as migration 4.
        statements: &[
            Statement {
                sql: "BEGIN IMMEDIATE",
                operation: "BEGIN",
                table: "",
            },
            Statement {
                sql: "DROP TRIGGER IF EXISTS clicks_rollup",
                operation: "DROP",
                table: "",
            },
            ddl(
                "CREATE TRIGGER clicks_rollup AFTER UPDATE OF id ON clicks WHEN 0 BEGIN SELECT 1; END",
            ),
            ddl(
                "CREATE TABLE IF NOT EXISTS rollup_watermark (id INTEGER PRIMARY KEY CHECK (id = 1), folded_up_to INTEGER NOT NULL)",
            ),
            Statement {
                sql: "INSERT OR IGNORE INTO rollup_watermark (id, folded_up_to) SELECT 1, coalesce(max(id), 0) FROM clicks",
                operation: "INSERT",
                table: "rollup_watermark",
            },
            ddl(
                "CREATE TABLE IF NOT EXISTS rollup_folds (upto INTEGER NOT NULL, clicks INTEGER NOT NULL)",
            ),
            Statement {
                sql: "DROP TRIGGER IF EXISTS rollup_fold",
                operation: "DROP",
                table: "",
            },
            ddl(
                "CREATE TRIGGER rollup_fold AFTER INSERT ON rollup_folds BEGIN \
             INSERT INTO daily_clicks (slug, day, clicks, humans, bots, visitors) \
             SELECT c.slug, c.day, count(*), sum(1 - c.is_bot), sum(c.is_bot), \
                    count(DISTINCT CASE WHEN NOT EXISTS (SELECT 1 FROM clicks p WHERE p.slug = c.slug AND p.day = c.day \
                                                         AND p.visitor = c.visitor AND p.id <= w.folded_up_to) \
                                        THEN c.visitor END) \
             FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto \
             GROUP BY c.slug, c.day \
             ON CONFLICT (slug, day) DO UPDATE SET clicks = clicks + excluded.clicks, humans = humans + excluded.humans, \
                bots = bots + excluded.bots, visitors = visitors + excluded.visitors; \
             INSERT INTO link_dimensions (slug, dimension, value, clicks) \
             SELECT slug, dimension, target, sum(n) FROM ( \
               SELECT g.slug, g.dimension, g.n, \
                 CASE WHEN g.value = '' THEN '' \
                      WHEN g.known THEN g.value \
                      WHEN EXISTS (SELECT 1 FROM link_dimensions o WHERE o.slug = g.slug AND o.dimension = g.dimension AND o.value = '(other)') THEN '(other)' \
                      WHEN (SELECT count(*) FROM (SELECT 1 FROM link_dimensions e WHERE e.slug = g.slug AND e.dimension = g.dimension AND e.value <> '' LIMIT 100)) \
                           + sum(g.value <> '' AND NOT g.known) OVER (PARTITION BY g.slug, g.dimension ORDER BY g.first ROWS UNBOUNDED PRECEDING) <= 100 \
                           THEN g.value \
                      ELSE '(other)' END AS target \
               FROM (SELECT d.slug, d.dimension, d.value, count(*) AS n, min(d.id) AS first, \
                            EXISTS (SELECT 1 FROM link_dimensions k WHERE k.slug = d.slug AND k.dimension = d.dimension AND k.value = d.value) AS known \
                     FROM (SELECT c.id, c.slug, 'referrer' AS dimension, coalesce(c.referrer_host, '') AS value FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto \
                           UNION ALL SELECT c.id, c.slug, 'browser', c.browser FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto \
                           UNION ALL SELECT c.id, c.slug, 'os', c.os FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto) AS d \
                     GROUP BY d.slug, d.dimension, d.value) AS g) \
             WHERE true GROUP BY slug, dimension, target \
             ON CONFLICT (slug, dimension, value) DO UPDATE SET clicks = clicks + excluded.clicks; \
             INSERT INTO daily_dimensions (slug, day, dimension, value, clicks) \
             SELECT d.slug, d.day, d.dimension, \
                    CASE WHEN EXISTS (SELECT 1 FROM link_dimensions k WHERE k.slug = d.slug AND k.dimension = d.dimension AND k.value = d.value) \
                         THEN d.value ELSE '(other)' END AS kept, sum(d.n) \
             FROM (SELECT c.slug, c.day, 'referrer' AS dimension, coalesce(c.referrer_host, '') AS value, count(*) AS n FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto GROUP BY 1, 2, 3, 4 \
                   UNION ALL SELECT c.slug, c.day, 'browser', c.browser, count(*) FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto GROUP BY 1, 2, 3, 4 \
                   UNION ALL SELECT c.slug, c.day, 'os', c.os, count(*) FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.id > w.folded_up_to AND c.id <= NEW.upto GROUP BY 1, 2, 3, 4) AS d \
             WHERE true GROUP BY d.slug, d.day, d.dimension, kept \
             ON CONFLICT (slug, day, dimension, value) DO UPDATE SET clicks = clicks + excluded.clicks; \
             UPDATE rollup_watermark SET folded_up_to = NEW.upto WHERE id = 1; \
             DELETE FROM rollup_folds; \
             END",
            ),
            Statement {
                sql: "DROP TRIGGER IF EXISTS links_delete",
                operation: "DROP",
                table: "",
            },
            ddl("CREATE TRIGGER links_delete AFTER DELETE ON links BEGIN \
             UPDATE retired_clicks SET \
                humans = humans + coalesce((SELECT sum(humans) FROM daily_clicks WHERE slug = OLD.slug), 0) \
                       + (SELECT count(*) FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.slug = OLD.slug AND c.id > w.folded_up_to AND c.is_bot = 0), \
                bots = bots + coalesce((SELECT sum(bots) FROM daily_clicks WHERE slug = OLD.slug), 0) \
                     + (SELECT count(*) FROM clicks c, rollup_watermark w WHERE w.id = 1 AND c.slug = OLD.slug AND c.id > w.folded_up_to AND c.is_bot = 1) \
             WHERE id = 1; \
             DELETE FROM daily_clicks WHERE slug = OLD.slug; \
             DELETE FROM daily_dimensions WHERE slug = OLD.slug; \
             DELETE FROM link_dimensions WHERE slug = OLD.slug; \
             DELETE FROM clicks WHERE slug = OLD.slug; \
             END"),
            Statement {
                sql: "COMMIT",
                operation: "COMMIT",
                table: "",
            },
        ],
    },
    Migration {
        version: 10,
        // Clicks shipped from a replica's outbox (`crate::outbox`) carry
        // their origin: the replica's id and the click's number in its
        // outbox. The unique index makes a shipped batch idempotent (a
        // batch sent again after a lost answer inserts nothing twice);
        // clicks written here directly have no origin and never enter it.
        statements: &[
            Statement {
                sql: "ALTER TABLE clicks ADD COLUMN origin TEXT",
                operation: "ALTER",
                table: "clicks",
            },
            Statement {
                sql: "ALTER TABLE clicks ADD COLUMN origin_seq INTEGER",
                operation: "ALTER",
                table: "clicks",
            },
            ddl(
                "CREATE UNIQUE INDEX IF NOT EXISTS clicks_origin ON clicks (origin, origin_seq) WHERE origin IS NOT NULL",
            ),
        ],
    },
];

/// What a connection finds on arrival: the schema version and the journal
/// mode (through the pragma's table-valued function, so one statement). An
/// error means no schema yet.
const ARRIVAL: Statement = Statement {
    sql: "SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations), \
          (SELECT journal_mode FROM pragma_journal_mode)",
    operation: "SELECT",
    table: "schema_migrations",
};

/// Applies a connection pragma. A remote database (libSQL) may refuse
/// local-file pragmas: logged, not fatal.
pub async fn apply_pragma(db: &dyn SqlStore, pragma: &Statement) {
    if let Err(e) = db.execute(pragma, vec![]).await {
        tracing::warn!(error = %e, pragma = pragma.sql, "pragma not applied");
    }
}

/// Applies connection settings and every pending migration; returns the
/// schema version now in force.
///
/// Every Spin instance runs this on its new connection, most often against
/// a database that is already migrated and in WAL mode: one statement finds
/// that out, and only what is missing follows (there, the connection's own
/// `synchronous`), instead of five statements (~0.3 ms each on a new
/// connection) every time.
pub async fn run(db: &dyn SqlStore, now_unix: i64) -> Result<i64, StoreError> {
    let arrival = db.execute(&ARRIVAL, vec![]).await.ok();
    let row = arrival.as_ref().and_then(|rows| rows.rows.first());
    let found = row.and_then(|r| r.first()).and_then(SqlValue::as_i64);
    let mode = row.and_then(|r| r.get(1)).and_then(SqlValue::as_str);
    let [wal, synchronous] = &PRAGMAS;
    if mode != Some("wal") {
        apply_pragma(db, wal).await;
    }
    apply_pragma(db, synchronous).await;
    let applied = match found {
        Some(version) => version,
        None => {
            db.execute(&CREATE_MIGRATIONS, vec![]).await?;
            db.execute(&CURRENT_VERSION, vec![]).await?.scalar_i64()
        }
    };
    let mut version = applied;
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        if skipped_under_lock(db, migration).await? {
            continue;
        }
        // A `BEGIN` was run by `skipped_under_lock`.
        let opened = migration
            .statements
            .first()
            .is_some_and(|s| s.operation == "BEGIN");
        for statement in &migration.statements[usize::from(opened)..] {
            if let Err(e) = apply(db, statement).await {
                // A migration that opened a transaction must not leave it
                // open on the connection (no error when none is open).
                let _ = db.execute(&ROLLBACK, vec![]).await;
                return Err(e);
            }
        }
        db.execute(
            &RECORD_VERSION,
            vec![
                SqlValue::Integer(migration.version),
                SqlValue::Integer(now_unix),
            ],
        )
        .await?;
        version = migration.version;
    }
    Ok(version)
}

/// For a migration that is one transaction (it begins with `BEGIN
/// IMMEDIATE`): opens it and reads the version again under the write lock.
/// `true` (and the transaction closed) when another instance applied the
/// migration since this one read the version: replaying it now could undo
/// a later migration (migration 4 would bring the per-click rollup back
/// after migration 9). Otherwise the transaction stays open for the
/// migration's own statements.
async fn skipped_under_lock(db: &dyn SqlStore, migration: &Migration) -> Result<bool, StoreError> {
    let Some(begin) = migration
        .statements
        .first()
        .filter(|s| s.operation == "BEGIN")
    else {
        return Ok(false);
    };
    db.execute(begin, vec![]).await?;
    let current = match db.execute(&CURRENT_VERSION, vec![]).await {
        Ok(rows) => rows.scalar_i64(),
        Err(e) => {
            let _ = db.execute(&ROLLBACK, vec![]).await;
            return Err(e);
        }
    };
    if current >= migration.version {
        db.execute(&ROLLBACK, vec![]).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Runs one migration statement. An `ALTER TABLE … ADD COLUMN` is made
/// idempotent here: the column being there already (another instance, or an
/// earlier run, added it) is success.
pub async fn apply(db: &dyn SqlStore, statement: &Statement) -> Result<(), StoreError> {
    match db.execute(statement, vec![]).await {
        Err(e) if statement.operation == "ALTER" && e.message.contains("duplicate column name") => {
            Ok(())
        }
        other => other.map(drop),
    }
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::SqliteStore;
    use crate::storage::Rows;

    const VERSIONS: Statement = Statement {
        sql: "SELECT count(*) FROM schema_migrations",
        operation: "SELECT",
        table: "schema_migrations",
    };
    const JOURNAL: Statement = Statement::pragma("PRAGMA journal_mode");

    #[tokio::test]
    async fn a_fresh_database_is_migrated_to_the_latest_version_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("m.db")).unwrap();
        assert_eq!(run(&db, 0).await.unwrap(), latest_version());
        let mode = db.execute(&JOURNAL, vec![]).await.unwrap();
        assert_eq!(mode.rows[0][0], SqlValue::Text("wal".into()));
    }

    /// A remote database (Spin's `libsql` type) that refuses local-file pragmas.
    struct RefusesPragmas(SqliteStore);

    #[async_trait::async_trait]
    impl SqlStore for RefusesPragmas {
        async fn execute(
            &self,
            statement: &Statement,
            params: Vec<SqlValue>,
        ) -> Result<Rows, StoreError> {
            if statement.operation == "PRAGMA" {
                return Err(StoreError::new("io", "pragma not allowed"));
            }
            self.0.execute(statement, params).await
        }
    }

    #[tokio::test]
    async fn a_database_that_refuses_pragmas_is_still_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let db = RefusesPragmas(SqliteStore::open(dir.path().join("m.db")).unwrap());
        assert_eq!(run(&db, 0).await.unwrap(), latest_version());
        let versions = db.execute(&VERSIONS, vec![]).await.unwrap();
        assert_eq!(versions.scalar_i64(), MIGRATIONS.len() as i64);
    }

    /// Records the SQL of every statement it runs.
    struct Recording(SqliteStore, std::sync::Mutex<Vec<&'static str>>);

    #[async_trait::async_trait]
    impl SqlStore for Recording {
        async fn execute(
            &self,
            statement: &Statement,
            params: Vec<SqlValue>,
        ) -> Result<Rows, StoreError> {
            self.1.lock().unwrap().push(statement.sql);
            self.0.execute(statement, params).await
        }
    }

    #[tokio::test]
    async fn a_new_connection_to_a_migrated_database_runs_two_statements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        run(&SqliteStore::open(&path).unwrap(), 0).await.unwrap();
        let next = Recording(SqliteStore::open(&path).unwrap(), Default::default());
        assert_eq!(run(&next, 1).await.unwrap(), latest_version());
        assert_eq!(
            *next.1.lock().unwrap(),
            [ARRIVAL.sql, "PRAGMA synchronous=NORMAL"]
        );
        let sync = Statement::pragma("PRAGMA synchronous");
        // NORMAL is 1.
        assert_eq!(next.execute(&sync, vec![]).await.unwrap().scalar_i64(), 1);
    }

    #[tokio::test]
    async fn a_migrated_database_found_out_of_wal_mode_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        run(&SqliteStore::open(&path).unwrap(), 0).await.unwrap();
        let other = SqliteStore::open(&path).unwrap();
        let delete = Statement::pragma("PRAGMA journal_mode=DELETE");
        other.execute(&delete, vec![]).await.unwrap();
        drop(other);
        let db = SqliteStore::open(&path).unwrap();
        assert_eq!(run(&db, 1).await.unwrap(), latest_version());
        let mode = db.execute(&JOURNAL, vec![]).await.unwrap();
        assert_eq!(mode.rows[0][0], SqlValue::Text("wal".into()));
    }

    #[tokio::test]
    async fn running_the_migrations_again_from_another_connection_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let first = SqliteStore::open(&path).unwrap();
        let second = SqliteStore::open(&path).unwrap();
        run(&first, 1).await.unwrap();
        // Idempotent statements: replaying a migration is harmless.
        for statement in MIGRATIONS[0].statements {
            second.execute(statement, vec![]).await.unwrap();
        }
        assert_eq!(run(&second, 2).await.unwrap(), latest_version());
        let versions = second.execute(&VERSIONS, vec![]).await.unwrap();
        assert_eq!(versions.scalar_i64(), MIGRATIONS.len() as i64);
    }

    const TRIGGERS_ON_CLICKS: Statement = Statement {
        sql: "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'clicks'",
        operation: "SELECT",
        table: "sqlite_schema",
    };
    const LINK: Statement = Statement {
        sql: "INSERT INTO links (slug, created_at) VALUES (?1, 0)",
        operation: "INSERT",
        table: "links",
    };

    /// Applies the migrations up to `version` only, as an older build did.
    async fn migrate_up_to(db: &SqliteStore, version: i64) {
        db.execute(&CREATE_MIGRATIONS, vec![]).await.unwrap();
        for migration in MIGRATIONS.iter().filter(|m| m.version <= version) {
            for statement in migration.statements {
                db.execute(statement, vec![]).await.unwrap();
            }
            let params = vec![SqlValue::Integer(migration.version), SqlValue::Integer(0)];
            db.execute(&RECORD_VERSION, params).await.unwrap();
        }
    }

    async fn click(db: &SqliteStore, slug: &crate::links::Slug, day: u8, host: &str) {
        let visitor = crate::clicks::Visitor {
            referrer_host: (!host.is_empty()).then(|| host.to_owned()),
            browser: "Chrome".into(),
            os: "Linux".into(),
            is_bot: false,
        };
        let at = time::Date::from_calendar_date(2030, time::Month::January, day)
            .unwrap()
            .midnight()
            .assume_utc();
        let click = crate::clicks::Click {
            slug,
            at,
            visitor: &visitor,
            visitor_hash: format!("{host}{day}"),
            rule: None,
            limited: false,
        };
        assert!(crate::clicks::record(db, &click).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_database_written_before_the_referrer_cap_keeps_its_stats_when_migrated() {
        use crate::analytics::{self, DayRange, MAX_BREAKDOWN};
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("m.db")).unwrap();
        migrate_up_to(&db, 3).await;
        let slug = crate::links::Slug::parse("legacy").unwrap();
        db.execute(&LINK, vec![slug.as_str().into()]).await.unwrap();
        // The old trigger kept every host: 130 of them over two days.
        for i in 0..130 {
            click(&db, &slug, 1 + (i % 2) as u8, &format!("h{i:03}.example")).await;
        }
        click(&db, &slug, 1, "h000.example").await;
        click(&db, &slug, 2, "").await;
        let ranges = [
            DayRange::default(),
            DayRange::parse(Some("2030-01-02"), None).unwrap(),
        ];
        let mut before = Vec::new();
        for range in &ranges {
            before.push(analytics::stats(&db, &slug, range).await.unwrap());
        }
        assert_eq!(before[0].referrers.len(), MAX_BREAKDOWN + 1);

        assert_eq!(run(&db, 1).await.unwrap(), latest_version());
        for (range, before) in ranges.iter().zip(&before) {
            let after = analytics::stats(&db, &slug, range).await.unwrap();
            assert_eq!(&after, before, "{range:?}");
        }
        // Afterwards a kept host still counts by name, a new one under "(other)".
        click(&db, &slug, 3, "h129.example").await;
        click(&db, &slug, 3, "new.example").await;
        let after = analytics::stats(&db, &slug, &DayRange::default())
            .await
            .unwrap();
        assert_eq!(after.total, before[0].total + 2);
        let named = |host: &str| {
            after
                .referrers
                .iter()
                .find(|r| r.host.as_deref() == Some(host))
                .map(|r| r.clicks)
        };
        assert_eq!(named("h000.example"), Some(2));
        assert_eq!(named("h129.example"), Some(2));
        // new.example joins "(other)"; h129 leaves it for the top and
        // pushes one single-click host into it.
        let other = after.referrers.last().unwrap();
        assert!(other.other);
        assert_eq!(other.clicks, before[0].referrers.last().unwrap().clicks + 1);
        let capped = Statement {
            sql: "SELECT clicks FROM link_dimensions WHERE value = '(other)'",
            operation: "SELECT",
            table: "link_dimensions",
        };
        assert_eq!(db.execute(&capped, vec![]).await.unwrap().scalar_i64(), 1);
    }

    #[tokio::test]
    async fn the_capped_rollup_trigger_replaces_the_old_one_so_a_click_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let first = SqliteStore::open(&path).unwrap();
        migrate_up_to(&first, 3).await;
        let second = SqliteStore::open(&path).unwrap();
        assert_eq!(run(&first, 1).await.unwrap(), latest_version());
        // Another instance that started from scratch replays every migration.
        for migration in MIGRATIONS {
            for statement in migration.statements {
                apply(&second, statement).await.unwrap();
            }
        }
        let triggers = first.execute(&TRIGGERS_ON_CLICKS, vec![]).await.unwrap();
        assert_eq!(triggers.scalar_i64(), 1);
        let slug = crate::links::Slug::parse("once").unwrap();
        first
            .execute(&LINK, vec![slug.as_str().into()])
            .await
            .unwrap();
        click(&second, &slug, 1, "a.example").await;
        let total = crate::analytics::link_total(&first, &slug).await.unwrap();
        assert_eq!(total, 1);
        let stats = crate::analytics::stats(&first, &slug, &Default::default())
            .await
            .unwrap();
        assert_eq!(stats.referrers[0].clicks, 1);
    }

    /// Every rollup row, in key order, as text (for comparing databases).
    async fn rollup_rows(db: &SqliteStore) -> Vec<String> {
        const TABLES: [Statement; 4] = [
            Statement {
                sql: "SELECT slug, day, clicks, humans, bots, visitors FROM daily_clicks ORDER BY 1, 2",
                operation: "SELECT",
                table: "daily_clicks",
            },
            Statement {
                sql: "SELECT slug, day, dimension, value, clicks FROM daily_dimensions ORDER BY 1, 2, 3, 4",
                operation: "SELECT",
                table: "daily_dimensions",
            },
            Statement {
                sql: "SELECT slug, dimension, value, clicks FROM link_dimensions ORDER BY 1, 2, 3",
                operation: "SELECT",
                table: "link_dimensions",
            },
            Statement {
                sql: "SELECT humans, bots FROM retired_clicks",
                operation: "SELECT",
                table: "retired_clicks",
            },
        ];
        let mut out = Vec::new();
        for table in &TABLES {
            for row in db.execute(table, vec![]).await.unwrap().rows {
                out.push(format!("{}: {row:?}", table.table));
            }
        }
        out
    }

    #[tokio::test]
    async fn folding_clicks_in_batches_gives_exactly_the_rollups_the_per_click_trigger_gave() {
        use rand::{Rng, SeedableRng};
        const DELETE: Statement = Statement {
            sql: "DELETE FROM links WHERE slug = ?1",
            operation: "DELETE",
            table: "links",
        };
        for seed in 0..4_u64 {
            let dir = tempfile::tempdir().unwrap();
            // The per-click trigger, as migration 6's schema had it ...
            let per_click = SqliteStore::open(dir.path().join("old.db")).unwrap();
            migrate_up_to(&per_click, 6).await;
            for pragma in &PRAGMAS {
                per_click.execute(pragma, vec![]).await.unwrap();
            }
            // ... and the fold.
            let folded = SqliteStore::open(dir.path().join("new.db")).unwrap();
            assert_eq!(run(&folded, 1).await.unwrap(), latest_version());
            let slugs: Vec<_> = ["alpha", "beta", "gamma", "delta"]
                .iter()
                .map(|s| crate::links::Slug::parse(s).unwrap())
                .collect();
            for db in [&per_click, &folded] {
                for slug in &slugs {
                    db.execute(&LINK, vec![slug.as_str().into()]).await.unwrap();
                }
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for i in 0..2_500 {
                // Enough distinct referrers to pass the cap of 100 on some
                // links, days out of order, visitors coming back.
                let index = rng.random_range(0..3);
                let slug = &slugs[if i > 2_000 && index == 2 { 3 } else { index }];
                let host = match rng.random_range(0..10) {
                    0 => String::new(),
                    1..=3 => "news.example".to_owned(),
                    _ => format!("h{}.example", rng.random_range(0..180)),
                };
                let visitor = crate::clicks::Visitor {
                    referrer_host: (!host.is_empty()).then_some(host),
                    browser: ["Chrome", "Firefox", "Safari"][rng.random_range(0..3)].into(),
                    os: ["Linux", "Windows 10", "iOS", "Android"][rng.random_range(0..4)].into(),
                    is_bot: rng.random_bool(0.2),
                };
                let day = rng.random_range(1..=4);
                let at = time::Date::from_calendar_date(2030, time::Month::January, day)
                    .unwrap()
                    .midnight()
                    .assume_utc();
                let click = crate::clicks::Click {
                    slug,
                    at,
                    visitor: &visitor,
                    visitor_hash: format!("v{}", rng.random_range(0..60)),
                    rule: None,
                    limited: false,
                };
                for db in [&per_click, &folded] {
                    assert!(crate::clicks::record(db, &click).await.unwrap().is_some());
                }
                // Folds at random points, of random batch sizes.
                if rng.random_bool(0.01) {
                    let batch = SqlValue::Integer(rng.random_range(1..400));
                    folded
                        .execute(&crate::rollups::FOLD, vec![batch])
                        .await
                        .unwrap();
                }
                // A link deleted with clicks not folded yet retires them too.
                if i == 2_000 {
                    for db in [&per_click, &folded] {
                        db.execute(&DELETE, vec![slugs[2].as_str().into()])
                            .await
                            .unwrap();
                    }
                }
            }
            crate::rollups::fold(&folded).await.unwrap();
            assert_eq!(
                rollup_rows(&folded).await,
                rollup_rows(&per_click).await,
                "seed {seed}"
            );
        }
    }

    // --- Migration 8 (`links::rules`, `orphans`).

    /// A database and records as today's main wrote them (schema 6), with
    /// clicks, keep redirecting as before once migrated: same target, same
    /// stats, their records untouched, and their clicks still counted.
    #[tokio::test]
    async fn links_and_clicks_written_before_the_redirect_options_redirect_and_count_as_before() {
        use crate::analytics::{self, DayRange};
        use crate::config::names;
        use crate::storage::KvStore;
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt;

        let dir = tempfile::tempdir().unwrap();
        let old_db = SqliteStore::open(dir.path().join("clicks.db")).unwrap();
        migrate_up_to(&old_db, 6).await;
        let record = r#"{"slug":"oldone","url":"https://e.com/p?a=1","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#;
        let registered = Statement {
            sql: "INSERT INTO links (slug, created_at, record) VALUES ('oldone', 0, ?1)",
            operation: "INSERT",
            table: "links",
        };
        old_db
            .execute(&registered, vec![record.into()])
            .await
            .unwrap();
        let slug = crate::links::Slug::parse("oldone").unwrap();
        for day in 1..=3 {
            click(&old_db, &slug, day, "news.example").await;
        }
        let before = analytics::stats(&old_db, &slug, &DayRange::default())
            .await
            .unwrap();
        drop(old_db);

        let vars = [
            (names::ADMIN_TOKEN, "test-admin-token-0123456789abcdef"),
            (names::PUBLIC_BASE_URL, "https://sho.rt"),
            (names::VISITOR_SALT, "test-visitor-salt-0123456789abcdef"),
        ];
        let now = time::macros::datetime!(2030-01-04 12:00 UTC);
        let host = crate::native::TestHost::start(dir.path(), &vars, now)
            .await
            .unwrap();
        host.kv.set("link:oldone", record.as_bytes()).await.unwrap();
        assert_eq!(run(host.sql.as_ref(), 1).await.unwrap(), latest_version());
        let after = analytics::stats(host.sql.as_ref(), &slug, &DayRange::default())
            .await
            .unwrap();
        assert_eq!(after, before);
        let link = host.app.links().get(&slug).await.unwrap().unwrap();
        assert!(link.forward_query && link.rules.is_empty());
        assert_eq!((link.max_clicks, link.valid_from), (None, None));

        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let r = host.router().oneshot(get("/oldone")).await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()["location"], "https://e.com/p?a=1");
        let total = analytics::link_total(host.sql.as_ref(), &slug)
            .await
            .unwrap();
        assert_eq!(total, before.total + 1);
        // The record stays byte for byte what the old build wrote.
        let kv = host.kv.get("link:oldone").await.unwrap().unwrap();
        assert_eq!(kv, record.as_bytes());
        let rules = analytics::rule_clicks(host.sql.as_ref(), &slug, &DayRange::default())
            .await
            .unwrap();
        assert!(rules.is_empty());
    }

    #[tokio::test]
    async fn migration_8_replayed_by_another_instance_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let first = SqliteStore::open(&path).unwrap();
        let second = SqliteStore::open(&path).unwrap();
        run(&first, 1).await.unwrap();
        let eight = MIGRATIONS.iter().find(|m| m.version == 8).unwrap();
        for statement in eight.statements {
            apply(&second, statement).await.unwrap();
        }
        let limits = Statement {
            sql: "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'click%limit%'",
            operation: "SELECT",
            table: "sqlite_schema",
        };
        assert_eq!(
            first.execute(&limits, vec![]).await.unwrap().scalar_i64(),
            4
        );
    }

    /// What a request to `router` answers: status, `Location`, JSON body.
    async fn call(
        router: &axum::Router,
        method: &str,
        path: &str,
    ) -> (u16, Option<String>, serde_json::Value) {
        use tower::ServiceExt;
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", "Bearer test-admin-token-0123456789abcdef")
            .header(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            )
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(crate::app::ClientAddr("203.0.113.9".parse().unwrap()));
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            location,
            serde_json::from_slice(&bytes).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn a_database_of_the_previous_version_with_links_and_clicks_migrates_keeping_redirects_stats_and_totals()
     {
        use crate::analytics::{self, DayRange};
        use crate::config::names;
        use crate::links::Slug;
        use crate::storage::KvStore;
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("clicks.db")).unwrap();
        migrate_up_to(&db, 6).await;
        // One link from before migration 5 (no record copy) and one the
        // previous version wrote (with its copy), each with clicks.
        let before5 = r#"{"slug":"before5","url":"https://old.example/a","created_at":"2029-06-01T00:00:00Z","expires_at":null}"#;
        let previous = r#"{"slug":"previous","url":"https://old.example/b","created_at":"2029-07-01T00:00:00Z","expires_at":null}"#;
        let legacy = Statement {
            sql: "INSERT INTO links (slug, created_at, record) VALUES (?1, ?2, ?3)",
            operation: "INSERT",
            table: "links",
        };
        // And one whose copy is no JSON: the migration must not fail on it.
        for (slug, at, record) in [
            ("before5", 1_906_934_400, SqlValue::Null),
            ("previous", 1_909_526_400, SqlValue::Text(previous.into())),
            ("garbled", 1_909_526_400, SqlValue::Text("not json{".into())),
        ] {
            let params = vec![slug.into(), SqlValue::Integer(at), record];
            db.execute(&legacy, params).await.unwrap();
        }
        let (a, b) = (
            Slug::parse("before5").unwrap(),
            Slug::parse("previous").unwrap(),
        );
        for day in 1..=3 {
            click(&db, &a, day, "ref.example").await;
        }
        click(&db, &b, 2, "").await;
        let stats_before = (
            analytics::stats(&db, &a, &DayRange::default())
                .await
                .unwrap(),
            analytics::stats(&db, &b, &DayRange::default())
                .await
                .unwrap(),
        );
        drop(db);

        let vars = [
            (names::ADMIN_TOKEN, "test-admin-token-0123456789abcdef"),
            (names::PUBLIC_BASE_URL, "https://sho.rt"),
            (names::VISITOR_SALT, "test-visitor-salt-0123456789abcdef"),
        ];
        let now = time::macros::datetime!(2030-01-15 12:00 UTC);
        let host = crate::native::TestHost::start(dir.path(), &vars, now)
            .await
            .unwrap();
        host.kv
            .set("link:before5", before5.as_bytes())
            .await
            .unwrap();
        host.kv
            .set("link:previous", previous.as_bytes())
            .await
            .unwrap();
        let router = host.router();
        // Every old link keeps redirecting, and its stats are as they were.
        let (status, location, _) = call(&router, "GET", "/before5").await;
        assert_eq!(
            (status, location.as_deref()),
            (302, Some("https://old.example/a"))
        );
        let (status, location, _) = call(&router, "GET", "/previous").await;
        assert_eq!(
            (status, location.as_deref()),
            (302, Some("https://old.example/b"))
        );
        let all = DayRange::default();
        let after_a = analytics::stats(host.sql.as_ref(), &a, &all).await.unwrap();
        let after_b = analytics::stats(host.sql.as_ref(), &b, &all).await.unwrap();
        assert_eq!(after_a.total, stats_before.0.total + 1);
        assert_eq!(after_a.daily[..3], stats_before.0.daily[..]);
        assert_eq!(after_b.total, stats_before.1.total + 1);
        // Both are listed with their totals (the clicks before the
        // migration and the one since), in every order and by a search.
        let (status, _, page) = call(&router, "GET", "/api/links?sort=clicks").await;
        assert_eq!(status, 200, "{page}");
        let listed: Vec<(&str, i64)> = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["slug"].as_str().unwrap(), l["clicks"].as_i64().unwrap()))
            .collect();
        assert_eq!(listed, [("before5", 4), ("previous", 2)]);
        let (_, _, page) = call(&router, "GET", "/api/links?sort=created").await;
        assert_eq!(page["links"][0]["slug"], "previous");
        let (_, _, page) = call(&router, "GET", "/api/links?q=OLD.example/a").await;
        assert_eq!(page["links"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["links"][0]["tags"], serde_json::json!([]));
        let (_, _, link) = call(&router, "GET", "/api/links/before5").await;
        assert_eq!(link["clicks"], 4);
    }

    #[tokio::test]
    async fn a_record_written_by_the_previous_version_after_the_migration_keeps_url_and_tags_in_step()
     {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path().join("m.db")).unwrap();
        run(&db, 0).await.unwrap();
        // The previous version's CLAIM and REVISE write `record` only.
        let claim = Statement {
            sql: "INSERT INTO links (slug, created_at, record) VALUES ('old', 0, ?1)",
            operation: "INSERT",
            table: "links",
        };
        let revise = Statement {
            sql: "UPDATE links SET record = ?1 WHERE slug = 'old'",
            operation: "UPDATE",
            table: "links",
        };
        let columns = Statement {
            sql: "SELECT url, tags, (SELECT group_concat(tag) FROM link_tags WHERE slug = 'old') \
                  FROM links WHERE slug = 'old'",
            operation: "SELECT",
            table: "links",
        };
        let record = |url: &str, tags: &str| {
            SqlValue::Text(format!(
                r#"{{"slug":"old","url":"{url}","created_at":"2030-01-01T00:00:00Z","expires_at":null{tags}}}"#
            ))
        };
        db.execute(&claim, vec![record("https://a.example/", "")])
            .await
            .unwrap();
        let rows = db.execute(&columns, vec![]).await.unwrap();
        assert_eq!(
            rows.rows[0],
            [
                SqlValue::Text("https://a.example/".into()),
                SqlValue::Null,
                SqlValue::Null
            ]
        );
        let tagged = record("https://b.example/", r#","tags":["x"]"#);
        db.execute(&revise, vec![tagged]).await.unwrap();
        let rows = db.execute(&columns, vec![]).await.unwrap();
        assert_eq!(
            rows.rows[0],
            [
                SqlValue::Text("https://b.example/".into()),
                SqlValue::Text(r#"["x"]"#.into()),
                SqlValue::Text("x".into())
            ]
        );
    }
}
