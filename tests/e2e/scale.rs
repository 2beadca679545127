//! Scale out on one host: several `spin up` processes on
//! `deploy/app/runtime.scale.toml` (links in one Redis, clicks in one SQLite
//! file) behind a real Caddy that load-balances them round robin with active
//! health checks on `/health`.
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
    let listen = format!("127.0.0.1:{port}");
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
        if args.iter().any(|a| a == "trigger") && args.contains(&listen) {
            pids.push(pid);
        }
    }
    pids
}

fn kill_server(port: u16) {
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
    redis: Redis,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.caddy.take();
        for replica in &self.replicas {
            kill_server(replica.port);
        }
    }
}

const CADDY_HEALTH_INTERVAL: &str = "200ms";

/// The Caddyfile: `ports` as static upstreams with active health checks on
/// `/health`, and the committed load-balancing settings of
/// `deploy/caddy/replicas.caddy` (the file `Caddyfile.scale` imports): round
/// robin, a failed dial retried on the next upstream, a request that reached
/// an upstream never replayed (deploy/README.md explains the trade-off).
fn caddyfile(listen: u16, ports: &[u16]) -> String {
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

impl Cluster {
    /// Starts `n` replicas at once on an empty database, waits until all are
    /// healthy (their first requests race through the migrations), then Caddy.
    fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let redis = Redis::start();
        let db = dir.path().join("clicks.db");
        let config = scale_runtime_config(dir.path(), &redis.url(), &db);
        let replicas: Vec<SpinApp> = (0..n)
            .map(|i| {
                SpinBuilder::default()
                    .runtime_config(&config)
                    .state_dir(dir.path().join(format!("state-{i}")))
                    .variable("trusted_proxy_hops", "1")
                    .spawn()
            })
            .collect();
        // Every replica's first /health builds its router and runs the
        // migrations: all at once, on the same empty file.
        thread::scope(|s| {
            for replica in &replicas {
                s.spawn(|| replica.wait_healthy(Duration::from_secs(60)));
            }
        });
        let proxy_port = free_port();
        let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
        let caddy = Caddy::start(&caddyfile(proxy_port, &ports), proxy_port);
        let cluster = Cluster {
            replicas,
            caddy: Some(caddy),
            proxy_port,
            redis,
            db,
            _dir: dir,
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
fn api(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), Failed> {
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

fn create(base: &str, slug: &str) -> Result<String, Failed> {
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
fn run_load(url: &str, requests: u64, connections: u32) -> OhaRun {
    load(url, requests, connections).run()
}

fn load(url: &str, requests: u64, connections: u32) -> Oha {
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

/// Busy and total jiffies of the whole machine (every engineer's load).
fn machine_jiffies() -> (f64, f64) {
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
fn cpu_by_command() -> std::collections::BTreeMap<String, f64> {
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

fn cpu_delta(
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
