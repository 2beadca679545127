//! The e2e harness: a real `spin up` of the built component, a blocking HTTP
//! client (ureq), and the rule for when Spin is missing.
//!
//! Every e2e test is a [`libtest_mimic::Trial`] made by [`trial`]. Without
//! `spin` on PATH a trial is *ignored* (so it never counts as passed) and the
//! run prints `skipped: spin not installed`; under `CI=true` a missing Spin
//! fails the run instead.

#![allow(dead_code)] // shared by every feature module; not each uses all of it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

/// The admin token every e2e app is started with (32+ bytes).
pub const TOKEN: &str = "e2e-admin-token-0123456789abcdef0123456789";
/// The visitor salt every e2e app is started with.
pub const SALT: &str = "e2e-visitor-salt-0123456789abcdef";
/// A desktop Chrome user agent (a human).
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// Googlebot (a bot).
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `spin` runs.
pub fn spin_on_path() -> bool {
    Command::new("spin")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this run is CI's (a missing Spin is then a failure).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the component under test was built without the `otel` feature
/// (`SHORTENER_E2E_NO_OTEL=1`): it then runs under a plain `spin up`.
pub fn no_otel() -> bool {
    std::env::var_os("SHORTENER_E2E_NO_OTEL").is_some()
}

/// An e2e test: ignored when Spin is missing outside CI.
pub fn trial(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    let ignore = !spin_on_path() && !in_ci();
    Trial::test(name, move || {
        if !spin_on_path() {
            return Err("spin is not on PATH (CI=true: a missing Spin is a failure)".into());
        }
        test()
    })
    .with_ignored_flag(ignore)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to start a `spin up`.
pub struct SpinBuilder {
    variables: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    runtime_config: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    otel: bool,
}

impl Default for SpinBuilder {
    fn default() -> Self {
        let mut variables = BTreeMap::new();
        variables.insert("admin_token".into(), TOKEN.into());
        variables.insert("visitor_salt".into(), SALT.into());
        variables.insert("public_base_url".into(), "https://sho.rt".into());
        Self {
            variables,
            env: Vec::new(),
            args: Vec::new(),
            runtime_config: None,
            state_dir: None,
            host: None,
            port: None,
            otel: !no_otel(),
        }
    }
}

impl SpinBuilder {
    /// Sets a Spin variable.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }
    /// Sets an environment variable of the Spin process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    /// Adds `spin up` arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }
    /// Uses this runtime config file.
    pub fn runtime_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime_config = Some(path.into());
        self
    }
    /// Uses this state dir (kept by the caller, e.g. across restarts).
    pub fn state_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(path.into());
        self
    }
    /// Listens on this loopback address (default 127.0.0.1; Linux routes
    /// all of 127/8 to lo).
    pub fn host(mut self, host: &str) -> Self {
        assert!(host.starts_with("127."), "loopback only");
        self.host = Some(host.into());
        self
    }
    /// Listens on this port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Starts Spin and waits until `/health` answers 200.
    pub fn start(self) -> SpinApp {
        let app = self.spawn();
        app.wait_healthy(Duration::from_secs(60));
        app
    }

    /// Starts Spin without waiting.
    pub fn spawn(self) -> SpinApp {
        let wasm = root().join("target/wasm32-wasip2/release/shortener.wasm");
        assert!(
            wasm.exists(),
            "build the component first: cargo build --target wasm32-wasip2 --release"
        );
        let workdir = tempfile::tempdir().unwrap();
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| workdir.path().join("state"));
        let port = self.port.unwrap_or_else(free_port);
        let host = self.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let log = workdir.path().join("spin.log");
        let mut cmd = Command::new("spin");
        cmd.current_dir(workdir.path())
            .arg("up")
            .arg("--from")
            .arg(root().join("spin.toml"))
            .arg("--listen")
            .arg(format!("{host}:{port}"))
            .arg("--state-dir")
            .arg(&state_dir);
        // Spin provides the `default` stores itself; the app's second
        // database (`unrecorded`) must be defined in a runtime config.
        let runtime_config = self.runtime_config.clone().unwrap_or_else(|| {
            let path = workdir.path().join("runtime.toml");
            std::fs::write(&path, unrecorded_section(&state_dir.join("unrecorded.db"))).unwrap();
            path
        });
        cmd.arg("--runtime-config-file").arg(runtime_config);
        for (k, v) in &self.variables {
            cmd.args(["--variable", &format!("{k}={v}")]);
        }
        if self.otel {
            cmd.arg("--experimental-wasi-otel");
        }
        cmd.args(&self.args);
        // No export unless a test asks for it.
        cmd.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdout(out.try_clone().unwrap()).stderr(out);
        // `spin up` runs the app in a child `spin trigger http`: give them a
        // process group of their own, so a kill reaches both (a SIGKILL of
        // `spin up` alone leaves the trigger serving, orphaned).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("spin up starts");
        SpinApp {
            child: Some(child),
            host,
            port,
            state_dir,
            log,
            _workdir: workdir,
        }
    }
}

/// A running `spin up`; killed on drop.
pub struct SpinApp {
    child: Option<Child>,
    /// Its loopback address (127.0.0.1 unless [`SpinBuilder::host`]).
    pub host: String,
    /// Its port on [`Self::host`].
    pub port: u16,
    /// Its state dir.
    pub state_dir: PathBuf,
    log: PathBuf,
    _workdir: tempfile::TempDir,
}

impl Drop for SpinApp {
    fn drop(&mut self) {
        self.stop_with("KILL");
        if std::thread::panicking() {
            eprintln!("--- spin log ---\n{}", self.log_text());
        }
    }
}

impl SpinApp {
    /// `spin up` with the defaults.
    pub fn up() -> SpinApp {
        SpinBuilder::default().start()
    }

    /// `http://<host>:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// What Spin and the component printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `/health` to answer 200.
    pub fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if try_request(&self.base(), "GET", "/health", &[], None).is_ok_and(|r| r.status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "spin up did not become healthy within {within:?}\n{}",
            self.log_text()
        );
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) and waits for the process to end.
    ///
    /// `KILL` is a crash: the whole process group (`spin up` and its
    /// `spin trigger http`) dies at once. Any other signal goes to `spin up`
    /// only, as a supervisor sends it (`spin up` passes it on to the
    /// trigger); after 30 s whatever is left of the group is killed.
    pub fn stop_with(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let kill = |sig: &str, target: &str| {
            Command::new("kill")
                .args([&format!("-{sig}"), "--", target])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if signal == "KILL" {
            kill("KILL", &group);
        } else {
            kill(signal, &child.id().to_string());
        }
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while kill("0", &group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("KILL", &group);
    }

    /// One request; panics on a transport error.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        try_request(&self.base(), method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `GET path` with no headers.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// An authorised API call with an optional JSON body; panics on a
    /// transport error.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        api_at(&self.base(), method, path, body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a link and returns its slug; fails unless 201.
    pub fn create(&self, body: Value) -> Result<String, Failed> {
        create_at(&self.base(), body)
    }
}

/// An authorised API call to `base` (one replica, or a proxy in front of
/// several) with an optional JSON body.
pub fn api_at(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<Reply, String> {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let text = body.map(|b| b.to_string());
    try_request(base, method, path, &headers, text.as_deref())
        .map_err(|e| format!("{method} {base}{path}: {e}"))
}

/// Creates a link through `base` and returns its slug; fails unless 201.
pub fn create_at(base: &str, body: Value) -> Result<String, Failed> {
    let r = api_at(base, "POST", "/api/links", Some(body.clone()))?;
    crate::ensure!(r.status == 201, "create {body}: {} {}", r.status, r.body);
    Ok(r.json()["slug"].as_str().unwrap_or_default().to_owned())
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One request to `base` + `path`; a transport error is an `Err`.
pub fn try_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Reply, ureq::Error> {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(body.unwrap_or("").as_bytes().to_vec())
        .expect("a valid request");
    let mut response = agent().run(request)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = if method == "HEAD" {
        String::new()
    } else {
        response.body_mut().read_to_string().unwrap_or_default()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Fails the trial with a message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

/// Waits until a TCP port on 127.0.0.1 accepts connections.
pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The runtime-config section of the unrecorded-clicks tally database.
pub fn unrecorded_section(path: &Path) -> String {
    format!(
        "[sqlite_database.unrecorded]\ntype = \"spin\"\npath = \"{}\"\n",
        path.display()
    )
}

/// A runtime config for `spin up` written into `dir`: links in Redis when
/// `redis_url` is given (else Spin's file store), clicks in the SQLite file
/// `sqlite_path`, the unrecorded tally in `unrecorded.db` beside it. Returns
/// the file's path.
pub fn write_runtime_config(dir: &Path, redis_url: Option<&str>, sqlite_path: &Path) -> PathBuf {
    let kv = match redis_url {
        Some(url) => format!("type = \"redis\"\nurl = \"{url}\""),
        None => format!(
            "type = \"spin\"\npath = \"{}\"",
            dir.join("kv.db").display()
        ),
    };
    let text = format!(
        "[key_value_store.default]\n{kv}\n\n[sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n\n{}",
        sqlite_path.display(),
        unrecorded_section(&sqlite_path.with_file_name("unrecorded.db"))
    );
    let path = dir.join("runtime.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `redis-server` on a free loopback port, no persistence; stopped on drop.
pub struct Redis {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (apt-get install redis-server)");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "redis-server did not listen"
        );
    }

    /// Runs `redis-cli` against it and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `caddy run` with the given Caddyfile text; stopped on drop.
pub struct Caddy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Caddy {
    /// Writes `caddyfile` to a temp dir, starts Caddy on it, and waits for
    /// `wait_port` to accept connections.
    pub fn start(caddyfile: &str, wait_port: u16) -> Caddy {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Caddyfile");
        std::fs::write(&file, caddyfile).unwrap();
        let child = Command::new("caddy")
            .arg("run")
            .arg("--config")
            .arg(&file)
            .arg("--adapter")
            .arg("caddyfile")
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("caddy starts (apt-get install caddy)");
        assert!(
            wait_for_port(wait_port, Duration::from_secs(15)),
            "caddy did not listen on {wait_port}"
        );
        Caddy { child, _dir: dir }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------ raw HTTP, Caddyfile, Prometheus

/// Sends `METHOD target HTTP/1.1` exactly as written (no client-side path
/// normalisation) to 127.0.0.1:`port` and returns the status and body.
pub fn raw_request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut text =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The project's Caddyfile (deploy/caddy/Caddyfile) made runnable here:
/// Debian's caddy 2.6 has no `tracing` directive, so its block (and any
/// `order` option naming it) is removed;
/// the site listens on 127.0.0.1:`listen` and proxies to 127.0.0.1:`upstream`
/// instead of the compose service `app:3000`. Everything else (the
/// `/metrics` matcher, header handling) is the real file's.
pub fn caddyfile_for_test(listen: u16, upstream: u16) -> String {
    let real = std::fs::read_to_string(root().join("deploy/caddy/Caddyfile")).unwrap();
    let mut out = String::new();
    // Depth inside the `tracing { ... }` block being dropped.
    let mut depth = 0i32;
    for line in real.lines() {
        let code = line.split('#').next().unwrap_or("").trim();
        let opens = code.matches('{').count() as i32 - code.matches('}').count() as i32;
        if depth > 0 {
            depth += opens;
            continue;
        }
        if code == "tracing" || code.starts_with("tracing ") || code.starts_with("tracing{") {
            depth = opens;
            continue;
        }
        // `order X before tracing` names the missing directive too.
        if code.starts_with("order ") && code.split_whitespace().any(|w| w == "tracing") {
            continue;
        }
        // Other loopback sites of the real file (a healthcheck listener) get
        // a free port each, so parallel tests do not collide on it.
        if let Some(rest) = code.strip_prefix("http://127.0.0.1:")
            && let Some((_, tail)) = rest.split_once(' ')
        {
            out.push_str(&format!("http://127.0.0.1:{} {tail}\n", free_port()));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        out.contains(":80 {") && out.contains("reverse_proxy app:3000"),
        "deploy/caddy/Caddyfile changed shape: update caddyfile_for_test\n{out}"
    );
    out.replace(
        ":80 {",
        &format!("http://127.0.0.1:{listen} {{\n\tbind 127.0.0.1"),
    )
    .replace(
        "reverse_proxy app:3000",
        &format!("reverse_proxy 127.0.0.1:{upstream}"),
    )
}

/// A `prometheus` server scraping `targets` (host:port, path `/metrics`)
/// every second, on a free loopback port; stopped on drop.
pub struct Prometheus {
    child: Child,
    /// Its port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Writes a prometheus.yml and starts the server.
    pub fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let list = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: shortener\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{list}]\n"
        );
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts (apt-get install prometheus)");
        assert!(
            wait_for_port(port, Duration::from_secs(30)),
            "prometheus did not listen"
        );
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// An instant query; the result vector as (labels, value).
    pub fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let reply = ureq::get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query("query", promql)
            .call();
        let Ok(mut reply) = reply else {
            return Vec::new();
        };
        let text = reply.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let v = r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN);
                (r["metric"].clone(), v)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libSQL's server (`sqld` from `../shared/bin`, on PATH) on loopback, its
/// database in a temp dir that outlives a stop, so a restart finds it.
pub struct Sqld {
    child: Option<Child>,
    /// Its HTTP port.
    pub port: u16,
    grpc_port: u16,
    dir: tempfile::TempDir,
}

impl Sqld {
    /// Starts one on an empty database and waits until it answers.
    pub fn start() -> Sqld {
        let mut sqld = Sqld {
            child: None,
            port: free_port(),
            grpc_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        sqld.restart();
        sqld
    }

    /// `http://127.0.0.1:<port>`, the runtime config's `url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        self.freeze(false);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`true`: SIGSTOP) or thaws (SIGCONT) the server: frozen, it
    /// still accepts connections (the kernel does) and answers nothing.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Starts the server again on the same port and database.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("sqld")
            .arg("--db-path")
            .arg(self.dir.path().join("clicks.sqld"))
            .args(["--http-listen-addr", &format!("127.0.0.1:{}", self.port)])
            .args([
                "--grpc-listen-addr",
                &format!("127.0.0.1:{}", self.grpc_port),
            ])
            .arg("--no-welcome")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sqld starts (../shared/bin on PATH)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if try_request(&self.url(), "GET", "/health", &[], None).is_ok_and(|r| r.status == 200)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sqld did not answer /health on {}", self.url());
    }

    /// Runs one SQL statement through sqld's HTTP API (`/v2/pipeline`) and
    /// returns its rows' values as JSON (each `{"type", "value"}`).
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<Value>>, String> {
        let body = serde_json::json!({"requests": [
            {"type": "execute", "stmt": {"sql": sql}},
            {"type": "close"}
        ]});
        let body = body.to_string();
        let reply = try_request(
            &self.url(),
            "POST",
            "/v2/pipeline",
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .map_err(|e| format!("sqld: {e}"))?;
        let json = reply.json();
        let result = &json["results"][0];
        if result["type"] != "ok" {
            return Err(format!("sqld: {sql}: {json}"));
        }
        Ok(result["response"]["result"]["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|row| row.as_array().cloned().unwrap_or_default())
            .collect())
    }

    /// One integer a query returns.
    pub fn scalar(&self, sql: &str) -> Result<i64, String> {
        let rows = self.query(sql)?;
        let cell = rows
            .first()
            .and_then(|r| r.first())
            .ok_or_else(|| format!("sqld: {sql}: no row"))?;
        cell["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .or_else(|| cell["value"].as_i64())
            .ok_or_else(|| format!("sqld: {sql}: {cell}"))
    }
}

impl Drop for Sqld {
    fn drop(&mut self) {
        self.stop();
    }
}
