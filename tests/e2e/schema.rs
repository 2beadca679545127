//! The schema migrations on a real `spin up`: a click database written by
//! the version before the referrer cap (migrations 1 to 3, the old rollup
//! trigger, registry rows without the record's copy) is migrated by several
//! instances at once, keeps its stats, and its links can be edited and
//! deleted.

use std::path::Path;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};

use crate::ensure;
use crate::harness::{CHROME, SpinBuilder, trial, wait_for_port, write_runtime_config};

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "schema::a_database_of_the_previous_version_migrates_under_concurrent_instances_and_keeps_its_stats",
        a_database_of_the_previous_version_migrates_under_concurrent_instances_and_keeps_its_stats,
    )]
}

/// Turns a current click database back into what the previous version
/// wrote: the old rollup trigger, no record copies, schema version 3; then
/// writes `hosts` clicks through the old trigger (one per host, plus one
/// without referrer) on 2030-01-01.
fn as_previous_version(db: &Path, slug: &str, hosts: usize) -> Result<(), Failed> {
    let conn = rusqlite::Connection::open(db)?;
    // Back to schema 3 whatever came after it: every trigger and index
    // dropped, the tables and columns of later migrations too, then
    // migrations 1 and 3's triggers (the old per-click rollup among them).
    let names = |kind: &str| -> Result<Vec<String>, Failed> {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = ?1 AND sql IS NOT NULL ORDER BY name",
        )?;
        let rows = stmt.query_map([kind], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    for trigger in names("trigger")? {
        conn.execute_batch(&format!("DROP TRIGGER \"{trigger}\""))?;
    }
    for index in names("index")? {
        if index != "clicks_slug_day_visitor" {
            conn.execute_batch(&format!("DROP INDEX \"{index}\""))?;
        }
    }
    const SCHEMA_3: [&str; 9] = [
        "schema_migrations",
        "links",
        "clicks",
        "daily_clicks",
        "daily_dimensions",
        "link_dimensions",
        "retired_clicks",
        "health_probe",
        "corrupt_records",
    ];
    for table in names("table")? {
        if !SCHEMA_3.contains(&table.as_str()) {
            conn.execute_batch(&format!("DROP TABLE \"{table}\""))?;
        }
    }
    for (table, keep) in [
        ("links", &["slug", "created_at"][..]),
        (
            "clicks",
            &[
                "id",
                "slug",
                "at",
                "day",
                "referrer_host",
                "browser",
                "os",
                "is_bot",
                "visitor",
            ][..],
        ),
    ] {
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        for column in columns.iter().filter(|c| !keep.contains(&c.as_str())) {
            conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))?;
        }
    }
    for migration in &shortener::migrations::MIGRATIONS[..3] {
        for statement in migration.statements {
            if statement.sql.contains("CREATE TRIGGER") {
                conn.execute_batch(statement.sql)?;
            }
        }
    }
    conn.execute_batch("DELETE FROM schema_migrations WHERE version > 3")?;
    for i in 0..=hosts {
        let host = (i < hosts).then(|| format!("h{i:03}.example"));
        conn.query_row(
            shortener::clicks::RECORD.sql,
            rusqlite::params![
                slug,
                1_893_456_000_000i64 + i as i64,
                "2030-01-01",
                host,
                "Chrome",
                "Linux",
                0,
                format!("v{i}")
            ],
            |row| row.get::<_, i64>(0),
        )?;
    }
    Ok(())
}

/// The referrer breakdown the raw rows say, as the API writes it: the top
/// 100 (most clicks, then host), the rest in one `(other)` row.
fn expected_referrers(db: &Path, slug: &str) -> Result<Value, Failed> {
    let conn = rusqlite::Connection::open(db)?;
    let mut stmt = conn.prepare(
        "SELECT coalesce(referrer_host, ''), count(*) FROM clicks WHERE slug = ?1 \
         GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([slug], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut list: Vec<Value> = rows
        .iter()
        .take(100)
        .map(|(host, n)| {
            let host = (!host.is_empty()).then(|| host.clone());
            json!({"host": host, "clicks": n})
        })
        .collect();
    let rest: i64 = rows.iter().skip(100).map(|(_, n)| n).sum();
    if rows.len() > 100 {
        list.push(json!({"host": "(other)", "clicks": rest, "other": true}));
    }
    Ok(Value::Array(list))
}

fn a_database_of_the_previous_version_migrates_under_concurrent_instances_and_keeps_its_stats()
-> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("clicks.db");
    let config = write_runtime_config(dir.path(), None, &db);
    let state = dir.path().join("state");
    let spin = SpinBuilder::default()
        .runtime_config(&config)
        .state_dir(&state)
        .start();
    let r = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/old", "slug": "older"})),
    );
    ensure!(r.status == 201, "create: {} {}", r.status, r.body);
    drop(spin);
    as_previous_version(&db, "older", 130)?;
    let expected = expected_referrers(&db, "older")?;

    // Many first requests at once: each new instance migrates.
    let spin = SpinBuilder::default()
        .runtime_config(&config)
        .state_dir(&state)
        .spawn();
    ensure!(
        wait_for_port(spin.port, Duration::from_secs(60)),
        "spin up listens"
    );
    let base = spin.base();
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                let base = base.clone();
                s.spawn(move || {
                    crate::harness::api_at(&base, "GET", "/api/links/older/stats", None)
                        .map(|r| r.status)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    ensure!(
        answers.iter().all(|&s| s == 200),
        "concurrent first requests: {answers:?}\n{}",
        spin.log_text()
    );
    let log = spin.log_text();
    ensure!(!log.contains("migration failed"), "{log}");

    let stats = spin.api("GET", "/api/links/older/stats", None).json();
    ensure!(stats["total"] == 131, "{stats}");
    ensure!(
        stats["referrers"] == expected,
        "stats kept:\n{}\nexpected:\n{expected}",
        stats["referrers"]
    );

    // New clicks: a kept host by name, a new one under "(other)".
    for referer in ["https://h000.example/", "https://new.example/"] {
        let r = spin.request(
            "GET",
            "/older",
            &[("user-agent", CHROME), ("referer", referer)],
            None,
        );
        ensure!(r.status == 302, "visit: {} {}", r.status, r.body);
    }
    // The stats read folds the two clicks into the rollups first.
    let stats = spin.api("GET", "/api/links/older/stats", None).json();
    ensure!(stats["total"] == 133, "{stats}");
    let conn = rusqlite::Connection::open(&db)?;
    let capped: i64 = conn.query_row(
        "SELECT clicks FROM link_dimensions WHERE slug = 'older' AND value = '(other)'",
        [],
        |r| r.get(0),
    )?;
    ensure!(capped == 1, "new.example counted under (other): {capped}");

    // The link registered without a record copy is edited and deleted.
    let r = spin.api(
        "PATCH",
        "/api/links/older",
        Some(json!({"url": "https://example.com/edited"})),
    );
    ensure!(r.status == 200, "edit: {} {}", r.status, r.body);
    let copy: Option<String> =
        conn.query_row("SELECT record FROM links WHERE slug = 'older'", [], |r| {
            r.get(0)
        })?;
    ensure!(
        copy.is_some_and(|c| c.contains("https://example.com/edited")),
        "the edit adopted the record into the registry"
    );
    let r = spin.request("GET", "/older", &[("user-agent", CHROME)], None);
    ensure!(
        r.header("location") == Some("https://example.com/edited"),
        "redirects to the edit: {} {:?}",
        r.status,
        r.header("location")
    );
    let r = spin.api("DELETE", "/api/links/older", None);
    ensure!(r.status == 204, "delete: {} {}", r.status, r.body);
    let r = spin.api("GET", "/api/links/older", None);
    ensure!(r.status == 404, "deleted: {} {}", r.status, r.body);
    Ok(())
}
