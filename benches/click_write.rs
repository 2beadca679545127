//! The click write under concurrency, natively (issue 5).
//!
//! Models Spin's SQLite host: every writer thread is one Spin instance with
//! its own connection(s) to one database file (SQLite defaults, 5 s busy
//! timeout, exactly like `shortener::native::SqliteStore`), all writing
//! clicks at once, as ~32 instances do under `oha -c 32`. Each design runs the
//! same workload; the table shows clicks/s, latency per click write, rows
//! written against clicks attempted and acknowledged, errors, and whether the
//! trigger-maintained rollups still equal the raw rows.
//!
//! `cargo bench --bench click_write [-- --secs 5 --writers 32 --only A,C]`
//! (or `CLICK_WRITE_SECS`, `CLICK_WRITE_WRITERS`, `CLICK_WRITE_ONLY`,
//! `CLICK_WRITE_CLIENTS_PER_INSTANCE`). Without `--bench` (under
//! `cargo test --all-targets`) it runs a smoke version of a few dozen clicks
//! per design and fails only if a click was lost or a rollup is wrong.

mod common;

use common::{AGENTS, Rng, SALT};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use shortener::clicks::{self, Click, Visitor};
use shortener::links::Slug;
use shortener::migrations;
use shortener::native::SqliteStore;
use shortener::storage::{SqlValue, Statement, StoreError};
use time::OffsetDateTime;

// ------------------------------------------------------------------ config

struct Config {
    bench: bool,
    secs: f64,
    writers: usize,
    /// Smoke mode: clicks per writer instead of a duration.
    smoke_ops: usize,
    /// Design D: concurrent clients per instance.
    clients_per_instance: usize,
    only: Option<Vec<String>>,
}

impl Config {
    fn from_env_and_args() -> Self {
        let args = common::Args::parse();
        let bench = args.bench;
        let secs = args.get("--secs", "CLICK_WRITE_SECS", 5.0, 5.0);
        let writers: usize = args.get("--writers", "CLICK_WRITE_WRITERS", 32, 4);
        let clients_per_instance: usize = args
            .get(
                "--clients-per-instance",
                "CLICK_WRITE_CLIENTS_PER_INSTANCE",
                4,
                2,
            )
            .max(1);
        let only = args
            .raw("--only", "CLICK_WRITE_ONLY")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        Self {
            bench,
            secs,
            writers: writers.max(1),
            smoke_ops: 8,
            clients_per_instance,
            only,
        }
    }
}

// ------------------------------------------------------------------ designs

#[derive(Clone, Copy, PartialEq, Eq)]
enum Journal {
    /// The schema created without touching `journal_mode` (stays `delete`).
    Rollback,
    /// The schema created by `migrations::run` (WAL persists in the file).
    Wal,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Connections {
    /// `Connection::open` for every click (Spin's `Connection::open` per request).
    PerClick,
    /// One connection per instance, opened once before the run.
    PerInstance,
    /// One connection per instance; the instance's clients' clicks that
    /// arrive within 1 ms go in one multi-row INSERT.
    GroupCommit,
}

/// What an instance does to a freshly opened connection.
type Prepare = fn(&SqliteStore) -> Result<(), StoreError>;

struct Design {
    name: &'static str,
    what: &'static str,
    journal: Journal,
    connections: Connections,
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

fn sqlite_defaults(_: &SqliteStore) -> Result<(), StoreError> {
    Ok(())
}

fn core_pragmas(store: &SqliteStore) -> Result<(), StoreError> {
    for p in &migrations::PRAGMAS {
        store.execute_blocking(p, vec![])?;
    }
    Ok(())
}

/// What the component does once per instance: pragmas + pending migrations.
fn core_migrate(store: &SqliteStore) -> Result<(), StoreError> {
    block_on(migrations::run(store, now_unix())).map(drop)
}

fn core_migrate_full(store: &SqliteStore) -> Result<(), StoreError> {
    core_migrate(store)?;
    pragma(store, "PRAGMA synchronous=FULL")
}

fn normal_only(store: &SqliteStore) -> Result<(), StoreError> {
    pragma(store, "PRAGMA synchronous=NORMAL")
}

fn designs() -> Vec<Design> {
    vec![
        Design {
            name: "A",
            what: "open per click, SQLite defaults (rollback journal, FULL)",
            journal: Journal::Rollback,
            connections: Connections::PerClick,
            prepare: sqlite_defaults,
        },
        Design {
            name: "A-wal",
            what: "open per click on a WAL file, synchronous default (FULL)",
            journal: Journal::Wal,
            connections: Connections::PerClick,
            prepare: sqlite_defaults,
        },
        Design {
            name: "B",
            what: "open per click, WAL + NORMAL pragmas per connection",
            journal: Journal::Wal,
            connections: Connections::PerClick,
            prepare: core_pragmas,
        },
        Design {
            name: "C",
            what: "ours: one connection per instance, migrations::run + clicks::record",
            journal: Journal::Wal,
            connections: Connections::PerInstance,
            prepare: core_migrate,
        },
        Design {
            name: "C-full",
            what: "C with synchronous=FULL",
            journal: Journal::Wal,
            connections: Connections::PerInstance,
            prepare: core_migrate_full,
        },
        Design {
            name: "C-rollback",
            what: "C with the rollback journal (synchronous=NORMAL)",
            journal: Journal::Rollback,
            connections: Connections::PerInstance,
            prepare: normal_only,
        },
        Design {
            name: "D",
            what: "C + group commit: multi-row INSERT of an instance's clicks within 1 ms",
            journal: Journal::Wal,
            connections: Connections::GroupCommit,
            prepare: core_migrate,
        },
    ]
}

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
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..size)
        .map(|_| {
            // Skewed: half the clicks go to the first link.
            let s = if rng.below(2) == 0 {
                0
            } else {
                rng.below(SLUGS.len())
            };
            let ua = AGENTS[rng.below(AGENTS.len())];
            let referer = REFERRERS[rng.below(REFERRERS.len())];
            let ip: IpAddr = format!("198.51.{}.{}", rng.below(4), rng.below(250))
                .parse()
                .expect("valid IP");
            Template {
                slug: Slug::parse(SLUGS[s]).expect("valid slug"),
                visitor: Visitor::classify(ua, referer),
                hash: clicks::visitor_hash(SALT, Some(ip), ua, &day),
            }
        })
        .collect()
}

// ------------------------------------------------------------------ helpers

/// Polls a future that never waits (every `SqliteStore` call is synchronous).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn select(sql: &'static str) -> Statement {
    Statement {
        sql,
        operation: "SELECT",
        table: "",
    }
}

fn scalar(store: &SqliteStore, sql: &'static str) -> i64 {
    store
        .execute_blocking(&select(sql), vec![])
        .expect("query runs")
        .scalar_i64()
}

fn text(store: &SqliteStore, sql: &'static str) -> String {
    let rows = store
        .execute_blocking(&select(sql), vec![])
        .expect("query runs");
    match rows.rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Text(t)) => t.clone(),
        Some(SqlValue::Integer(i)) => i.to_string(),
        _ => String::new(),
    }
}

/// Creates the schema and registers the links. `Wal`: exactly
/// `migrations::run`. `Rollback`: the same migration statements without the
/// pragmas, so the file keeps SQLite's default rollback journal.
fn create_database(path: &Path, journal: Journal) {
    let store = SqliteStore::open(path).expect("open");
    match journal {
        Journal::Wal => core_migrate(&store).expect("migrations run"),
        Journal::Rollback => {
            for migration in migrations::MIGRATIONS {
                for statement in migration.statements {
                    store.execute_blocking(statement, vec![]).expect("DDL runs");
                }
            }
        }
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

// ------------------------------------------------------------------- tally

#[derive(Default)]
struct Tally {
    attempted: u64,
    acked: u64,
    not_found: u64,
    busy: u64,
    other: u64,
    first_error: Option<String>,
    /// Microseconds per click write.
    latencies: Vec<u32>,
    batches: u64,
    /// Clicks attempted by each writer (fairness of the write lock).
    per_writer: Vec<u64>,
}

impl Tally {
    fn note(&mut self, result: Result<bool, StoreError>, elapsed: Duration) {
        self.attempted += 1;
        self.latencies
            .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        match result {
            Ok(true) => self.acked += 1,
            Ok(false) => self.not_found += 1,
            Err(e) => {
                if e.kind == "busy" {
                    self.busy += 1;
                } else {
                    self.other += 1;
                }
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.attempted += other.attempted;
        self.acked += other.acked;
        self.not_found += other.not_found;
        self.busy += other.busy;
        self.other += other.other;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
        self.batches += other.batches;
        if other.per_writer.is_empty() {
            self.per_writer.push(other.attempted);
        } else {
            self.per_writer.extend(other.per_writer);
        }
    }
}

/// When a writer stops: after `ops` clicks (smoke) or at `deadline`.
#[derive(Clone, Copy)]
struct Stop {
    ops: Option<usize>,
    deadline: Duration,
}

impl Stop {
    fn done(&self, start: Instant, done_ops: usize) -> bool {
        match self.ops {
            Some(n) => done_ops >= n,
            None => start.elapsed() >= self.deadline,
        }
    }
}

// ---------------------------------------------------------------- writers

fn click_for<'a>(t: &'a Template) -> Click<'a> {
    Click {
        slug: &t.slug,
        at: OffsetDateTime::now_utc(),
        visitor: &t.visitor,
        visitor_hash: t.hash.clone(),
    }
}

/// One instance with one client: designs A, B and C.
fn writer(
    design: &Design,
    path: &Path,
    pool: &[Template],
    seed: u64,
    stop: Stop,
    barrier: &Barrier,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed | 1);
    let instance = match design.connections {
        Connections::PerInstance => {
            let store = SqliteStore::open(path).expect("open");
            (design.prepare)(&store).expect("instance set up");
            Some(store)
        }
        _ => None,
    };
    barrier.wait();
    let start = Instant::now();
    while !stop.done(start, tally.attempted as usize) {
        let template = &pool[rng.below(pool.len())];
        let click = click_for(template);
        let t0 = Instant::now();
        let result = match &instance {
            Some(store) => block_on(clicks::record(store, &click)),
            // Open, prepare, write, close: all inside the timed region.
            None => SqliteStore::open(path).and_then(|store| {
                (design.prepare)(&store)?;
                block_on(clicks::record(&store, &click))
            }),
        };
        tally.note(result, t0.elapsed());
    }
    tally
}

type Reply = mpsc::Sender<Result<bool, StoreError>>;

/// A click's parameters, in `clicks::RECORD` order.
fn record_params(click: &Click<'_>) -> Vec<SqlValue> {
    let at_ms = i64::try_from(click.at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    vec![
        click.slug.as_str().into(),
        SqlValue::Integer(at_ms),
        clicks::utc_day(click.at).into(),
        click.visitor.referrer_host.clone().into(),
        click.visitor.browser.clone().into(),
        click.visitor.os.clone().into(),
        click.visitor.is_bot.into(),
        click.visitor_hash.clone().into(),
    ]
}

/// The multi-row form of `clicks::RECORD` for `n` clicks (the trigger still
/// fires once per row, so the rollups stay exact).
fn batch_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|r| {
            let p: Vec<String> = (1..=8).map(|c| format!("?{}", r * 8 + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO clicks (slug, at, day, referrer_host, browser, os, is_bot, visitor) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8 \
         FROM (VALUES {}) AS v WHERE EXISTS (SELECT 1 FROM links WHERE slug = v.column1) \
         RETURNING id",
        rows.join(", ")
    )
}

/// Design D's instance: one connection; waits up to 1 ms after a click for
/// more of its own clients' clicks (never longer than it takes for all of
/// them to be waiting), then writes them in one statement.
fn group_instance(
    design: &Design,
    path: &Path,
    clients: usize,
    rx: mpsc::Receiver<(Vec<SqlValue>, Reply)>,
    ready: &Barrier,
) -> u64 {
    let store = SqliteStore::open(path).expect("open");
    (design.prepare)(&store).expect("instance set up");
    ready.wait();
    let mut statements: HashMap<usize, &'static str> = HashMap::new();
    let mut batches = 0;
    while let Ok(first) = rx.recv() {
        let window = Instant::now() + Duration::from_millis(1);
        let mut batch = vec![first];
        while batch.len() < clients {
            let left = window.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let sql = *statements
            .entry(n)
            .or_insert_with(|| Box::leak(batch_sql(n).into_boxed_str()));
        let statement = Statement {
            sql,
            operation: "INSERT",
            table: "clicks",
        };
        let mut params = Vec::with_capacity(n * 8);
        let mut replies = Vec::with_capacity(n);
        for (p, reply) in batch {
            params.extend(p);
            replies.push(reply);
        }
        batches += 1;
        match store.execute_blocking(&statement, params) {
            // All links exist, so every row is written; RETURNING id cannot
            // say which click a missing row was, so only the count is exact.
            Ok(rows) => {
                for (i, reply) in replies.into_iter().enumerate() {
                    let _ = reply.send(Ok(i < rows.rows.len()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    batches
}

/// A client of a design-D instance: sends a click, waits for the commit.
fn group_client(
    tx: mpsc::Sender<(Vec<SqlValue>, Reply)>,
    pool: &[Template],
    seed: u64,
    stop: Stop,
    barrier: &Barrier,
) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed | 1);
    let (reply_tx, reply_rx) = mpsc::channel();
    barrier.wait();
    let start = Instant::now();
    while !stop.done(start, tally.attempted as usize) {
        let template = &pool[rng.below(pool.len())];
        let click = click_for(template);
        let t0 = Instant::now();
        tx.send((record_params(&click), reply_tx.clone()))
            .expect("instance alive");
        let result = reply_rx.recv().expect("instance replies");
        tally.note(result, t0.elapsed());
    }
    tally
}

// ------------------------------------------------------------------ a run

struct Outcome {
    name: &'static str,
    mode: String,
    elapsed: Duration,
    tally: Tally,
    rows: i64,
    rollups_ok: bool,
    rollup_detail: String,
    instances: usize,
}

fn run(design: &Design, config: &Config, pool: &Arc<Vec<Template>>) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("clicks.db");
    create_database(&path, design.journal);

    // What a connection of this design runs with.
    let mode = {
        let probe = SqliteStore::open(&path).expect("open");
        (design.prepare)(&probe).expect("prepare");
        let sync = match scalar(&probe, "PRAGMA synchronous") {
            0 => "OFF",
            1 => "NORMAL",
            2 => "FULL",
            _ => "EXTRA",
        };
        format!("{}/{}", text(&probe, "PRAGMA journal_mode"), sync)
    };

    let stop = Stop {
        ops: (!config.bench).then_some(config.smoke_ops),
        deadline: Duration::from_secs_f64(config.secs),
    };
    let writers = config.writers;
    let mut tally = Tally::default();
    let mut instances = writers;
    let elapsed;
    if design.connections == Connections::GroupCommit {
        let per = config.clients_per_instance.min(writers);
        instances = writers.div_ceil(per);
        let barrier = Barrier::new(writers + 1);
        let ready = Barrier::new(instances + 1);
        let (clients_done, batches) = std::thread::scope(|s| {
            let mut instance_handles = Vec::new();
            let mut client_handles = Vec::new();
            for i in 0..instances {
                let (tx, rx) = mpsc::channel();
                let clients = per.min(writers - i * per);
                let (path, ready) = (&path, &ready);
                instance_handles
                    .push(s.spawn(move || group_instance(design, path, clients, rx, ready)));
                for c in 0..clients {
                    let tx = tx.clone();
                    let (pool, barrier) = (pool.as_slice(), &barrier);
                    let seed = (i * per + c + 1) as u64 * 7919;
                    client_handles
                        .push(s.spawn(move || group_client(tx, pool, seed, stop, barrier)));
                }
            }
            ready.wait();
            barrier.wait();
            let t0 = Instant::now();
            let mut total = Tally::default();
            for h in client_handles {
                total.merge(h.join().expect("client thread"));
            }
            let elapsed = t0.elapsed();
            let batches: u64 = instance_handles
                .into_iter()
                .map(|h| h.join().expect("instance thread"))
                .sum();
            ((total, elapsed), batches)
        });
        let (t, run_time) = clients_done;
        tally.merge(t);
        tally.batches = batches;
        elapsed = run_time;
    } else {
        let barrier = Barrier::new(writers + 1);
        let (t, run_time) = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let (path, pool, barrier) = (&path, pool.as_slice(), &barrier);
                    let seed = (w + 1) as u64 * 7919;
                    s.spawn(move || writer(design, path, pool, seed, stop, barrier))
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
        tally.merge(t);
        elapsed = run_time;
    }

    // Rows written, and the rollups against the raw rows.
    let check = SqliteStore::open(&path).expect("open");
    let rows = scalar(&check, "SELECT count(*) FROM clicks");
    let daily = scalar(&check, "SELECT coalesce(sum(clicks), 0) FROM daily_clicks");
    let humans = scalar(&check, "SELECT coalesce(sum(humans), 0) FROM daily_clicks");
    let raw_humans = scalar(&check, "SELECT coalesce(sum(1 - is_bot), 0) FROM clicks");
    let visitors = scalar(
        &check,
        "SELECT coalesce(sum(visitors), 0) FROM daily_clicks",
    );
    let raw_visitors = scalar(
        &check,
        "SELECT count(*) FROM (SELECT DISTINCT slug, day, visitor FROM clicks)",
    );
    let dims = check
        .execute_blocking(
            &select("SELECT dimension, sum(clicks) FROM daily_dimensions GROUP BY dimension"),
            vec![],
        )
        .expect("query runs");
    let dims_ok = dims.rows.len() == 3
        && dims
            .rows
            .iter()
            .all(|r| r.get(1).and_then(SqlValue::as_i64) == Some(rows));
    let rollups_ok = daily == rows && humans == raw_humans && visitors == raw_visitors && dims_ok;
    let rollup_detail = format!(
        "daily {daily} / raw {rows}, humans {humans}/{raw_humans}, visitors {visitors}/{raw_visitors}, dimensions {}",
        if dims_ok { "ok" } else { "MISMATCH" }
    );
    Outcome {
        name: design.name,
        mode,
        elapsed,
        tally,
        rows,
        rollups_ok,
        rollup_detail,
        instances,
    }
}

// ------------------------------------------------------------------ output

fn fmt_us(us: u32) -> String {
    let us = f64::from(us);
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn print_table(outcomes: &mut [Outcome], config: &Config) {
    println!();
    println!(
        "{:<11} {:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>13}  note",
        "design",
        "journal/sync",
        "clicks/s",
        "p50",
        "p99",
        "max",
        "attempted",
        "acked",
        "rows",
        "busy/other",
        "rollups",
        "per writer"
    );
    println!("{}", "-".repeat(142));
    for o in outcomes.iter_mut() {
        o.tally.latencies.sort_unstable();
        let l = &o.tally.latencies;
        let rate = o.tally.acked as f64 / o.elapsed.as_secs_f64().max(1e-9);
        let note = if o.tally.batches > 0 {
            format!(
                "{} instances x {} clients, {:.2} clicks/INSERT",
                o.instances,
                config.clients_per_instance.min(config.writers),
                o.tally.attempted as f64 / o.tally.batches as f64
            )
        } else {
            format!("{} instances", o.instances)
        };
        let least = o.tally.per_writer.iter().min().copied().unwrap_or(0);
        let most = o.tally.per_writer.iter().max().copied().unwrap_or(0);
        println!(
            "{:<11} {:<13} {:>9.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>13}  {}",
            o.name,
            o.mode,
            rate,
            fmt_us(percentile(l, 0.50)),
            fmt_us(percentile(l, 0.99)),
            fmt_us(l.last().copied().unwrap_or(0)),
            o.tally.attempted,
            o.tally.acked,
            o.rows,
            format!("{}/{}", o.tally.busy, o.tally.other),
            if o.rollups_ok { "= raw" } else { "WRONG" },
            format!("{least}-{most}"),
            note
        );
    }
    println!();
    for o in outcomes.iter() {
        if let Some(e) = &o.tally.first_error {
            println!("{}: first error: {e}", o.name);
        }
        if !o.rollups_ok {
            println!("{}: rollups: {}", o.name, o.rollup_detail);
        }
    }
}

fn main() {
    let config = Config::from_env_and_args();
    let pool = Arc::new(pool(512));
    let all = designs();
    let selected: Vec<&Design> = all
        .iter()
        .filter(|d| {
            config
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n.eq_ignore_ascii_case(d.name)))
        })
        .collect();
    if config.bench {
        println!(
            "click_write: {} writers (one instance each; D: {} clients per instance), {} s per design, SQLite {}",
            config.writers,
            config.clients_per_instance,
            config.secs,
            rusqlite::version()
        );
        println!(
            "Latency = one click write as the instance sees it (A/B: open + pragmas + INSERT + close); \
             clicks/s = acknowledged / time until the last writer returned; \
             per writer = fewest-most clicks one writer got through (lock fairness)."
        );
    } else {
        println!(
            "click_write smoke: {} writers x {} clicks per design (run `cargo bench --bench click_write` for figures)",
            config.writers, config.smoke_ops
        );
    }
    for d in &selected {
        println!("  {:<11} {}", d.name, d.what);
    }
    let mut outcomes = Vec::new();
    for design in &selected {
        outcomes.push(run(design, &config, &pool));
    }
    print_table(&mut outcomes, &config);

    if !config.bench {
        // Correctness only (never timing): every acknowledged click is a row,
        // the rollups equal the raw rows, and our design (C) loses nothing.
        // (A busy error in a strawman design is reported, not fatal.)
        let bad: Vec<&str> = outcomes
            .iter()
            .filter(|o| {
                !o.rollups_ok
                    || o.rows != o.tally.acked as i64
                    || (o.name == "C" && o.tally.acked != o.tally.attempted)
            })
            .map(|o| o.name)
            .collect();
        if !bad.is_empty() {
            eprintln!("click_write smoke: lost clicks or wrong rollups in {bad:?}");
            std::process::exit(1);
        }
    }
}
