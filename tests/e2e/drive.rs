//! Load driving with oha: a fixed request count (never a deadline, whose
//! abandoned requests the server still completes), loopback only, and every
//! answered request per URL and status read back from oha's own SQLite
//! output (`--db-url`), so a test can reconcile per link.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// What one oha run saw.
#[derive(Debug, Default)]
pub struct OhaRun {
    /// Answers per (path, status).
    pub answered: BTreeMap<(String, u16), u64>,
    /// Answers per status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors (connection refused, reset, timeout...) by message.
    pub errors: BTreeMap<String, u64>,
    /// Requests per second over the run.
    pub rps: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// The slowest answer, in milliseconds.
    pub slowest_ms: f64,
}

impl OhaRun {
    /// Answers with `status` for `path`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.answered
            .get(&(path.to_owned(), status))
            .copied()
            .unwrap_or(0)
    }
    /// Answers with `status`, every path.
    pub fn total(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
    /// Every answer with a 5xx status.
    pub fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }
    /// Answers of any status.
    pub fn answers(&self) -> u64 {
        self.statuses.values().sum()
    }
    /// Requests that got no answer (transport errors).
    pub fn transport_errors(&self) -> u64 {
        self.errors.values().sum()
    }
    /// Requests not answered with `status`: other statuses and transport
    /// errors.
    pub fn not(&self, status: u16) -> u64 {
        self.answers() - self.total(status) + self.transport_errors()
    }
}

/// An oha run to start.
pub struct Oha {
    urls: Vec<String>,
    requests: u64,
    connections: u32,
    method: &'static str,
    headers: Vec<String>,
    rate: Option<u32>,
}

impl Oha {
    /// `requests` requests over `connections` connections, each to a URL
    /// drawn from `urls` (repeat a URL to weight it).
    pub fn new(urls: Vec<String>, requests: u64, connections: u32) -> Oha {
        Oha {
            urls,
            requests,
            connections,
            method: "GET",
            headers: Vec::new(),
            rate: None,
        }
    }
    /// Sends at most `per_second` requests a second (oha's `-q`).
    pub fn rate(mut self, per_second: u32) -> Oha {
        self.rate = Some(per_second);
        self
    }
    /// Sends this header with every request.
    pub fn header(mut self, name: &str, value: &str) -> Oha {
        self.headers.push(format!("{name}: {value}"));
        self
    }
    /// Uses this method.
    pub fn method(mut self, method: &'static str) -> Oha {
        self.method = method;
        self
    }

    /// Starts oha in the background.
    pub fn spawn(self) -> OhaChild {
        assert!(
            self.urls.iter().all(|u| u.starts_with("http://127.0.0.1:")),
            "load goes to loopback only"
        );
        let dir = tempfile::tempdir().unwrap();
        let urls = dir.path().join("urls.txt");
        std::fs::write(&urls, self.urls.join("\n") + "\n").unwrap();
        let json = dir.path().join("oha.json");
        let db = dir.path().join("oha.db");
        let mut cmd = Command::new("oha");
        cmd.args(["--no-tui", "--no-color", "-r", "0", "-t", "60s"])
            .args(["-n", &self.requests.to_string()])
            .args(["-c", &self.connections.to_string()])
            .args(["-m", self.method]);
        for h in &self.headers {
            cmd.args(["-H", h]);
        }
        if let Some(rate) = self.rate {
            cmd.args(["-q", &rate.to_string()]);
        }
        cmd.arg("--urls-from-file")
            .arg(&urls)
            .args(["--output-format", "json", "-o"])
            .arg(&json)
            .arg("--db-url")
            .arg(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("oha runs (cargo install --locked oha)");
        OhaChild {
            child,
            json,
            db,
            _dir: dir,
        }
    }

    /// Runs oha to completion.
    pub fn run(self) -> OhaRun {
        self.spawn().wait()
    }
}

/// A running oha.
pub struct OhaChild {
    child: Child,
    json: PathBuf,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl OhaChild {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Waits for it to finish and reads what it saw.
    pub fn wait(mut self) -> OhaRun {
        let status = self.child.wait().expect("oha ran");
        assert!(status.success(), "oha failed: {status}");
        let text = std::fs::read_to_string(&self.json).expect("oha wrote its JSON");
        let report: Value = serde_json::from_str(&text).expect("oha's JSON parses");
        let mut run = OhaRun {
            rps: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
            p99_ms: report["latencyPercentiles"]["p99"].as_f64().unwrap_or(0.0) * 1000.0,
            slowest_ms: report["summary"]["slowest"].as_f64().unwrap_or(0.0) * 1000.0,
            ..OhaRun::default()
        };
        if let Some(map) = report["statusCodeDistribution"].as_object() {
            for (status, n) in map {
                run.statuses
                    .insert(status.parse().unwrap_or(0), n.as_u64().unwrap_or(0));
            }
        }
        if let Some(map) = report["errorDistribution"].as_object() {
            for (error, n) in map {
                run.errors.insert(error.clone(), n.as_u64().unwrap_or(0));
            }
        }
        if self.db.exists() {
            let conn = rusqlite::Connection::open(&self.db).expect("oha's database opens");
            let mut stmt = conn
                .prepare("SELECT url, status, COUNT(*) FROM oha GROUP BY url, status")
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u16>(1)?,
                        r.get::<_, i64>(2)? as u64,
                    ))
                })
                .unwrap();
            for row in rows {
                let (url, status, n) = row.unwrap();
                // oha stores the path; keep only it in case it stores the URL.
                let path = match url.find("://") {
                    Some(i) => url[i + 3..]
                        .find('/')
                        .map(|j| url[i + 3 + j..].to_owned())
                        .unwrap_or_else(|| "/".into()),
                    None => url,
                };
                *run.answered.entry((path, status)).or_default() += n;
            }
        }
        let from_db: u64 = run.answered.values().sum();
        assert_eq!(
            from_db,
            run.answers(),
            "oha's database and its report disagree"
        );
        run
    }
}

/// A URL list of `lines` lines over `slugs`, weighted as the load-test
/// kit's one traffic model weights links (`zipfWeights` and `split` of
/// loadtest/lib.js, `zipf_s` of loadtest/mix.json, run by node): link 1
/// appears most, each later one less.
pub fn zipf_urls(base: &str, slugs: &[String], lines: usize) -> Vec<String> {
    let kit = crate::harness::root().join("loadtest");
    let script = format!(
        "import {{ split, zipfWeights }} from {lib:?};\n\
         import {{ readFileSync }} from 'node:fs';\n\
         const mix = JSON.parse(readFileSync({mix:?}, 'utf8'));\n\
         console.log(JSON.stringify(split({lines}, zipfWeights(mix, {links}))));",
        lib = format!("file://{}", kit.join("lib.js").display()),
        mix = kit.join("mix.json").display().to_string(),
        links = slugs.len(),
    );
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("node runs the load-test kit's model");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<usize> = serde_json::from_slice(&out.stdout).expect("a JSON list of counts");
    slugs
        .iter()
        .zip(counts)
        .flat_map(|(slug, n)| std::iter::repeat_n(format!("{base}/{slug}"), n.max(1)))
        .collect()
}
