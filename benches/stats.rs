//! Stats of a link with 1,000,000 clicks, from the rollups.
//!
//! Bulk-loads the clicks of one link through the production click write
//! (`shortener::clicks::RECORD`, so the `clicks_rollup` trigger maintains the
//! rollups exactly as in production; batched in transactions on a raw
//! connection to the same file, for speed), spread over 365 days with varied
//! referrers, browsers, OSes, bots and visitors. Then times
//! `GET /api/links/{slug}/stats` and `GET /api/links/{slug}` through the real
//! router, and, for contrast, the same totals computed from the raw rows.
//!
//! `cargo bench --bench stats [-- --clicks 1000000 --iterations 200]` (or
//! `STATS_CLICKS`, `STATS_ITERATIONS`). Without `--bench` (under
//! `cargo test --all-targets`) it loads ~2,000 clicks, checks the stats add
//! up, and makes a few requests.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use shortener::Handler;
use shortener::clicks::{self, Visitor};
use shortener::native::SqliteStore;
use shortener::rollups;
use shortener::storage::{SqlValue, Statement};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

use common::{AGENTS, SALT, TOKEN, fmt_duration as fmt, percentile};
use rand::Rng;

const SLUG: &str = "big-launch";
const DAYS: i64 = 365;
const BATCH: usize = 50_000;

struct Config {
    bench: bool,
    clicks: usize,
    iterations: usize,
}

impl Config {
    fn from_env_and_args() -> Self {
        let args = common::Args::parse();
        Self {
            bench: args.bench,
            clicks: args.get("--clicks", "STATS_CLICKS", 1_000_000, 2_000),
            iterations: args.get("--iterations", "STATS_ITERATIONS", 200, 5),
        }
    }
}

/// Loads `n` clicks of `SLUG`, ending at `now`, through `clicks::RECORD`.
/// Returns the load time.
fn bulk_load(path: &std::path::Path, n: usize, now: OffsetDateTime) -> Duration {
    let referrers: Vec<Option<String>> = std::iter::once(None)
        .chain(std::iter::once(None))
        .chain((0..60).map(|i| Some(format!("site{i}.example.com"))))
        .chain(
            [
                "www.google.com",
                "news.ycombinator.com",
                "t.co",
                "www.reddit.com",
            ]
            .map(|h| Some(h.to_owned())),
        )
        .collect();
    let agents: Vec<(&str, Visitor)> = AGENTS
        .iter()
        .map(|ua| (*ua, Visitor::classify(ua, None)))
        .collect();
    let first_day = now - time::Duration::days(DAYS - 1);
    let first_midnight = first_day.replace_time(time::Time::MIDNIGHT);
    let mut rng = common::rng(0x5eed_1234_abcd_ef01);
    let mut hashes: HashMap<(usize, usize, i64), String> = HashMap::new();

    let mut conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("pragma");
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let tx = conn.transaction().expect("BEGIN");
        {
            let mut stmt = tx.prepare_cached(clicks::RECORD.sql).expect("prepare");
            for i in done..(done + BATCH).min(n) {
                // Evenly over the days, at a random second of the day.
                let day_index = (i as i64 * DAYS) / n as i64;
                let at = first_midnight
                    + time::Duration::days(day_index)
                    + time::Duration::seconds(rng.random_range(0..86_400) as i64);
                let day = clicks::utc_day(at);
                let (ua_index, (ua, visitor)) = {
                    let k = rng.random_range(0..agents.len());
                    (k, &agents[k])
                };
                // ~3,000 distinct addresses: a visitor returns a few times a day.
                let ip_index = rng.random_range(0..3_000);
                let hash = hashes
                    .entry((ip_index, ua_index, day_index))
                    .or_insert_with(|| {
                        let ip: IpAddr = format!("10.{}.{}.{}", ip_index / 250, ip_index % 250, 7)
                            .parse()
                            .expect("valid IP");
                        clicks::visitor_hash(SALT, Some(ip), ua, &day)
                    })
                    .clone();
                // Referrers: two thirds none, the rest over ~64 hosts.
                let referrer = if rng.random_range(0..3) < 2 {
                    None
                } else {
                    referrers[rng.random_range(0..referrers.len())].clone()
                };
                let at_ms = at.unix_timestamp() * 1_000 + rng.random_range(0..1_000) as i64;
                let id: i64 = stmt
                    .query_row(
                        rusqlite::params![
                            SLUG,
                            at_ms,
                            day,
                            referrer,
                            visitor.browser,
                            visitor.os,
                            visitor.is_bot,
                            hash
                        ],
                        |row| row.get(0),
                    )
                    .expect("click recorded");
                debug_assert!(id > 0);
            }
        }
        tx.commit().expect("COMMIT");
        done = (done + BATCH).min(n);
        // Keep the visitor-hash cache to the days still being loaded.
        let current_day = (done as i64 * DAYS) / n as i64;
        hashes.retain(|k, _| k.2 >= current_day - 1);
    }
    let took = started.elapsed();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    took
}

async fn send(
    router: &Handler,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"));
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(builder.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, bytes.to_vec())
}

struct Timing {
    what: String,
    samples: Vec<Duration>,
    bytes: usize,
}

impl Timing {
    fn row(&mut self) -> String {
        self.samples.sort_unstable();
        let s = &self.samples;
        let pct = |p: f64| percentile(s, p);
        let mean = s.iter().sum::<Duration>() / s.len() as u32;
        format!(
            "{:<48} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9}",
            self.what,
            s.len(),
            fmt(mean),
            fmt(pct(0.5)),
            fmt(pct(0.99)),
            fmt(*s.last().expect("samples")),
            self.bytes
        )
    }
}

async fn time_request(
    router: &Handler,
    what: &str,
    uri: &str,
    iterations: usize,
) -> (Timing, Value) {
    // One warm-up request (page cache, statement cache), not counted.
    let (status, body) = send(router, Method::GET, uri, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    let mut samples = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for _ in 0..iterations {
        let t0 = Instant::now();
        let (status, body) = send(router, Method::GET, uri, None).await;
        samples.push(t0.elapsed());
        assert_eq!(status, StatusCode::OK);
        bytes = body.len();
    }
    let json: Value = serde_json::from_slice(&body).expect("JSON");
    (
        Timing {
            what: what.to_owned(),
            samples,
            bytes,
        },
        json,
    )
}

fn main() {
    let config = Config::from_env_and_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(config));
}

async fn run(config: Config) {
    let now = datetime!(2030-12-31 12:00 UTC);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("clicks.db");
    let router = common::app_with_link(dir.path(), SLUG, Arc::new(move || now)).await;
    let sql = SqliteStore::open(&path).expect("open");

    println!(
        "stats: loading {} clicks of one link over {DAYS} days through clicks::RECORD, then folding them ...",
        config.clicks
    );
    let load = bulk_load(&path, config.clicks, now);
    // The rollups of every click, folded in batches as reads and redirects
    // fold them (`rollups::FOLD`).
    let fold_start = std::time::Instant::now();
    let mut batches = 0;
    while rollups::fold_batch(&sql).await.expect("fold") == rollups::FOLD_BATCH {
        batches += 1;
    }
    let fold = fold_start.elapsed();
    println!(
        "folded in {:.2} s ({:.0} clicks/s, {} batches of {})",
        fold.as_secs_f64(),
        config.clicks as f64 / fold.as_secs_f64(),
        batches + 1,
        rollups::FOLD_BATCH
    );
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let count = |sql_text: &'static str| {
        sql.execute_blocking(
            &Statement {
                sql: sql_text,
                operation: "SELECT",
                table: "",
            },
            vec![],
        )
        .expect("query")
        .scalar_i64()
    };
    println!(
        "loaded in {:.1} s ({:.0} clicks/s, {BATCH} per transaction); database {:.1} MB; {} daily rows, {} dimension rows",
        load.as_secs_f64(),
        config.clicks as f64 / load.as_secs_f64(),
        size as f64 / 1e6,
        count("SELECT count(*) FROM daily_clicks"),
        count("SELECT count(*) FROM daily_dimensions"),
    );

    let it = config.iterations;
    let last30_from = clicks::utc_day(now - time::Duration::days(29));
    let last30 = format!(
        "/api/links/{SLUG}/stats?from={last30_from}&to={}",
        clicks::utc_day(now)
    );
    let mut timings = Vec::new();
    let (t, full) = time_request(
        &router,
        "GET /api/links/{slug}/stats (all 365 days)",
        &format!("/api/links/{SLUG}/stats"),
        it,
    )
    .await;
    timings.push(t);
    let (t, _) = time_request(
        &router,
        "GET /api/links/{slug}/stats (last 30 days)",
        &last30,
        it,
    )
    .await;
    timings.push(t);
    let (t, link) = time_request(
        &router,
        "GET /api/links/{slug} (all-time total)",
        &format!("/api/links/{SLUG}"),
        it,
    )
    .await;
    timings.push(t);

    // For contrast: the same totals from the raw rows (what the rollups save).
    let raw = Statement {
        sql: "SELECT count(*), sum(1 - is_bot), count(DISTINCT day || visitor) FROM clicks WHERE slug = ?1",
        operation: "SELECT",
        table: "clicks",
    };
    let raw_iterations = if config.bench { 5 } else { 2 };
    let mut samples = Vec::new();
    let mut raw_row = Vec::new();
    for _ in 0..raw_iterations {
        let t0 = Instant::now();
        let rows = sql
            .execute_blocking(&raw, vec![SLUG.into()])
            .expect("raw query");
        samples.push(t0.elapsed());
        raw_row = rows.rows.into_iter().next().unwrap_or_default();
    }
    timings.push(Timing {
        what: "contrast: totals from raw clicks (no rollups)".into(),
        samples,
        bytes: 0,
    });

    println!();
    println!(
        "{:<48} {:>6} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "request", "n", "mean", "p50", "p99", "max", "bytes"
    );
    println!("{}", "-".repeat(110));
    for t in &mut timings {
        println!("{}", t.row());
    }

    // The answer must be right, not only fast.
    let int = |v: &Value| v.as_i64().unwrap_or(-1);
    let raw_int = |i: usize| raw_row.get(i).and_then(SqlValue::as_i64).unwrap_or(-2);
    let checks = [
        ("stats total", int(&full["total"]), config.clicks as i64),
        ("stats total = raw rows", int(&full["total"]), raw_int(0)),
        ("stats humans = raw", int(&full["humans"]), raw_int(1)),
        (
            "stats unique visitors = raw",
            int(&full["unique_visitors"]),
            raw_int(2),
        ),
        (
            "days",
            full["daily"].as_array().map_or(0, |d| d.len() as i64),
            DAYS.min(config.clicks as i64),
        ),
        ("link clicks", int(&link["clicks"]), config.clicks as i64),
    ];
    println!();
    let mut ok = true;
    for (what, got, want) in checks {
        let good = got == want;
        ok &= good;
        println!(
            "{what}: {got} (expected {want}) {}",
            if good { "ok" } else { "MISMATCH" }
        );
    }
    if !ok {
        eprintln!("stats: the stats do not add up");
        std::process::exit(1);
    }
}
