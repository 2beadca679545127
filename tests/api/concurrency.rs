//! No click lost under concurrency: writer threads, each with its own
//! connection to one SQLite file (like Spin instances under `oha -c 32`), write
//! clicks through the real `clicks::record` at the same time.

use std::net::IpAddr;
use std::sync::Barrier;

use axum::http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shortener::clicks::{self, Click, Visitor};
use shortener::links::Slug;
use shortener::migrations;
use shortener::native::SqliteStore;
use shortener::storage::SqlValue;
use time::OffsetDateTime;

use crate::helpers::{CHROME, FIREFOX, GOOGLEBOT, TestApp};

const WRITERS: usize = 16;
const CLICKS_PER_WRITER: usize = 40;

/// One instance: its own connection, set up as the component does on first
/// use, then `CLICKS_PER_WRITER` clicks. Returns (attempted, acknowledged).
fn instance(db: &std::path::Path, slugs: &[Slug], seed: u64, start: &Barrier) -> (usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = SqliteStore::open(db).expect("open");
    let now = OffsetDateTime::now_utc();
    runtime
        .block_on(migrations::run(&store, now.unix_timestamp()))
        .expect("instance set up");
    let mut rng = StdRng::seed_from_u64(seed);
    let agents = [CHROME, FIREFOX, GOOGLEBOT, "curl/8.5.0", ""];
    let referers = [
        None,
        Some("https://news.ycombinator.com/"),
        Some("https://t.co/x"),
    ];
    start.wait();
    let mut acked = 0;
    for _ in 0..CLICKS_PER_WRITER {
        let ua = agents[rng.random_range(0..agents.len())];
        let visitor = Visitor::classify(ua, referers[rng.random_range(0..referers.len())]);
        let ip = IpAddr::from([198, 51, 100, rng.random_range(1..=20)]);
        let at = OffsetDateTime::now_utc();
        let click = Click {
            slug: &slugs[rng.random_range(0..slugs.len())],
            at,
            visitor: &visitor,
            visitor_hash: clicks::visitor_hash("salt", Some(ip), ua, &clicks::utc_day(at)),
            rule: None,
            limited: false,
        };
        match runtime.block_on(clicks::record(&store, &click)) {
            Ok(Some(_)) => acked += 1,
            Ok(None) => panic!("link {} not registered", click.slug.as_str()),
            Err(e) => eprintln!("click write failed: {e}"),
        }
    }
    (CLICKS_PER_WRITER, acked)
}

#[tokio::test]
async fn concurrent_instances_lose_no_acknowledged_click_and_rollups_equal_the_raw_rows() {
    let app = TestApp::spawn().await;
    let mut slugs = Vec::new();
    for i in 0..4 {
        let slug = app
            .create_ok(&format!("https://site{i}.example/"), None)
            .await;
        slugs.push(Slug::parse(&slug).expect("slug"));
    }

    let start = Barrier::new(WRITERS);
    let (attempted, acked) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, slugs, start) = (&app.db_path, &slugs, &start);
                s.spawn(move || instance(db, slugs, w as u64 + 1, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .fold((0, 0), |(a, k), (x, y)| (a + x, k + y))
    });

    // Every click was acknowledged (the busy timeout covers the lock
    // contention of 16 writers) and every acknowledged click is a row.
    assert_eq!(attempted, WRITERS * CLICKS_PER_WRITER);
    assert_eq!(acked, attempted, "clicks failed under contention");
    let rows = app.count("SELECT count(*) FROM clicks", vec![]);
    assert_eq!(rows, acked as i64);

    // The trigger-maintained rollups equal the raw rows: per link through the
    // API, and every dimension's breakdown sums to all clicks.
    for slug in &slugs {
        let raw = |sql: &'static str| app.count(sql, vec![SqlValue::from(slug.as_str())]);
        let stats = app.stats(slug.as_str(), "").await.json();
        assert_eq!(
            stats["total"],
            raw("SELECT count(*) FROM clicks WHERE slug = ?1")
        );
        assert_eq!(
            stats["humans"],
            raw("SELECT count(*) FROM clicks WHERE slug = ?1 AND is_bot = 0")
        );
        assert_eq!(
            stats["bots"],
            raw("SELECT count(*) FROM clicks WHERE slug = ?1 AND is_bot = 1")
        );
        assert_eq!(
            stats["unique_visitors"],
            raw("SELECT count(*) FROM (SELECT DISTINCT day, visitor FROM clicks WHERE slug = ?1)")
        );
        let link = app
            .api(Method::GET, &format!("/api/links/{}", slug.as_str()), None)
            .await
            .json();
        assert_eq!(link["clicks"], stats["total"]);
    }
    for table in [
        "SELECT dimension, sum(clicks) FROM daily_dimensions GROUP BY dimension",
        "SELECT dimension, sum(clicks) FROM link_dimensions GROUP BY dimension",
    ] {
        let sums = app.query(table, vec![]);
        assert_eq!(sums.len(), 3, "{table}: referrer, browser, os");
        for row in sums {
            assert_eq!(row[1].as_i64(), Some(rows), "{table}: {row:?}");
        }
    }
}

/// A reader's fold, on its own connection, in small batches while the
/// writers write: `(folds that folded something, clicks they folded)`.
fn folder(db: &std::path::Path, done: &std::sync::atomic::AtomicBool) -> (usize, i64) {
    let store = SqliteStore::open(db).expect("open");
    let (mut folds, mut folded) = (0, 0);
    let batch = || vec![SqlValue::Integer(7)];
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        match store.execute_blocking(&shortener::rollups::FOLD, batch()) {
            Ok(rows) => {
                if let Some(n) = rows.rows.first().and_then(|r| r[1].as_i64()) {
                    folds += 1;
                    folded += n;
                }
            }
            Err(e) => eprintln!("fold failed: {e}"),
        }
    }
    (folds, folded)
}

#[tokio::test]
async fn folds_racing_the_writers_on_other_connections_count_every_click_exactly_once() {
    let app = TestApp::spawn().await;
    let mut slugs = Vec::new();
    for i in 0..3 {
        let slug = app
            .create_ok(&format!("https://fold{i}.example/"), None)
            .await;
        slugs.push(Slug::parse(&slug).expect("slug"));
    }
    let start = Barrier::new(WRITERS);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (acked, folded) = std::thread::scope(|s| {
        let folders: Vec<_> = (0..2)
            .map(|_| {
                let (db, done) = (&app.db_path, &done);
                s.spawn(move || folder(db, done))
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, slugs, start) = (&app.db_path, &slugs, &start);
                s.spawn(move || instance(db, slugs, 100 + w as u64, start))
            })
            .collect();
        let acked: usize = writers.into_iter().map(|h| h.join().unwrap().1).sum();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let folded: i64 = folders.into_iter().map(|h| h.join().unwrap().1).sum();
        (acked, folded)
    });
    assert_eq!(acked, WRITERS * CLICKS_PER_WRITER, "clicks failed");
    assert!(folded > 0, "the folders folded while the writers wrote");
    // What the racing folds left, folded by a read; then every click is in
    // the rollups once: the totals, and every dimension's breakdown.
    let mut total = 0;
    for slug in &slugs {
        let stats = app.stats(slug.as_str(), "").await.json();
        let raw = app.count(
            "SELECT count(*) FROM clicks WHERE slug = ?1",
            vec![SqlValue::from(slug.as_str())],
        );
        assert_eq!(stats["total"], raw, "{}", slug.as_str());
        let visitors = app.count(
            "SELECT count(*) FROM (SELECT DISTINCT day, visitor FROM clicks WHERE slug = ?1)",
            vec![SqlValue::from(slug.as_str())],
        );
        assert_eq!(stats["unique_visitors"], visitors, "{}", slug.as_str());
        total += raw;
    }
    assert_eq!(total, acked as i64);
    for table in [
        "SELECT dimension, sum(clicks) FROM daily_dimensions GROUP BY dimension",
        "SELECT dimension, sum(clicks) FROM link_dimensions GROUP BY dimension",
    ] {
        for row in app.query(table, vec![]) {
            assert_eq!(row[1].as_i64(), Some(total), "{table}: {row:?}");
        }
    }
    assert_eq!(
        app.count("SELECT coalesce(sum(clicks), 0) FROM daily_clicks", vec![]),
        total
    );
}
