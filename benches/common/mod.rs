//! Pieces every benchmark binary shares: flags, a seeded RNG, figure
//! formatting, the app.
#![allow(dead_code)] // each bench uses a different subset

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::Handler;
use shortener::config::names;
use shortener::native::TestHost;
use tower::ServiceExt;

/// The admin token of the benchmark app.
pub const TOKEN: &str = "bench-admin-token-0123456789abcdef";
/// Its visitor salt.
pub const SALT: &str = "bench-visitor-salt-0123456789abcdef";

/// User agents for generated clicks: browsers, then bots, curl and none.
pub const AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "",
];

/// `--bench` (real run) or not (smoke run under `cargo test`), and flags.
pub struct Args {
    /// `cargo bench` passes `--bench`; `cargo test` does not.
    pub bench: bool,
    args: Vec<String>,
}

impl Args {
    /// The process's arguments.
    pub fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        Self { bench, args }
    }

    /// The raw value of `--flag value`, else of the environment variable `env`.
    pub fn raw(&self, flag: &str, env: &str) -> Option<String> {
        self.args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.args.get(i + 1))
            .cloned()
            .or_else(|| std::env::var(env).ok())
    }

    /// `raw` parsed; `bench` or `smoke` when absent or unparsable.
    pub fn get<T: std::str::FromStr>(&self, flag: &str, env: &str, bench: T, smoke: T) -> T {
        self.raw(flag, env)
            .and_then(|v| v.parse().ok())
            .unwrap_or(if self.bench { bench } else { smoke })
    }
}

/// A seeded RNG: the same workload on every run.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(seed)
}

/// A duration as a figure: `µs` below 1 ms, `ms` below 1 s, else `s`.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// The `p`-quantile (0..=1) of sorted samples, nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[(((n - 1) as f64) * p).round() as usize],
    }
}

/// The app over an in-memory key-value store and SQLite in `dir`
/// (`clicks.db`), migrated, with one link `slug` created through the API.
pub async fn app_with_link(dir: &Path, slug: &str, clock: shortener::Clock) -> Handler {
    let vars = [
        (names::ADMIN_TOKEN, TOKEN),
        (names::PUBLIC_BASE_URL, "https://sho.rt"),
        (names::VISITOR_SALT, SALT),
    ];
    let host = TestHost::start(dir, &vars, clock())
        .await
        .expect("settings, migrations");
    let router = Handler::new(shortener::App {
        clock,
        ..host.app.clone()
    });
    let create = Request::builder()
        .method(Method::POST)
        .uri("/api/links")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"url": "https://example.com/landing", "slug": slug}).to_string(),
        ))
        .expect("request");
    let created = router.clone().oneshot(create).await.expect("infallible");
    assert_eq!(created.status(), StatusCode::CREATED);
    router
}
