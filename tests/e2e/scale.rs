//! Scale out on one host: several `spin up` processes on
//! `deploy/app/runtime.scale.toml` (links in one Redis, clicks in one SQLite
//! file) behind a real Caddy that load-balances them round robin with active
//! health checks on `/health`; and the rolling restart of
//! `deploy/README.md` (`deploy/drain.py` through the health gate of the
//! committed `deploy/caddy/Caddyfile.replicas`, replicas on 127.0.0.1–3).
//!
//! The runtime config is the committed file with only its Redis `url` and
//! SQLite `path` replaced, so these trials track what operators run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};

use crate::drive::{Oha, OhaRun};
use crate::ensure;
use crate::harness::{
    CHROME, Caddy, Redis, SpinApp, SpinBuilder, api_at, create_at, free_port, root, trial,
    try_request,
};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "three_replicas_started_at_once_on_one_empty_database_share_links_and_count_every_click",
            three_replicas_started_at_once_on_one_empty_database_share_links_and_count_every_click,
        ),
        trial(
            "killing_a_replica_under_load_loses_no_acknowledged_click_and_caddy_routes_around_it",
            killing_a_replica_under_load_loses_no_acknowledged_click_and_caddy_routes_around_it,
        ),
        trial(
            "a_rolling_restart_of_three_replicas_drained_through_caddys_health_gate_under_load_answers_every_request_302_and_counts_every_click",
            a_rolling_restart_of_three_replicas_drained_through_caddys_health_gate_under_load_answers_every_request_302_and_counts_every_click,
        ),
        trial(
            "a_rolling_restart_without_draining_loses_no_acknowledged_click_and_its_failures_are_printed",
            a_rolling_restart_without_draining_loses_no_acknowledged_click_and_its_failures_are_printed,
        ),
        trial(
            "throughput_of_one_two_and_three_replicas_is_printed",
            throughput_of_one_two_and_three_replicas_is_printed,
        ),
    ]
}

/// The committed runtime config with its Redis URL and SQLite path replaced.
fn scale_runtime_config(dir: &Path, redis_url: &str, db: &Path) -> PathBuf {
    let source = root().join("deploy/app/runtime.scale.toml");
    let text = std::fs::read_to_string(&source).expect("deploy/app/runtime.scale.toml");
    let (mut urls, mut paths) = (0, 0);
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("url = ") {
                urls += 1;
                format!("url = \"{redis_url}\"")
            } else if line.starts_with("path = ") {
                paths += 1;
                // clicks.db, and the unrecorded tally beside it.
                let file = if line.contains("unrecorded") {
                    db.with_file_name("unrecorded.db")
                } else {
                    db.to_path_buf()
                };
                format!("path = \"{}\"", file.display())
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_eq!(
        (urls, paths),
        (1, 2),
        "runtime.scale.toml must have exactly one `url = ` and two `path = ` lines (clicks, unrecorded)"
    );
    let config = lines.join("\n");
    assert!(config.contains("type = \"redis\""), "links are in Redis");
    let path = dir.join("runtime.scale.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The pids of the `spin trigger http` process serving `port` (what `spin up`
/// starts as its child; killing `spin up` alone would leave it serving).
fn server_pids(port: u16) -> Vec<u32> {
    let listen = format!(":{port}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "trigger")
            && args
                .iter()
                .any(|a| a.starts_with("127.") && a.ends_with(&listen))
        {
            pids.push(pid);
        }
    }
    pids
}

pub(crate) fn kill_server(port: u16) {
    for pid in server_pids(port) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Replicas, Redis and a Caddy in front of them; everything is stopped on drop.
struct Cluster {
    replicas: Vec<SpinApp>,
    caddy: Option<Caddy>,
    /// Caddy's port on 127.0.0.1.
    proxy_port: u16,
    /// The health gate of `Caddyfile.replicas`, when that is Caddy's config.
    gate: Option<Gate>,
    redis: Redis,
    db: PathBuf,
    /// The replicas' runtime config.
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.caddy.take();
        kill_servers(&self.replicas);
    }
}

/// Waits until every replica answers `/health`, asking all of them at once
/// (their first requests race through the migrations).
pub(crate) fn wait_all_healthy(replicas: &[SpinApp]) {
    thread::scope(|s| {
        for replica in replicas {
            s.spawn(|| replica.wait_healthy(Duration::from_secs(60)));
        }
    });
}

/// Kills the serving process of every replica (`spin up` alone would leave
/// them serving).
pub(crate) fn kill_servers(replicas: &[SpinApp]) {
    for replica in replicas {
        kill_server(replica.port);
    }
}

const CADDY_HEALTH_INTERVAL: &str = "200ms";

/// The Caddyfile: `ports` as static upstreams with active health checks on
/// `/health`, and the committed load-balancing settings of
/// `deploy/caddy/replicas.caddy` (the file `Caddyfile.scale` imports): round
/// robin, a failed dial retried on the next upstream, a request that reached
/// an upstream never replayed (deploy/README.md explains the trade-off).
pub(crate) fn caddyfile(listen: u16, ports: &[u16]) -> String {
    let upstreams: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let settings = crate::harness::root().join("deploy/caddy/replicas.caddy");
    format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n\n\
         http://127.0.0.1:{listen} {{\n\
         \treverse_proxy {} {{\n\
         \t\timport {}\n\
         \t\thealth_uri /health\n\
         \t\thealth_interval {CADDY_HEALTH_INTERVAL}\n\
         \t\thealth_timeout 5s\n\
         \t}}\n}}\n",
        upstreams.join(" "),
        settings.display()
    )
}

/// Where the rolling-restart cluster's Caddy listens besides the proxy.
struct Gate {
    /// The health gate's port (`health_port`).
    port: u16,
    /// Caddy's admin API on 127.0.0.1.
    admin: u16,
    /// The gate's drain directory.
    drain_dir: PathBuf,
}

/// The committed `deploy/caddy/Caddyfile.replicas` with only its addresses,
/// ports and paths replaced (and a 200 ms health interval): the replicas at
/// `addresses` (127.0.0.1, 127.0.0.2, 127.0.0.3).
fn gated_caddyfile(listen: u16, addresses: &[String], gate: &Gate) -> String {
    let text = std::fs::read_to_string(root().join("deploy/caddy/Caddyfile.replicas"))
        .expect("deploy/caddy/Caddyfile.replicas");
    let committed = [
        "127.0.0.1:3001".to_owned(),
        "127.0.0.2:3002".into(),
        "127.0.0.3:3003".into(),
    ];
    assert_eq!(addresses.len(), 3, "Caddyfile.replicas has three replicas");
    let mut out = text.clone();
    let mut replace = |from: &str, to: &str| {
        assert!(
            out.contains(from),
            "Caddyfile.replicas has no `{from}`: update gated_caddyfile"
        );
        out = out.replace(from, to);
    };
    replace(
        "admin 127.0.0.1:2019",
        &format!("admin 127.0.0.1:{}", gate.admin),
    );
    replace("\n:8080 {", &format!("\nhttp://127.0.0.1:{listen} {{"));
    replace(
        "import replicas.caddy",
        &format!(
            "import {}",
            root().join("deploy/caddy/replicas.caddy").display()
        ),
    );
    replace("health_port 3999", &format!("health_port {}", gate.port));
    replace("http://:3999 {", &format!("http://:{} {{", gate.port));
    replace(
        "health_interval 1s",
        &format!("health_interval {CADDY_HEALTH_INTERVAL}"),
    );
    replace(
        "root /var/lib/shortener/drain",
        &format!("root {}", gate.drain_dir.display()),
    );
    for (from, to) in committed.iter().zip(addresses) {
        replace(from, to);
    }
    out
}

/// How replica `i` of a cluster is started (its state dir under `dir`).
pub(crate) fn replica_builder(config: &Path, dir: &Path, i: usize) -> SpinBuilder {
    SpinBuilder::default()
        .runtime_config(config)
        .state_dir(dir.join(format!("state-{i}")))
        .variable("trusted_proxy_hops", "1")
}

impl Cluster {
    /// Starts `n` replicas at once on an empty database, waits until all are
    /// healthy (their first requests race through the migrations), then Caddy.
    fn start(n: usize) -> Cluster {
        Cluster::start_with(n, false)
    }

    /// The same; with `gated`, three replicas on 127.0.0.1, 127.0.0.2 and
    /// 127.0.0.3 behind `deploy/caddy/Caddyfile.replicas` (its health gate,
    /// its admin API on loopback).
    fn start_with(n: usize, gated: bool) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let redis = Redis::start();
        let db = dir.path().join("clicks.db");
        let config = scale_runtime_config(dir.path(), &redis.url(), &db);
        let replicas: Vec<SpinApp> = (0..n)
            .map(|i| {
                let builder = replica_builder(&config, dir.path(), i);
                if gated {
                    builder.host(&format!("127.0.0.{}", i + 1)).spawn()
                } else {
                    builder.spawn()
                }
            })
            .collect();
        // Every replica's first /health builds its router and runs the
        // migrations: all at once, on the same empty file.
        wait_all_healthy(&replicas);
        let proxy_port = free_port();
        let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
        let gate = gated.then(|| Gate {
            port: free_port(),
            admin: free_port(),
            drain_dir: dir.path().join("drain"),
        });
        let caddyfile = match &gate {
            Some(gate) => {
                let addresses: Vec<String> = replicas
                    .iter()
                    .map(|r| format!("{}:{}", r.host, r.port))
                    .collect();
                gated_caddyfile(proxy_port, &addresses, gate)
            }
            None => caddyfile(proxy_port, &ports),
        };
        let caddy = Caddy::start(&caddyfile, proxy_port);
        let cluster = Cluster {
            replicas,
            caddy: Some(caddy),
            proxy_port,
            gate,
            redis,
            db,
            config,
            dir,
        };
        // Wait until Caddy's first health checks passed for every upstream.
        thread::sleep(Duration::from_millis(500));
        cluster
    }

    /// Distinct error lines the replicas' components wrote (Spin keeps
    /// component stdio under `<state-dir>/logs/`).
    fn component_errors(&self) -> Vec<String> {
        let mut lines = std::collections::BTreeSet::new();
        for replica in &self.replicas {
            let logs = replica.state_dir.join("logs");
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for line in text.lines().filter(|l| l.contains("shortener:")) {
                    lines.insert(line.chars().take(300).collect::<String>());
                }
            }
        }
        lines.into_iter().take(10).collect()
    }

    fn proxy(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    fn proxy_url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy())
    }
}

/// An authorised API call to `base`: its status and JSON body.
pub(crate) fn api(
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), Failed> {
    let reply = api_at(base, method, path, body)?;
    Ok((reply.status, reply.json()))
}

fn redirect_status(base: &str, slug: &str) -> Result<u16, Failed> {
    Ok(try_request(
        base,
        "GET",
        &format!("/{slug}"),
        &[("User-Agent", CHROME)],
        None,
    )
    .map_err(|e| format!("GET {base}/{slug}: {e}"))?
    .status)
}

pub(crate) fn create(base: &str, slug: &str) -> Result<String, Failed> {
    create_at(
        base,
        json!({"url": format!("https://example.com/{slug}"), "slug": slug}),
    )
}

fn clicks(base: &str, slug: &str) -> Result<u64, Failed> {
    let (status, body) = api(base, "GET", &format!("/api/links/{slug}"), None)?;
    ensure!(status == 200, "get {slug}: {status} {body}");
    body["clicks"]
        .as_u64()
        .ok_or_else(|| format!("no clicks in {body}").into())
}

/// A bounded oha run (loopback, fixed request count) of a human visitor.
pub(crate) fn run_load(url: &str, requests: u64, connections: u32) -> OhaRun {
    load(url, requests, connections).run()
}

pub(crate) fn load(url: &str, requests: u64, connections: u32) -> Oha {
    Oha::new(vec![url.to_owned()], requests, connections).header("User-Agent", CHROME)
}

/// Schema versions recorded in the shared database.
fn recorded_versions(db: &Path) -> Result<Vec<i64>, Failed> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("open {}: {e}", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .map_err(|e| e.to_string())?;
    let versions = stmt
        .query_map([], |r| r.get(0))
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(versions)
}

fn three_replicas_started_at_once_on_one_empty_database_share_links_and_count_every_click()
-> Result<(), Failed> {
    let cluster = Cluster::start(3);
    let bases: Vec<String> = cluster.replicas.iter().map(SpinApp::base).collect();

    // The migration race ended in one schema, each version recorded once.
    let versions = recorded_versions(&cluster.db)?;
    ensure!(
        !versions.is_empty() && versions.windows(2).all(|w| w[0] < w[1]),
        "schema_migrations after the race: {versions:?}"
    );
    for base in &bases {
        let health = try_request(base, "GET", "/health", &[], None)?;
        ensure!(
            health.status == 200
                && health.json()["checks"]
                    == json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"}),
            "{base}/health: {} {}",
            health.status,
            health.body
        );
    }

    // Created through one replica: redirects on every other at once.
    create(&bases[0], "scale-shared")?;
    for base in &bases {
        ensure!(
            redirect_status(base, "scale-shared")? == 302,
            "{base} does not redirect a link created on {}",
            bases[0]
        );
    }
    // Deleted through another: gone on all of them at once.
    let (status, _) = api(&bases[1], "DELETE", "/api/links/scale-shared", None)?;
    ensure!(status == 204, "delete: {status}");
    for base in bases.iter().chain([&cluster.proxy()]) {
        ensure!(
            redirect_status(base, "scale-shared")? == 404,
            "{base} still redirects a deleted link"
        );
    }

    // Load through Caddy: clicks recorded == redirects served, per link.
    let slugs = ["scale-a", "scale-b", "scale-c"];
    for slug in slugs {
        create(&cluster.proxy(), slug)?;
    }
    let loads: Vec<OhaRun> = thread::scope(|s| {
        let handles: Vec<_> = slugs
            .iter()
            .map(|slug| {
                let url = cluster.proxy_url(&format!("/{slug}"));
                s.spawn(move || run_load(&url, 600, 8))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut served_total = 0;
    for (slug, load) in slugs.iter().zip(&loads) {
        let served = load.total(302);
        ensure!(
            served == 600,
            "{slug}: 302s {served} of 600 (others: {:?}, errors {}); component errors: {:#?}",
            load.statuses,
            load.transport_errors(),
            cluster.component_errors()
        );
        // Read back through every replica: they all see the same counts.
        for base in &bases {
            let recorded = clicks(base, slug)?;
            ensure!(
                recorded == served,
                "{slug}: {recorded} clicks recorded (via {base}), {served} redirects served"
            );
        }
        served_total += served;
    }
    eprintln!(
        "scale: 3 replicas, {served_total} redirects through Caddy, every one recorded once; redis keys: {}",
        cluster.redis.cli(&["DBSIZE"]).trim()
    );
    Ok(())
}

fn killing_a_replica_under_load_loses_no_acknowledged_click_and_caddy_routes_around_it()
-> Result<(), Failed> {
    let mut cluster = Cluster::start(3);
    create(&cluster.proxy(), "scale-kill")?;
    let victim = cluster.replicas[1].port;
    ensure!(
        !server_pids(victim).is_empty(),
        "no server process on {victim}"
    );

    let requests = 3000;
    let load = load(&cluster.proxy_url("/scale-kill"), requests, 16).spawn();
    // Kill one replica (its serving process, SIGKILL: a crash) once the
    // load is under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while clicks(&cluster.replicas[0].base(), "scale-kill")? < requests / 5 {
        ensure!(Instant::now() < deadline, "the load did not get going");
        thread::sleep(Duration::from_millis(20));
    }
    kill_server(victim);
    let killed_at = clicks(&cluster.replicas[0].base(), "scale-kill")?;
    cluster.replicas[1].stop_with("KILL");
    let load = load.wait();
    ensure!(
        try_request(
            &format!("http://127.0.0.1:{victim}"),
            "GET",
            "/health",
            &[],
            None
        )
        .is_err(),
        "the killed replica still answers"
    );

    let recorded = clicks(&cluster.proxy(), "scale-kill")?;
    let acknowledged = load.total(302);
    let failed = load.not(302);
    eprintln!(
        "scale: killed replica {victim} after ~{killed_at} clicks; {acknowledged} 302s, {failed} failed \
         ({:?}, {} transport errors), {recorded} clicks recorded",
        load.statuses,
        load.transport_errors()
    );
    ensure!(
        acknowledged + failed == requests,
        "oha accounted for {} of {requests} requests",
        acknowledged + failed
    );
    // Every 302 was answered after its click committed: none is lost.
    ensure!(
        recorded >= acknowledged,
        "acknowledged clicks lost: {acknowledged} 302s, {recorded} recorded"
    );
    // A click beyond the 302s can only come from a request that failed
    // because of the kill (committed, then the process died before answering).
    ensure!(
        recorded - acknowledged <= failed,
        "{recorded} clicks recorded for {acknowledged} 302s and only {failed} failed requests"
    );
    // Caddy routes around the dead replica: every request now succeeds.
    for i in 0..30 {
        let status = redirect_status(&cluster.proxy(), "scale-kill")?;
        ensure!(status == 302, "request {i} after the kill: {status}");
    }
    let after = clicks(&cluster.proxy(), "scale-kill")?;
    ensure!(
        after == recorded + 30,
        "{after} clicks after 30 more redirects on {recorded}"
    );
    Ok(())
}

/// `python3 deploy/drain.py <command> --replica <replica>` with the gate's
/// settings; its stdout, or the failure.
fn drain_script(command: &str, replica: &str, gate: &Gate) -> Result<String, Failed> {
    let out = Command::new("python3")
        .arg(root().join("deploy/drain.py"))
        .args([command, "--replica", replica])
        .arg("--drain-dir")
        .arg(&gate.drain_dir)
        .args(["--gate-port", &gate.port.to_string()])
        .args(["--admin", &format!("http://127.0.0.1:{}", gate.admin)])
        .args(["--interval", "0.2"])
        .output()
        .map_err(|e| format!("python3 deploy/drain.py: {e}"))?;
    ensure!(
        out.status.success(),
        "drain.py {command} {replica}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn a_rolling_restart_of_three_replicas_drained_through_caddys_health_gate_under_load_answers_every_request_302_and_counts_every_click()
-> Result<(), Failed> {
    rolling_restart(true)
}

/// The same restarts without the drain (SIGTERM, start, next): what the
/// procedure avoids. Prints the failures; asserts only that no acknowledged
/// click was lost and that every extra click belongs to a failed request.
fn a_rolling_restart_without_draining_loses_no_acknowledged_click_and_its_failures_are_printed()
-> Result<(), Failed> {
    rolling_restart(false)
}

/// Restarts each replica of a gated 3-replica cluster in turn under load,
/// draining it through the health gate first when `drain`.
fn rolling_restart(drain: bool) -> Result<(), Failed> {
    // The load: back-to-back oha runs of a fixed count until the restarts
    // are done (at most MAX_RUNS of them), so it spans the whole procedure
    // whatever this machine's speed, and stays bounded.
    const RUN: u64 = 1000;
    const MAX_RUNS: usize = 60;
    let mut cluster = Cluster::start_with(3, true);
    create(&cluster.proxy(), "scale-roll")?;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let url = cluster.proxy_url("/scale-roll");
        let done = done.clone();
        thread::spawn(move || {
            let mut runs = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) && runs.len() < MAX_RUNS {
                runs.push(run_load(&url, RUN, 16));
            }
            runs
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while clicks(&cluster.proxy(), "scale-roll")? < RUN / 2 {
        ensure!(Instant::now() < deadline, "the load did not get going");
        thread::sleep(Duration::from_millis(20));
    }

    let mut steps = Vec::new();
    for i in 0..cluster.replicas.len() {
        let (host, port) = (cluster.replicas[i].host.clone(), cluster.replicas[i].port);
        let replica = format!("{host}:{port}");
        let gate = cluster.gate.as_ref().expect("a gated cluster");
        // Read from another replica directly: no restart is in its way.
        let other = cluster.replicas[(i + 1) % 3].base();
        let at = clicks(&other, "scale-roll")?;
        // 1. Out through the health gate; wait for its in-flight requests.
        let started = Instant::now();
        if drain {
            drain_script("out", &replica, gate)?;
        }
        let drained = started.elapsed();
        // 2. Stop it as a supervisor does (SIGTERM), 3. start it again.
        cluster.replicas[i].stop_with("TERM");
        ensure!(server_pids(port).is_empty(), "replica {replica} still runs");
        let stopped = started.elapsed();
        cluster.replicas[i] = replica_builder(&cluster.config, cluster.dir.path(), i)
            .host(&host)
            .port(port)
            .spawn();
        // 4. Back in once its /health answers 200.
        let gate = cluster.gate.as_ref().expect("a gated cluster");
        if drain {
            drain_script("in", &replica, gate)?;
        } else {
            cluster.replicas[i].wait_healthy(Duration::from_secs(60));
            thread::sleep(Duration::from_millis(400)); // two health intervals
        }
        let back = started.elapsed();
        ensure!(
            !loader.is_finished(),
            "the load ended during the restart of {replica}: raise MAX_RUNS"
        );
        steps.push(format!(
            "{replica} (at ~{at} clicks): drained {:.2}s, stopped {:.2}s, back in {:.2}s",
            drained.as_secs_f64(),
            stopped.as_secs_f64(),
            back.as_secs_f64()
        ));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = loader.join().expect("the load thread");

    let served: u64 = runs.iter().map(|r| r.total(302)).sum();
    let failed: u64 = runs.iter().map(|r| r.not(302)).sum();
    let mut statuses = std::collections::BTreeMap::new();
    let mut errors = std::collections::BTreeMap::new();
    for run in &runs {
        for (status, n) in &run.statuses {
            *statuses.entry(*status).or_insert(0) += n;
        }
        for (error, n) in &run.errors {
            *errors.entry(error.clone()).or_insert(0) += n;
        }
    }
    let recorded = clicks(&cluster.replicas[0].base(), "scale-roll")?;
    let slowest = runs.iter().map(|r| r.slowest_ms).fold(0.0, f64::max);
    eprintln!(
        "scale: rolling restart of 3 replicas under load ({}): {} requests in {} runs of {RUN} at c=16, \
         {served} 302s, {failed} others ({statuses:?}, errors {errors:?}), {recorded} clicks recorded, \
         slowest answer {slowest:.0} ms\n  {}",
        if drain {
            "each drained first"
        } else {
            "no drain"
        },
        served + failed,
        runs.len(),
        steps.join("\n  ")
    );
    if !drain {
        ensure!(
            recorded >= served && recorded - served <= failed,
            "{recorded} clicks recorded for {served} 302s and {failed} failed requests"
        );
        return Ok(());
    }
    ensure!(
        failed == 0,
        "{failed} requests not answered 302 during the rolling restart: {statuses:?}, errors {errors:?}; \
         component errors: {:#?}",
        cluster.component_errors()
    );
    ensure!(
        recorded == served,
        "{recorded} clicks recorded, {served} redirects served"
    );
    // Every replica serves again, and Caddy sends it requests.
    let gate = cluster.gate.as_ref().expect("a gated cluster");
    let pool = try_request(
        &format!("http://127.0.0.1:{}", gate.admin),
        "GET",
        "/reverse_proxy/upstreams",
        &[],
        None,
    )?
    .json();
    for replica in &cluster.replicas {
        ensure!(
            redirect_status(&replica.base(), "scale-roll")? == 302,
            "{} does not redirect after its restart",
            replica.base()
        );
        let address = format!("{}:{}", replica.host, replica.port);
        ensure!(
            pool.as_array()
                .is_some_and(|hosts| hosts.iter().any(|h| h["address"] == address.as_str())),
            "{address} is not in Caddy's pool: {pool}"
        );
    }
    let before = clicks(&cluster.proxy(), "scale-roll")?;
    let after_restart = run_load(&cluster.proxy_url("/scale-roll"), 300, 3);
    ensure!(
        after_restart.total(302) == 300,
        "after the restart: {:?}",
        after_restart.statuses
    );
    ensure!(
        clicks(&cluster.proxy(), "scale-roll")? == before + 300,
        "clicks after the restart"
    );
    Ok(())
}

/// Busy and total jiffies of the whole machine (every engineer's load).
pub(crate) fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = cpu.iter().sum();
    let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// CPU seconds (user + system) of every process below this test process,
/// summed by command name.
pub(crate) fn cpu_by_command() -> std::collections::BTreeMap<String, f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After "pid (comm) ": state ppid ... utime(14th field overall) stime(15th).
        let ppid: u32 = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
        let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        procs.push((pid, ppid, comm, (utime + stime) / ticks));
    }
    let me = std::process::id();
    let mut ours = std::collections::HashSet::from([me]);
    loop {
        let before = ours.len();
        for (pid, ppid, _, _) in &procs {
            if ours.contains(ppid) {
                ours.insert(*pid);
            }
        }
        if ours.len() == before {
            break;
        }
    }
    let mut by = std::collections::BTreeMap::new();
    for (pid, _, comm, cpu) in procs {
        if pid != me && ours.contains(&pid) {
            *by.entry(comm).or_insert(0.0) += cpu;
        }
    }
    by
}

pub(crate) fn cpu_delta(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    name: &str,
) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

/// Redirects (KV read + click write) and unknown slugs (KV read only, no
/// write) through Caddy for 1, 2 and 3 replicas, with the CPU each process
/// kind used. Prints figures; asserts only that every redirect was recorded.
fn throughput_of_one_two_and_three_replicas_is_printed() -> Result<(), Failed> {
    let requests: u64 = std::env::var("SHORTENER_SCALE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let connections = 32;
    let mut table = vec![format!(
        "replicas | redirects/s | p99 ms | 404s/s (no write) | CPU s: spin / caddy / redis | wall s | machine busy %"
    )];
    for n in 1..=3 {
        let cluster = Cluster::start(n);
        create(&cluster.proxy(), "scale-bench")?;
        run_load(&cluster.proxy_url("/scale-bench"), 300, 8); // warm-up
        let mut warm = 300;
        if n == 1 {
            // Baseline: the same replica without Caddy in front.
            let direct = run_load(
                &format!("{}/scale-bench", cluster.replicas[0].base()),
                requests,
                connections,
            );
            warm += direct.total(302);
            table.push(format!(
                "1, direct (no Caddy) | {:.0} | {:.1} | - | - | - | -",
                direct.rps, direct.p99_ms
            ));
        }
        let before = cpu_by_command();
        let machine_before = machine_jiffies();
        let started = Instant::now();
        let redirect = run_load(&cluster.proxy_url("/scale-bench"), requests, connections);
        let wall = started.elapsed().as_secs_f64();
        let after = cpu_by_command();
        let machine_after = machine_jiffies();
        let machine_busy = 100.0 * (machine_after.0 - machine_before.0)
            / (machine_after.1 - machine_before.1).max(1.0);
        let miss = run_load(&cluster.proxy_url("/scale-missing"), requests, connections);
        let served = redirect.total(302);
        let recorded = clicks(&cluster.proxy(), "scale-bench")?;
        ensure!(
            recorded == served + warm,
            "{n} replicas: {recorded} clicks recorded, {} redirects served",
            served + warm
        );
        table.push(format!(
            "{n} | {:.0} | {:.1} | {:.0} | {:.2} / {:.2} / {:.2} | {wall:.2} | {machine_busy:.0}",
            redirect.rps,
            redirect.p99_ms,
            miss.rps,
            cpu_delta(&before, &after, "spin"),
            cpu_delta(&before, &after, "caddy"),
            cpu_delta(&before, &after, "redis-server"),
        ));
    }
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "scale throughput through Caddy ({requests} requests, {connections} connections, {cores} cores, \
         shared machine: expect noise):\n{}",
        table.join("\n")
    );
    Ok(())
}
