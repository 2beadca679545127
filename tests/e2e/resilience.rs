//! Hostile metadata and failing stores under a real `spin up`.
//!
//! * A client-sent `spin-client-addr` does not choose the visitor.
//! * A click database locked by another process (`BEGIN EXCLUSIVE` from
//!   python3's sqlite3): redirects are still served within the busy timeout,
//!   their clicks counted as unrecorded, `/health` is 503 naming SQLite, and
//!   clicks record again once the lock is released.
//! * Redis stopped and restarted mid-run: redirects answer 503 naming the
//!   link store within the key-value timeout, `/health` names it, and
//!   everything recovers without a restart.
//! * Redis down when the instances start: the failed open is not kept, so
//!   the app recovers when Redis comes up.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};

use crate::ensure;
use crate::harness::{
    CHROME, GOOGLEBOT, Redis, SpinApp, SpinBuilder, trial, wait_for_port, write_runtime_config,
};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "five_forged_client_addresses_count_as_one_visitor",
            five_forged_client_addresses_count_as_one_visitor,
        ),
        trial(
            "a_locked_click_database_still_redirects_within_the_bound_and_counts_unrecorded_clicks",
            a_locked_click_database_still_redirects_within_the_bound_and_counts_unrecorded_clicks,
        ),
        trial(
            "redis_stopped_and_restarted_mid_run_gives_503_then_recovers_without_a_restart",
            redis_stopped_and_restarted_mid_run_gives_503_then_recovers_without_a_restart,
        ),
        trial(
            "a_store_that_failed_to_open_is_opened_again_by_a_later_request",
            a_store_that_failed_to_open_is_opened_again_by_a_later_request,
        ),
    ]
}

fn follow(spin: &SpinApp, slug: &str, user_agent: &str) -> (u16, Duration, Value) {
    let started = Instant::now();
    let r = spin.request(
        "GET",
        &format!("/{slug}"),
        &[("User-Agent", user_agent)],
        None,
    );
    (r.status, started.elapsed(), r.json())
}

fn five_forged_client_addresses_count_as_one_visitor() -> Result<(), Failed> {
    let spin = SpinApp::up();
    spin.create(json!({"url": "https://example.com/r", "slug": "forged"}))?;
    for i in 1..=5 {
        let forged = format!("10.9.8.{i}:4242");
        let r = spin.request(
            "GET",
            "/forged",
            &[("User-Agent", CHROME), ("spin-client-addr", &forged)],
            None,
        );
        ensure!(r.status == 302, "redirect {i}: {}", r.status);
    }
    let stats = spin.api("GET", "/api/links/forged/stats", None).json();
    ensure!(stats["total"] == 5, "five clicks: {stats}");
    ensure!(
        stats["unique_visitors"] == 1,
        "one visitor behind five forged addresses: {stats}"
    );
    Ok(())
}

/// A python3 process holding `BEGIN EXCLUSIVE` on a SQLite file until told
/// to roll back (a backup tool or an operator's shell would do the same).
struct Locker {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Locker {
    fn lock(db: &Path) -> Result<Locker, Failed> {
        let script = "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             sys.stdin.readline()\n\
             c.execute('ROLLBACK')\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3 runs: {e}"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        ensure!(line.trim() == "locked", "python3 took the lock: {line:?}");
        let stdin = child.stdin.take();
        Ok(Locker { child, stdin })
    }

    fn release(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn a_locked_click_database_still_redirects_within_the_bound_and_counts_unrecorded_clicks()
-> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("clicks.db");
    let rc = write_runtime_config(dir.path(), None, &db);
    let spin = SpinBuilder::default().runtime_config(rc).start();
    spin.create(json!({"url": "https://example.com/r", "slug": "locked"}))?;
    for _ in 0..2 {
        ensure!(
            follow(&spin, "locked", CHROME).0 == 302,
            "recorded redirect"
        );
    }

    let locker = Locker::lock(&db)?;
    let mut waits = Vec::new();
    for ua in [CHROME, CHROME, CHROME, GOOGLEBOT] {
        let (status, waited, _) = follow(&spin, "locked", ua);
        ensure!(
            status == 302,
            "a locked click store still redirects: {status}"
        );
        waits.push(waited);
    }
    eprintln!("redirect waits with the click database locked (busy timeout 500 ms): {waits:?}");
    // Spin's own busy timeout is 5 s: a wait well under it is the pragma's.
    ensure!(
        waits.iter().all(|w| *w < Duration::from_millis(2_500)),
        "each redirect waits about the 500 ms busy timeout, not Spin's 5 s: {waits:?}"
    );
    let health = spin.get("/health");
    ensure!(
        health.status == 503,
        "health while locked: {}",
        health.status
    );
    ensure!(
        health.json()["checks"]["sqlite"] == "error" && health.json()["checks"]["kv"] == "ok",
        "health names SQLite: {}",
        health.body
    );
    // Reads still work in WAL mode: the link shows what was lost.
    let link = spin.api("GET", "/api/links/locked", None).json();
    ensure!(link["clicks"] == 2, "recorded before the lock: {link}");
    ensure!(
        link["unrecorded_clicks"] == json!({"human": 3, "bot": 1}),
        "unrecorded while locked: {link}"
    );
    let metrics = spin.get("/metrics").body;
    ensure!(
        metrics.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 3")
            && metrics.contains("shortener_clicks_unrecorded_total{kind=\"bot\"} 1"),
        "the counter reaches /metrics: {metrics}"
    );

    locker.release();
    for _ in 0..3 {
        ensure!(
            follow(&spin, "locked", CHROME).0 == 302,
            "redirect after release"
        );
    }
    let link = spin.api("GET", "/api/links/locked", None).json();
    ensure!(link["clicks"] == 5, "clicks record again: {link}");
    ensure!(
        link["unrecorded_clicks"] == json!({"human": 3, "bot": 1}),
        "served 9 = recorded 5 + unrecorded 4: {link}"
    );
    let health = spin.get("/health");
    ensure!(
        health.status == 200,
        "health after release: {}",
        health.body
    );
    Ok(())
}

fn redis_stopped_and_restarted_mid_run_gives_503_then_recovers_without_a_restart()
-> Result<(), Failed> {
    let mut redis = Redis::start();
    let dir = tempfile::tempdir()?;
    let rc = write_runtime_config(
        dir.path(),
        Some(&redis.url()),
        &dir.path().join("clicks.db"),
    );
    let spin = SpinBuilder::default().runtime_config(rc).start();
    spin.create(json!({"url": "https://example.com/r", "slug": "redis-link"}))?;
    ensure!(
        follow(&spin, "redis-link", CHROME).0 == 302,
        "redirect with Redis up"
    );

    // Keep the data across the restart (the harness's Redis has no
    // persistence of its own).
    redis.cli(&["SAVE"]);
    redis.stop();
    let mut waits = Vec::new();
    for _ in 0..3 {
        let (status, waited, body) = follow(&spin, "redis-link", CHROME);
        ensure!(status == 503, "Redis down: {status} {body}");
        ensure!(
            body["error"]["code"] == "store_unavailable"
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("link store (key-value)")),
            "a clear error body: {body}"
        );
        waits.push(waited);
    }
    eprintln!("redirect waits with Redis down (kv timeout 1000 ms): {waits:?}");
    ensure!(
        waits.iter().all(|w| *w < Duration::from_secs(5)),
        "bounded by the key-value timeout: {waits:?}"
    );
    let health = spin.get("/health");
    ensure!(
        health.status == 503 && health.json()["checks"]["kv"] == "error",
        "health names the key-value store: {}",
        health.body
    );

    redis.restart();
    let restarted = Instant::now();
    let recovered = wait_until(Duration::from_secs(300), || {
        follow(&spin, "redis-link", CHROME).0 == 302
    });
    eprintln!(
        "redirects recovered {:?} after Redis restarted",
        restarted.elapsed()
    );
    ensure!(recovered, "redirects recover without a restart");
    ensure!(
        wait_until(Duration::from_secs(30), || spin.get("/health").status
            == 200),
        "health recovers"
    );
    let link = spin.api("GET", "/api/links/redis-link", None).json();
    ensure!(
        link["clicks"].as_i64() >= Some(2),
        "clicks recorded again: {link}"
    );
    Ok(())
}

fn a_store_that_failed_to_open_is_opened_again_by_a_later_request() -> Result<(), Failed> {
    let mut redis = Redis::start();
    redis.stop();
    let dir = tempfile::tempdir()?;
    let rc = write_runtime_config(
        dir.path(),
        Some(&redis.url()),
        &dir.path().join("clicks.db"),
    );
    // Long-lived instances: a broken store kept for an instance's life would
    // outlast this test.
    let spin = SpinBuilder::default()
        .runtime_config(rc)
        .args(&["--max-instance-reuse-count", "100000"])
        .spawn();
    ensure!(
        wait_for_port(spin.port, Duration::from_secs(60)),
        "spin up listens"
    );
    let down = wait_until(Duration::from_secs(30), || {
        crate::harness::try_request(&spin.base(), "GET", "/health", &[], None)
            .is_ok_and(|r| r.status == 503)
    });
    ensure!(
        down,
        "health is 503 while Redis is down: {}",
        spin.log_text()
    );
    for _ in 0..5 {
        ensure!(spin.get("/health").status == 503, "still down");
    }

    redis.restart();
    let started = Instant::now();
    ensure!(
        wait_until(Duration::from_secs(120), || spin.get("/health").status
            == 200),
        "health recovers once Redis is up"
    );
    eprintln!("recovered {:?} after Redis started", started.elapsed());
    spin.create(json!({"url": "https://example.com/r", "slug": "late"}))?;
    ensure!(follow(&spin, "late", CHROME).0 == 302, "redirects work");
    Ok(())
}

fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
