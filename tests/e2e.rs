//! End-to-end: the built component under a real `spin up`, over HTTP.
//!
//! Runs when `spin` is on PATH (and the component is built:
//! `cargo build --target wasm32-wasip2 --release`); otherwise prints
//! `skipped: spin not installed` and passes. Set `SHORTENER_E2E_NO_OTEL=1`
//! when the component was built with `--no-default-features`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "e2e-token";

struct Spin {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

impl Drop for Spin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn spin_on_path() -> bool {
    Command::new("spin")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Spin {
    fn up() -> Spin {
        let root = env!("CARGO_MANIFEST_DIR");
        assert!(
            Path::new(root)
                .join("target/wasm32-wasip2/release/shortener.wasm")
                .exists(),
            "build the component first: cargo build --target wasm32-wasip2 --release"
        );
        let state = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("spin");
        cmd.current_dir(state.path())
            .arg("up")
            .arg("--from")
            .arg(Path::new(root).join("spin.toml"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .args(["--variable", &format!("admin_token={TOKEN}")])
            .args(["--variable", "visitor_salt=e2e-salt"])
            .args(["--variable", "public_base_url=https://sho.rt"])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        if std::env::var_os("SHORTENER_E2E_NO_OTEL").is_none() {
            cmd.arg("--experimental-wasi-otel");
        }
        let child = cmd.spawn().expect("spin up starts");
        let spin = Spin {
            child,
            port,
            _state: state,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if spin
                .request("GET", "/health", &[], None)
                .is_ok_and(|r| r.status == 200)
            {
                return spin;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("spin up did not become healthy within 60 s");
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let text = body.map(|b| b.to_string());
        self.request(method, path, &headers, text.as_deref())
            .unwrap()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn the_api_contract_holds_under_a_real_spin_up() {
    if !spin_on_path() {
        eprintln!("skipped: spin not installed");
        return;
    }
    let spin = Spin::up();
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    // Health checks both stores.
    let health = spin.request("GET", "/health", &[], None).unwrap();
    assert_eq!(health.json()["checks"], json!({"kv": "ok", "sqlite": "ok"}));

    // Auth.
    assert_eq!(
        spin.request("GET", "/api/links", &[], None).unwrap().status,
        401
    );

    // Create: random and custom slugs; conflicts; refusals.
    let created = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/e2e"})),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let random = created.json()["slug"].as_str().unwrap().to_owned();
    assert_eq!(random.len(), 7);
    assert_eq!(
        created.json()["short_url"],
        format!("https://sho.rt/{random}")
    );
    let custom = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.org/", "slug": "e2e-custom"})),
    );
    assert_eq!(custom.status, 201);
    let dup = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://other.org/", "slug": "e2e-custom"})),
    );
    assert_eq!(dup.status, 409);
    for (body, status) in [
        (json!({"url": "ftp://x"}), 400),
        (json!({"url": "https://sho.rt/abc"}), 400),
        (json!({"url": "https://e.com", "slug": "api"}), 400),
        (
            json!({"url": "https://e.com", "slug": "x".repeat(17000)}),
            413,
        ),
    ] {
        assert_eq!(spin.api("POST", "/api/links", Some(body)).status, status);
    }
    let text = spin
        .request(
            "POST",
            "/api/links",
            &[
                ("Authorization", &format!("Bearer {TOKEN}")),
                ("Content-Type", "text/plain"),
            ],
            Some("x"),
        )
        .unwrap();
    assert_eq!(text.status, 415);

    // Redirects: GET counts, HEAD does not, unknown is 404.
    for _ in 0..3 {
        let r = spin
            .request("GET", "/e2e-custom", &[("User-Agent", CHROME)], None)
            .unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://example.org/"));
    }
    let bot = spin
        .request(
            "GET",
            "/e2e-custom",
            &[("User-Agent", "Googlebot/2.1")],
            None,
        )
        .unwrap();
    assert_eq!(bot.status, 302);
    let head = spin
        .request("HEAD", "/e2e-custom", &[("User-Agent", CHROME)], None)
        .unwrap();
    assert_eq!(head.status, 302);
    assert_eq!(
        spin.request("GET", "/nope-nope", &[], None).unwrap().status,
        404
    );

    // Get, list, stats.
    let link = spin.api("GET", "/api/links/e2e-custom", None);
    assert_eq!(link.json()["clicks"], 4);
    let list = spin.api("GET", "/api/links?limit=1", None).json();
    assert_eq!(list["links"].as_array().unwrap().len(), 1);
    assert!(list["next_cursor"].is_string());
    let stats = spin.api("GET", "/api/links/e2e-custom/stats", None).json();
    assert_eq!(
        (
            stats["total"].clone(),
            stats["humans"].clone(),
            stats["bots"].clone()
        ),
        (json!(4), json!(3), json!(1))
    );

    // Metrics are read from SQLite.
    let metrics = spin.request("GET", "/metrics", &[], None).unwrap();
    assert!(
        metrics
            .body
            .contains("shortener_clicks_total{kind=\"human\"} 3"),
        "{}",
        metrics.body
    );

    // Delete removes everything.
    assert_eq!(
        spin.api("DELETE", "/api/links/e2e-custom", None).status,
        204
    );
    assert_eq!(
        spin.request("GET", "/e2e-custom", &[], None)
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        spin.api("DELETE", "/api/links/e2e-custom", None).status,
        404
    );
}
