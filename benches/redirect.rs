//! The span cost of the redirect path, natively.
//!
//! Builds the app like the API tests' `TestApp` (in-memory key-value store,
//! SQLite on a temporary file, migrations, the real router), creates a link
//! and times sequential `GET /{slug}` requests (each reads the link and
//! commits its click) on a current-thread runtime:
//!
//! * (a) with no subscriber at all (first, before any was ever installed:
//!   what a component without telemetry pays), and again between the (b)
//!   rounds, to cancel the drift of the growing clicks table;
//! * (b) with the production tracer as the thread's default subscriber
//!   (`telemetry::Tracer`), whose exporter counts and drops the spans.
//!
//! `cargo bench --bench redirect [-- --requests 2000 --rounds 6]` (or
//! `REDIRECT_REQUESTS`, `REDIRECT_ROUNDS`). Without `--bench` (under
//! `cargo test --all-targets`) it makes a few dozen requests and checks that
//! each is a 302 and that (b) exports 3 spans per redirect.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use shortener::telemetry::wasi_otel::wit;
use shortener::{ClientAddr, Handler};
use tower::ServiceExt;

const SLUG: &str = "launch";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// Spans a redirect hit makes: the request, `kv.get`, `sqlite.execute`.
const EXPECTED_SPANS: usize = 3;

/// An exporter that counts the spans it is given and drops them.
#[derive(Debug, Clone, Default)]
struct Dropping(Arc<AtomicUsize>);

impl shortener::telemetry::Exporter for Dropping {
    fn on_start(&self, _context: &wit::SpanContext) {}
    fn on_end(&self, _span: wit::SpanData) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

struct Config {
    bench: bool,
    requests: usize,
    rounds: usize,
}

impl Config {
    fn from_env_and_args() -> Self {
        let args = common::Args::parse();
        Self {
            bench: args.bench,
            requests: args.get("--requests", "REDIRECT_REQUESTS", 2_000, 10),
            rounds: args.get("--rounds", "REDIRECT_ROUNDS", 6, 1).max(1),
        }
    }
}

async fn follow(router: &Handler, peer: IpAddr) -> StatusCode {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(format!("/{SLUG}"))
        .header("user-agent", CHROME)
        .header("referer", "https://news.ycombinator.com/item?id=1")
        .body(Body::empty())
        .expect("request");
    request.extensions_mut().insert(ClientAddr(peer));
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    // Read the (empty) body like a server would.
    let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    status
}

/// `n` sequential redirects; the time of each.
async fn batch(router: &Handler, n: usize, samples: &mut Vec<Duration>, seq: &mut u32) {
    for _ in 0..n {
        *seq = seq.wrapping_add(1);
        let peer = IpAddr::from([198, 51, (*seq >> 8) as u8 & 3, *seq as u8]);
        let t0 = Instant::now();
        let status = follow(router, peer).await;
        samples.push(t0.elapsed());
        assert_eq!(status, StatusCode::FOUND, "a redirect hit");
    }
}

struct Summary {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    n: usize,
}

fn summary(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Summary {
        mean: samples.iter().sum::<Duration>() / samples.len() as u32,
        p50: pct(0.5),
        p99: pct(0.99),
        n: samples.len(),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let config = Config::from_env_and_args();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(config));
}

async fn run(config: Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    let router = common::app_with_link(dir.path(), SLUG, shortener::system_clock()).await;

    let n = config.requests;
    let mut seq = 0;
    let (mut pristine, mut plain, mut traced) = (Vec::new(), Vec::new(), Vec::new());
    // Warm-up (statement cache, page cache, allocator), not counted.
    batch(&router, n.min(500), &mut Vec::new(), &mut seq).await;
    // (a) before any subscriber ever existed in this process.
    batch(&router, n, &mut pristine, &mut seq).await;
    let spans = Arc::new(AtomicUsize::new(0));
    let dispatch =
        tracing::Dispatch::new(shortener::telemetry::Tracer::new(Dropping(spans.clone())));

    // Register the app's callsites with the subscriber in force. (With
    // exactly one `Dispatch` alive, tracing-core asks only the thread's
    // current default when a callsite is first hit; a first hit outside the
    // guard would leave the callsite disabled for good.)
    {
        let _guard = tracing::dispatcher::set_default(&dispatch);
        batch(&router, 1, &mut Vec::new(), &mut seq).await;
    }
    let baseline = spans.load(Ordering::Relaxed);
    for round in 0..config.rounds {
        let with = async |samples: &mut Vec<Duration>, seq: &mut u32| {
            let _guard = tracing::dispatcher::set_default(&dispatch);
            batch(&router, n, samples, seq).await;
        };
        // Alternate the order, so that neither mode always runs later.
        if round % 2 == 0 {
            with(&mut traced, &mut seq).await;
            batch(&router, n, &mut plain, &mut seq).await;
        } else {
            batch(&router, n, &mut plain, &mut seq).await;
            with(&mut traced, &mut seq).await;
        }
    }
    let exported = spans.load(Ordering::Relaxed) - baseline;
    let spans_per_request = exported as f64 / traced.len() as f64;

    let a0 = summary(&mut pristine);
    let a = summary(&mut plain);
    let b = summary(&mut traced);
    if !config.bench {
        println!("redirect smoke (run `cargo bench --bench redirect` for figures)");
    }
    println!(
        "redirect: GET /{{slug}} (KV get + click INSERT on SQLite WAL), sequential, current-thread runtime, {} rounds x {n}",
        config.rounds
    );
    println!();
    println!(
        "{:<52} {:>7} {:>10} {:>10} {:>10}",
        "mode", "n", "mean", "p50", "p99"
    );
    println!("{}", "-".repeat(93));
    for (name, s) in [
        ("(a) no subscriber (before any was installed)", &a0),
        ("(a) no subscriber (between the (b) rounds)", &a),
        ("(b) production layer, spans exported and dropped", &b),
    ] {
        println!(
            "{:<52} {:>7} {:>7.1} µs {:>7.1} µs {:>7.1} µs",
            name,
            s.n,
            us(s.mean),
            us(s.p50),
            us(s.p99)
        );
    }
    let per = |x: Duration, y: Duration| us(x) - us(y);
    println!();
    println!(
        "spans exported per redirect in (b): {spans_per_request:.2} (expected {EXPECTED_SPANS})"
    );
    println!(
        "span cost per request (b - a): mean {:+.1} µs, p50 {:+.1} µs; per span: mean {:+.1} µs, p50 {:+.1} µs",
        per(b.mean, a.mean),
        per(b.p50, a.p50),
        per(b.mean, a.mean) / spans_per_request.max(1.0),
        per(b.p50, a.p50) / spans_per_request.max(1.0),
    );

    if (spans_per_request - EXPECTED_SPANS as f64).abs() > 0.01 {
        eprintln!(
            "redirect: expected {EXPECTED_SPANS} spans per redirect, got {spans_per_request:.2}"
        );
        std::process::exit(1);
    }
}
