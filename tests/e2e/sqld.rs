//! Scale out on a networked click database: three `spin up` replicas on the
//! committed `deploy/app/runtime.libsql.toml` (links in one Redis, clicks in
//! one real sqld, each replica's outbox in its own local file) with
//! `click_outbox = "true"`, behind a real Caddy with the committed
//! load-balancing settings.
//!
//! The runtime config is the committed file with only its two `url`s and
//! its `path` replaced, so these trials track what operators run.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::drive::{Oha, OhaRun};
use crate::ensure;
use crate::harness::{
    CHROME, Caddy, GOOGLEBOT, Redis, SpinApp, SpinBuilder, Sqld, free_port, no_otel, root, trial,
    try_request,
};
use crate::scale::{
    api, caddyfile, cpu_by_command, cpu_delta, create, kill_servers, replica_builder, run_load,
    wait_all_healthy,
};

pub fn trials() -> Vec<Trial> {
    let mut trials = vec![
        trial(
            "three_replicas_on_one_empty_sqld_race_their_migrations_and_every_click_reaches_it_once_per_link_and_kind",
            three_replicas_on_one_empty_sqld_race_their_migrations_and_every_click_reaches_it_once_per_link_and_kind,
        ),
        trial(
            "a_frozen_sqld_that_accepts_and_never_answers_holds_no_shipping_redirect_past_click_db_timeout_ms",
            a_frozen_sqld_that_accepts_and_never_answers_holds_no_shipping_redirect_past_click_db_timeout_ms,
        ),
    ];
    // The outbox does not depend on the build's telemetry: the two long
    // trials (a 60 s outage, the throughput table) run once, with the
    // default build, to keep CI's two e2e runs short.
    if !no_otel() {
        trials.push(trial(
            "an_sqld_outage_under_load_serves_every_redirect_and_every_click_reaches_sqld_exactly_once_after_it_returns",
            an_sqld_outage_under_load_serves_every_redirect_and_every_click_reaches_sqld_exactly_once_after_it_returns,
        ));
        trials.push(trial(
            "throughput_of_three_replicas_on_sqld_against_one_replica_on_local_sqlite_is_printed",
            throughput_of_three_replicas_on_sqld_against_one_replica_on_local_sqlite_is_printed,
        ));
    }
    trials
}

/// Replica `i`'s copy of the committed runtime config: Redis and sqld at
/// the given URLs, its outbox database in `dir`.
fn libsql_runtime_config(dir: &Path, i: usize, redis_url: &str, sqld_url: &str) -> PathBuf {
    let source = root().join("deploy/app/runtime.libsql.toml");
    let text = std::fs::read_to_string(&source).expect("deploy/app/runtime.libsql.toml");
    let local = dir.join(format!("replica-{i}"));
    std::fs::create_dir_all(&local).unwrap();
    let (mut redis, mut sqld, mut paths) = (0, 0, 0);
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("url = \"redis://") {
                redis += 1;
                format!("url = \"{redis_url}\"")
            } else if line.starts_with("url = \"http") {
                sqld += 1;
                format!("url = \"{sqld_url}\"")
            } else if line.starts_with("path = ") {
                paths += 1;
                format!("path = \"{}\"", local.join("unrecorded.db").display())
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(
        (redis, sqld, paths),
        (1, 1, 1),
        "runtime.libsql.toml must have one Redis `url`, one sqld `url` and one `path` (the replica's local database)"
    );
    let config = lines.join("\n");
    assert!(config.contains("type = \"libsql\""), "clicks are in sqld");
    let path = local.join("runtime.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Replicas on one sqld and one Redis, Caddy in front; stopped on drop.
struct SqldCluster {
    replicas: Vec<SpinApp>,
    caddy: Option<Caddy>,
    proxy_port: u16,
    sqld: Sqld,
    _redis: Redis,
    dir: tempfile::TempDir,
}

impl Drop for SqldCluster {
    fn drop(&mut self) {
        self.caddy.take();
        kill_servers(&self.replicas);
    }
}

impl SqldCluster {
    /// Starts `n` replicas at once on an empty sqld and waits until every
    /// one is healthy (their first requests race through the migrations).
    fn start(n: usize) -> SqldCluster {
        SqldCluster::start_with(n, &[])
    }

    /// The same, each replica with these extra Spin variables.
    fn start_with(n: usize, variables: &[(&str, &str)]) -> SqldCluster {
        let dir = tempfile::tempdir().unwrap();
        let redis = Redis::start();
        let sqld = Sqld::start();
        let replicas: Vec<SpinApp> = (0..n)
            .map(|i| {
                let config = libsql_runtime_config(dir.path(), i, &redis.url(), &sqld.url());
                let mut builder =
                    replica_builder(&config, dir.path(), i).variable("click_outbox", "true");
                for (name, value) in variables {
                    builder = builder.variable(name, value);
                }
                builder.spawn()
            })
            .collect();
        wait_all_healthy(&replicas);
        let proxy_port = free_port();
        let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
        let caddy = Caddy::start(&caddyfile(proxy_port, &ports), proxy_port);
        thread::sleep(Duration::from_millis(500));
        SqldCluster {
            replicas,
            caddy: Some(caddy),
            proxy_port,
            sqld,
            _redis: redis,
            dir,
        }
    }

    fn proxy(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// Scrapes every replica's `/metrics` directly, which ships its outbox,
    /// until every outbox is empty (or `within` passes).
    fn drain(&self, within: Duration) -> Result<(), Failed> {
        let deadline = Instant::now() + within;
        loop {
            let mut waiting = 0;
            for replica in &self.replicas {
                let _ = try_request(&replica.base(), "GET", "/metrics", &[], None);
                waiting += self.outboxed(replica)?;
            }
            if waiting == 0 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{waiting} clicks still in the replicas' outboxes after {within:?}; the replicas logged:\n{}",
                self.log_lines().join("\n")
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last distinct lines the replicas' components logged (Spin keeps
    /// component stdio under `<state-dir>/logs/`).
    fn log_lines(&self) -> Vec<String> {
        let mut lines = std::collections::BTreeSet::new();
        for replica in &self.replicas {
            let logs = replica.state_dir.join("logs");
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for line in text.lines().rev().take(20) {
                    lines.insert(line.chars().take(300).collect::<String>());
                }
            }
        }
        lines.into_iter().collect()
    }

    /// Clicks in `replica`'s outbox (its local database file).
    fn outboxed(&self, replica: &SpinApp) -> Result<i64, Failed> {
        let i = self
            .replicas
            .iter()
            .position(|r| r.port == replica.port)
            .unwrap();
        let file = self
            .dir
            .path()
            .join(format!("replica-{i}"))
            .join("unrecorded.db");
        let conn = rusqlite::Connection::open(&file)
            .map_err(|e| format!("open {}: {e}", file.display()))?;
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .map_err(|e| format!("{}: {e}", file.display()).into())
    }

    /// Clicks in sqld: (all, distinct origins, humans, bots) of `slug`.
    fn clicks_in_sqld(&self, slug: &str) -> Result<(i64, i64, i64, i64), Failed> {
        let q = |sql: String| self.sqld.scalar(&sql).map_err(Failed::from);
        Ok((
            q(format!("SELECT count(*) FROM clicks WHERE slug = '{slug}'"))?,
            q(format!(
                "SELECT count(DISTINCT origin || ':' || origin_seq) FROM clicks WHERE slug = '{slug}'"
            ))?,
            q(format!(
                "SELECT count(*) FROM clicks WHERE slug = '{slug}' AND is_bot = 0"
            ))?,
            q(format!(
                "SELECT count(*) FROM clicks WHERE slug = '{slug}' AND is_bot = 1"
            ))?,
        ))
    }

    /// Checks that `slug` has exactly `humans` and `bots` clicks: in sqld's
    /// raw rows (each origin once) and in its stats through Caddy.
    fn reconcile(&self, slug: &str, humans: u64, bots: u64) -> Result<(), Failed> {
        let (all, distinct, raw_humans, raw_bots) = self.clicks_in_sqld(slug)?;
        ensure!(
            all == distinct,
            "{slug}: {all} click rows in sqld for {distinct} origins"
        );
        ensure!(
            (raw_humans, raw_bots) == (humans as i64, bots as i64),
            "{slug}: sqld has {raw_humans} human and {raw_bots} bot clicks; {humans} and {bots} were served"
        );
        // A read bounded by `click_db_timeout_ms` may answer 503 (try again)
        // on a loaded machine: retried as its `Retry-After` says, a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (status, stats) = loop {
            let (status, stats) = api(
                &self.proxy(),
                "GET",
                &format!("/api/links/{slug}/stats"),
                None,
            )?;
            if status != 503 || Instant::now() > deadline {
                break (status, stats);
            }
            eprintln!("stats of {slug}: 503 {stats}; retried in 1 s");
            thread::sleep(Duration::from_secs(1));
        };
        ensure!(
            status == 200,
            "stats of {slug}: {status} {stats}; the replicas logged:\n{}",
            self.log_lines().join("\n")
        );
        ensure!(
            stats["humans"] == humans && stats["bots"] == bots,
            "{slug}: stats say {} humans and {} bots; {humans} and {bots} were served",
            stats["humans"],
            stats["bots"]
        );
        Ok(())
    }
}

fn visitors(urls: Vec<String>, requests: u64, connections: u32, agent: &str) -> Oha {
    Oha::new(urls, requests, connections).header("User-Agent", agent)
}

fn three_replicas_on_one_empty_sqld_race_their_migrations_and_every_click_reaches_it_once_per_link_and_kind()
-> Result<(), Failed> {
    let cluster = SqldCluster::start(3);
    // The race ended in one schema, each version recorded once.
    let versions = cluster
        .sqld
        .query("SELECT version FROM schema_migrations ORDER BY version")?;
    let versions: Vec<String> = versions
        .iter()
        .map(|row| row[0]["value"].as_str().unwrap_or_default().to_owned())
        .collect();
    let latest = versions.len().to_string();
    ensure!(
        versions.last() == Some(&latest)
            && versions
                .windows(2)
                .all(|w| w[0].parse::<i64>().ok() < w[1].parse().ok()),
        "schema_migrations after the race: {versions:?}"
    );

    let slugs = ["sqld-a", "sqld-b", "sqld-c"];
    for slug in slugs {
        create(&cluster.proxy(), slug)?;
    }
    let urls = |weights: &[usize]| -> Vec<String> {
        slugs
            .iter()
            .zip(weights)
            .flat_map(|(slug, w)| vec![format!("{}/{slug}", cluster.proxy()); *w])
            .collect()
    };
    let (humans, bots) = thread::scope(|s| {
        let humans = s.spawn(|| visitors(urls(&[5, 3, 1]), 3000, 24, CHROME).run());
        let bots = s.spawn(|| visitors(urls(&[1, 1, 2]), 600, 8, GOOGLEBOT).run());
        (humans.join().unwrap(), bots.join().unwrap())
    });
    for run in [&humans, &bots] {
        ensure!(
            run.not(302) == 0,
            "every redirect is a 302: {:?} {:?}",
            run.statuses,
            run.errors
        );
    }
    cluster.drain(Duration::from_secs(30))?;
    for slug in slugs {
        let path = format!("/{slug}");
        cluster.reconcile(slug, humans.count(&path, 302), bots.count(&path, 302))?;
    }
    Ok(())
}

fn an_sqld_outage_under_load_serves_every_redirect_and_every_click_reaches_sqld_exactly_once_after_it_returns()
-> Result<(), Failed> {
    let outage = Duration::from_secs(
        std::env::var("SHORTENER_SQLD_OUTAGE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let rate = 150;
    let mut cluster = SqldCluster::start(3);
    create(&cluster.proxy(), "sqld-outage")?;
    let url = format!("{}/sqld-outage", cluster.proxy());

    // Before: the latency of the same load with sqld up.
    let before = visitors(vec![url.clone()], u64::from(rate) * 10, 16, CHROME)
        .rate(rate)
        .run();
    let total = u64::from(rate) * (outage.as_secs() + 20);
    let load = visitors(vec![url.clone()], total, 16, CHROME)
        .rate(rate)
        .spawn();
    thread::sleep(Duration::from_secs(5));
    cluster.sqld.stop();
    let stopped = Instant::now();
    thread::sleep(outage / 2);
    // Mid-outage: every replica serves, degraded, its backlog growing.
    for replica in &cluster.replicas {
        let health = try_request(&replica.base(), "GET", "/health", &[], None)?;
        let body: Value = health.json();
        ensure!(
            health.status == 200 && body["status"] == "degraded",
            "{}/health during the outage: {} {body}",
            replica.base(),
            health.status
        );
        ensure!(
            body["outbox"]["unshipped_clicks"].as_i64() > Some(0),
            "{}/health shows no backlog during the outage: {body}",
            replica.base()
        );
    }
    thread::sleep(outage.saturating_sub(stopped.elapsed()));
    cluster.sqld.restart();
    let during = load.wait();
    ensure!(
        during.not(302) == 0,
        "every redirect during the outage is a 302: {:?} {:?}",
        during.statuses,
        during.errors
    );
    // What the load's own due redirects left after sqld's return; one
    // scrape of each replica ships the rest.
    let mut waiting = 0;
    for replica in &cluster.replicas {
        waiting += cluster.outboxed(replica)?;
    }
    let scraped = Instant::now();
    cluster.drain(Duration::from_secs(60))?;
    eprintln!(
        "sqld outage of {}s under {rate} redirects/s through Caddy to 3 replicas: {} redirects, all 302; \
         p99 {:.1} ms and slowest {:.1} ms (sqld up, same load: p99 {:.1} ms, slowest {:.1} ms); \
         {waiting} clicks still waiting {} s after sqld returned, shipped by one scrape per replica in {:.2} s",
        outage.as_secs(),
        during.total(302),
        during.p99_ms,
        during.slowest_ms,
        before.p99_ms,
        before.slowest_ms,
        (total / u64::from(rate)).saturating_sub(5 + outage.as_secs()),
        scraped.elapsed().as_secs_f64()
    );
    let served = before.total(302) + during.total(302);
    cluster.reconcile("sqld-outage", served, 0)
}

fn a_frozen_sqld_that_accepts_and_never_answers_holds_no_shipping_redirect_past_click_db_timeout_ms()
-> Result<(), Failed> {
    let cluster = SqldCluster::start_with(1, &[("click_db_timeout_ms", "300")]);
    let base = cluster.replicas[0].base();
    create(&base, "sqld-frozen")?;
    cluster.sqld.freeze(true);
    // Two of these redirects ship (every 256th click): each waits at most
    // the bound for the frozen server, then answers. Without the bound they
    // would wait as long as sqld stays frozen (past oha's 60 s timeout).
    let run = visitors(vec![format!("{base}/sqld-frozen")], 600, 8, CHROME).run();
    cluster.sqld.freeze(false);
    ensure!(
        run.not(302) == 0,
        "every redirect while sqld is frozen is a 302: {:?} {:?}",
        run.statuses,
        run.errors
    );
    eprintln!(
        "sqld frozen, click_db_timeout_ms=300: 600 redirects, all 302, p99 {:.1} ms, slowest {:.1} ms",
        run.p99_ms, run.slowest_ms
    );
    cluster.drain(Duration::from_secs(30))?;
    cluster.reconcile("sqld-frozen", 600, 0)
}

fn throughput_of_three_replicas_on_sqld_against_one_replica_on_local_sqlite_is_printed()
-> Result<(), Failed> {
    let requests: u64 = std::env::var("SHORTENER_SCALE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let connections = 32;
    let rounds = 2;
    let local = SpinBuilder::default()
        .variable("trusted_proxy_hops", "1")
        .start();
    create(&local.base(), "bench")?;
    let local_proxy_port = free_port();
    let _local_caddy = Caddy::start(
        &caddyfile(local_proxy_port, &[local.port]),
        local_proxy_port,
    );
    let cluster = SqldCluster::start(3);
    create(&cluster.proxy(), "bench")?;
    let one_on_sqld = &cluster.replicas[0];
    // The sqld cluster's clicks: its warm-up and rounds, through Caddy and direct.
    let targets = [
        (
            "1 replica, local SQLite (direct)",
            format!("{}/bench", local.base()),
        ),
        (
            "1 replica, local SQLite (through Caddy)",
            format!("http://127.0.0.1:{local_proxy_port}/bench"),
        ),
        (
            "3 replicas on sqld, outbox (through Caddy)",
            format!("{}/bench", cluster.proxy()),
        ),
        (
            "1 of them on sqld, outbox (direct)",
            format!("{}/bench", one_on_sqld.base()),
        ),
    ];
    // The three replicas without a proxy: each request to one of them drawn
    // at random, as an L4 balancer (a Kubernetes Service) spreads them.
    let spread: Vec<String> = cluster
        .replicas
        .iter()
        .map(|r| format!("{}/bench", r.base()))
        .collect();
    for (_, url) in &targets {
        run_load(url, 500, 8); // warm-up
    }
    let spread_name = "3 replicas on sqld, outbox (spread, no proxy)";
    let mut table = vec![
        "setup | round | redirects/s | p99 ms | CPU s: spin / caddy / sqld / redis".to_owned(),
    ];
    let mut rps = vec![Vec::new(); targets.len() + 1];
    let mut p99 = vec![Vec::new(); targets.len() + 1];
    for round in 1..=rounds {
        let runs = targets
            .iter()
            .map(|(name, url)| (*name, vec![url.clone()]))
            .chain([(spread_name, spread.clone())]);
        for (i, (name, urls)) in runs.enumerate() {
            let before = cpu_by_command();
            let run: OhaRun = Oha::new(urls, requests, connections)
                .header("User-Agent", CHROME)
                .run();
            let after = cpu_by_command();
            ensure!(
                run.not(302) == 0,
                "{name}: {:?} {:?}",
                run.statuses,
                run.errors
            );
            rps[i].push(run.rps);
            p99[i].push(run.p99_ms);
            table.push(format!(
                "{name} | {round} | {:.0} | {:.1} | {:.2} / {:.2} / {:.2} / {:.2}",
                run.rps,
                run.p99_ms,
                cpu_delta(&before, &after, "spin"),
                cpu_delta(&before, &after, "caddy"),
                cpu_delta(&before, &after, "sqld"),
                cpu_delta(&before, &after, "redis-server"),
            ));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!(
        "sqld scale-out ({requests} requests × {rounds} interleaved rounds, {connections} connections, \
         {} cores, shared machine: expect noise):\n{}\n\
         3 replicas on sqld through Caddy / 1 on local SQLite: {:.2}× the throughput and {:.2}× the p99 \
         of the direct one, {:.2}× and {:.2}× of the one through Caddy; spread over the 3 without a proxy: \
         {:.2}× and {:.2}× of the direct one",
        thread::available_parallelism().map_or(0, |n| n.get()),
        table.join("\n"),
        mean(&rps[2]) / mean(&rps[0]),
        mean(&p99[2]) / mean(&p99[0]),
        mean(&rps[2]) / mean(&rps[1]),
        mean(&p99[2]) / mean(&p99[1]),
        mean(&rps[4]) / mean(&rps[0]),
        mean(&p99[4]) / mean(&p99[0]),
    );
    cluster.drain(Duration::from_secs(30))?;
    let served = 500 * 2 + requests * rounds * 3;
    let (all, distinct, _, _) = cluster.clicks_in_sqld("bench")?;
    ensure!(
        all == distinct && all == served as i64,
        "sqld has {all} clicks ({distinct} origins) of bench; {served} were served"
    );
    Ok(())
}
