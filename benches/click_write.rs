//! The click write under concurrency, natively: the design we ship (C) against
//! the one knob each alternative turns.
//!
//! Models Spin's SQLite host: every writer thread is one Spin instance with
//! its own connection to one database file (SQLite defaults, 5 s busy
//! timeout, exactly like `shortener::native::SqliteStore`), all writing
//! clicks at once, as ~32 instances do under `oha -c 32`. The table shows
//! clicks/s, latency per click write, rows against clicks acknowledged,
//! errors, and how fairly the write lock was shared. That no click is lost
//! and the rollups equal the raw rows is a test (tests/api/concurrency.rs).
//!
//! `cargo bench --bench click_write [-- --secs 5 --writers 32 --only A,C]`
//! (or `CLICK_WRITE_SECS`, `CLICK_WRITE_WRITERS`, `CLICK_WRITE_ONLY`).
//! Without `--bench` (under `cargo test --all-targets`) it runs a few clicks
//! per design, to keep the bench building and running.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{AGENTS, SALT, fmt_duration, percentile};
use rand::Rng;
use shortener::clicks::{self, Click, Visitor};
use shortener::links::Slug;
use shortener::migrations;
use shortener::native::SqliteStore;
use shortener::storage::{SqlValue, Statement, StoreError};
use time::OffsetDateTime;

struct Config {
    bench: bool,
    secs: f64,
    writers: usize,
    only: Option<Vec<String>>,
}

impl Config {
    fn from_env_and_args() -> Self {
        let args = common::Args::parse();
        Self {
            bench: args.bench,
            secs: args.get("--secs", "CLICK_WRITE_SECS", 5.0, 5.0),
            writers: args.get("--writers", "CLICK_WRITE_WRITERS", 32, 4).max(1),
            only: args
                .raw("--only", "CLICK_WRITE_ONLY")
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect()),
        }
    }
}

/// What an instance does to a freshly opened connection.
type Prepare = fn(&SqliteStore) -> Result<(), StoreError>;

struct Design {
    name: &'static str,
    what: &'static str,
    /// The file keeps SQLite's rollback journal (`migrations::run` sets WAL).
    rollback_journal: bool,
    /// `Connection::open` for every click instead of once per instance.
    open_per_click: bool,
    prepare: Prepare,
}

fn pragma(store: &SqliteStore, sql: &'static str) -> Result<(), StoreError> {
    let statement = Statement {
        sql,
        operation: "PRAGMA",
        table: "",
    };
    store.execute_blocking(&statement, vec![]).map(drop)
}

/// What the component does once per instance: pragmas + pending migrations.
fn core_migrate(store: &SqliteStore) -> Result<(), StoreError> {
    block_on(migrations::run(store, now_unix())).map(drop)
}

const DESIGNS: [Design; 4] = [
    Design {
        name: "A",
        what: "Connection::open per click, SQLite defaults (rollback journal, FULL): Spin's default",
        rollback_journal: true,
        open_per_click: true,
        prepare: |_| Ok(()),
    },
    Design {
        name: "C",
        what: "ours: one connection per instance, migrations::run (WAL + NORMAL), clicks::record",
        rollback_journal: false,
        open_per_click: false,
        prepare: core_migrate,
    },
    Design {
        name: "C-full",
        what: "C with synchronous=FULL (durable against power loss)",
        rollback_journal: false,
        open_per_click: false,
        prepare: |s| core_migrate(s).and_then(|()| pragma(s, "PRAGMA synchronous=FULL")),
    },
    Design {
        name: "C-rollback",
        what: "C with the rollback journal (synchronous=NORMAL)",
        rollback_journal: true,
        open_per_click: false,
        prepare: |s| pragma(s, "PRAGMA synchronous=NORMAL"),
    },
];

// ---------------------------------------------------------------- workload

const SLUGS: [&str; 5] = ["launch", "docs", "promo-2030", "blog_post", "careers"];
const REFERRERS: [Option<&str>; 7] = [
    None,
    None,
    Some("https://www.google.com/"),
    Some("https://news.ycombinator.com/item?id=40000000"),
    Some("https://t.co/abc123"),
    Some("https://blog.example.org/2030/launch?utm_source=x"),
    Some("android-app://com.slack"),
];

/// A click as the redirect handler would build it (classification and
/// visitor hash computed up front: only the write is timed).
struct Template {
    slug: Slug,
    visitor: Visitor,
    hash: String,
}

fn pool(size: usize) -> Vec<Template> {
    let day = clicks::utc_day(OffsetDateTime::now_utc());
    let mut rng = common::rng(0x9e37_79b9_7f4a_7c15);
    (0..size)
        .map(|_| {
            // Skewed: half the clicks go to the first link.
            let s = if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(0..SLUGS.len())
            };
            let ua = AGENTS[rng.random_range(0..AGENTS.len())];
            let referer = REFERRERS[rng.random_range(0..REFERRERS.len())];
            let ip = IpAddr::from([198, 51, rng.random_range(0..4), rng.random_range(0..250)]);
            Template {
                slug: Slug::parse(SLUGS[s]).expect("valid slug"),
                visitor: Visitor::classify(ua, referer),
                hash: clicks::visitor_hash(SALT, Some(ip), ua, &day),
            }
        })
        .collect()
}

/// Runs a future of `SqliteStore`, whose calls never wait.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn query(store: &SqliteStore, sql: &'static str) -> Option<SqlValue> {
    let statement = Statement {
        sql,
        operation: "SELECT",
        table: "",
    };
    let rows = store
        .execute_blocking(&statement, vec![])
        .expect("query runs");
    rows.rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
}

/// Creates the schema and registers the links: `migrations::run`, or for a
/// rollback-journal file the same statements without the pragmas.
fn create_database(path: &Path, rollback_journal: bool) {
    let store = SqliteStore::open(path).expect("open");
    if rollback_journal {
        for migration in migrations::MIGRATIONS {
            for statement in migration.statements {
                store.execute_blocking(statement, vec![]).expect("DDL runs");
            }
        }
    } else {
        core_migrate(&store).expect("migrations run");
    }
    let register = Statement {
        sql: "INSERT INTO links (slug, created_at) VALUES (?1, ?2)",
        operation: "INSERT",
        table: "links",
    };
    for slug in SLUGS {
        store
            .execute_blocking(&register, vec![slug.into(), SqlValue::Integer(now_unix())])
            .expect("link registered");
    }
}

// ------------------------------------------------------------------ a run

#[derive(Default)]
struct Tally {
    attempted: u64,
    acked: u64,
    busy: u64,
    other: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    /// Clicks attempted by each writer (fairness of the write lock).
    per_writer: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.attempted += other.attempted;
        self.acked += other.acked;
        self.busy += other.busy;
        self.other += other.other;
        self.first_error = self.first_error.take().or(other.first_error);
        self.latencies.extend(other.latencies);
        self.per_writer.push(other.attempted);
    }
}

/// One instance: `smoke_ops` clicks, or clicks until `deadline`.
fn writer(
    design: &Design,
    path: &Path,
    pool: &[Template],
    seed: u64,
    until: (Option<u64>, Duration),
    barrier: &Barrier,
) -> Tally {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut tally = Tally::default();
    let mut rng = common::rng(seed);
    let instance = (!design.open_per_click).then(|| {
        let store = SqliteStore::open(path).expect("open");
        (design.prepare)(&store).expect("instance set up");
        store
    });
    barrier.wait();
    let start = Instant::now();
    while until
        .0
        .map_or(start.elapsed() < until.1, |n| tally.attempted < n)
    {
        let t = &pool[rng.random_range(0..pool.len())];
        let click = Click {
            slug: &t.slug,
            at: OffsetDateTime::now_utc(),
            visitor: &t.visitor,
            visitor_hash: t.hash.clone(),
            rule: None,
            limited: false,
        };
        let t0 = Instant::now();
        let result = match &instance {
            Some(store) => runtime.block_on(clicks::record(store, &click)),
            // Open, prepare, write, close: all inside the timed region.
            None => SqliteStore::open(path).and_then(|store| {
                (design.prepare)(&store)?;
                runtime.block_on(clicks::record(&store, &click))
            }),
        };
        tally.latencies.push(t0.elapsed());
        tally.attempted += 1;
        match result {
            Ok(_) => tally.acked += 1,
            Err(e) => {
                if e.kind == "busy" {
                    tally.busy += 1;
                } else {
                    tally.other += 1;
                }
                tally.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    tally
}

struct Outcome {
    mode: String,
    elapsed: Duration,
    tally: Tally,
    rows: i64,
}

fn run(design: &Design, config: &Config, pool: &[Template]) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("clicks.db");
    create_database(&path, design.rollback_journal);
    let mode = {
        let probe = SqliteStore::open(&path).expect("open");
        (design.prepare)(&probe).expect("prepare");
        let journal = match query(&probe, "PRAGMA journal_mode") {
            Some(SqlValue::Text(t)) => t,
            other => format!("{other:?}"),
        };
        let sync = ["OFF", "NORMAL", "FULL", "EXTRA"]
            .get(
                query(&probe, "PRAGMA synchronous")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(9) as usize,
            )
            .unwrap_or(&"?");
        format!("{journal}/{sync}")
    };
    let until = (
        (!config.bench).then_some(8),
        Duration::from_secs_f64(config.secs),
    );
    let barrier = Barrier::new(config.writers + 1);
    let (tally, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..config.writers)
            .map(|w| {
                let (path, barrier) = (&path, &barrier);
                s.spawn(move || writer(design, path, pool, w as u64 + 1, until, barrier))
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut total = Tally::default();
        for h in handles {
            total.merge(h.join().expect("writer thread"));
        }
        (total, t0.elapsed())
    });
    let check = SqliteStore::open(&path).expect("open");
    let rows = query(&check, "SELECT count(*) FROM clicks")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    Outcome {
        mode,
        elapsed,
        tally,
        rows,
    }
}

fn main() {
    let config = Config::from_env_and_args();
    let pool = pool(512);
    let selected: Vec<&Design> = DESIGNS
        .iter()
        .filter(|d| {
            let only = config.only.as_ref();
            only.is_none_or(|o| o.iter().any(|n| n.eq_ignore_ascii_case(d.name)))
        })
        .collect();
    if config.bench {
        println!(
            "click_write: {} writers (one instance each), {} s per design, SQLite {}",
            config.writers,
            config.secs,
            rusqlite::version()
        );
        println!(
            "Latency = one click write as the instance sees it (A: open + INSERT + close); \
             clicks/s = acknowledged / time until the last writer returned; \
             per writer = fewest-most clicks one writer got through (lock fairness)."
        );
    } else {
        println!(
            "click_write smoke: {} writers x 8 clicks per design (run `cargo bench --bench click_write` for figures)",
            config.writers
        );
    }
    for d in &selected {
        println!("  {:<11} {}", d.name, d.what);
    }
    println!();
    println!(
        "{:<11} {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "design",
        "journal/sync",
        "clicks/s",
        "p50",
        "p99",
        "max",
        "acked",
        "rows",
        "busy/other",
        "per writer"
    );
    println!("{}", "-".repeat(112));
    for design in selected {
        let mut o = run(design, &config, &pool);
        let t = &mut o.tally;
        t.latencies.sort_unstable();
        let rate = t.acked as f64 / o.elapsed.as_secs_f64().max(1e-9);
        let least = t.per_writer.iter().min().copied().unwrap_or(0);
        let most = t.per_writer.iter().max().copied().unwrap_or(0);
        println!(
            "{:<11} {:<13} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}",
            design.name,
            o.mode,
            rate,
            fmt_duration(percentile(&t.latencies, 0.50)),
            fmt_duration(percentile(&t.latencies, 0.99)),
            fmt_duration(t.latencies.last().copied().unwrap_or_default()),
            t.acked,
            o.rows,
            format!("{}/{}", t.busy, t.other),
            format!("{least}-{most}"),
        );
        if let Some(e) = &t.first_error {
            println!("  {}: first error: {e}", design.name);
        }
    }
}
