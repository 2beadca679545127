//! Real neighbours, started by the test from Debian's packages: redis-server
//! as the key-value store, Caddy in front with the project's Caddyfile, and
//! a real Prometheus scraping `/metrics`.

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::ensure;
use crate::harness::{
    CHROME, Caddy, GOOGLEBOT, Prometheus, Redis, SpinBuilder, caddyfile_for_test, free_port,
    raw_request, try_request, write_runtime_config,
};

pub fn trials() -> Vec<Trial> {
    vec![
        crate::harness::trial(
            "neighbours::links_land_in_a_real_redis_through_the_runtime_config",
            links_land_in_a_real_redis_through_the_runtime_config,
        ),
        crate::harness::trial(
            "neighbours::behind_caddy_a_spoofed_x_forwarded_for_changes_no_visitor",
            behind_caddy_a_spoofed_x_forwarded_for_changes_no_visitor,
        ),
        crate::harness::trial(
            "neighbours::metrics_and_health_are_not_reachable_through_caddy_under_any_spelling",
            metrics_and_health_are_not_reachable_through_caddy_under_any_spelling,
        ),
        crate::harness::trial(
            "neighbours::prometheus_scrapes_clicks_total_equal_to_the_clicks_served",
            prometheus_scrapes_clicks_total_equal_to_the_clicks_served,
        ),
    ]
}

fn links_land_in_a_real_redis_through_the_runtime_config() -> Result<(), Failed> {
    let redis = Redis::start();
    let dir = tempfile::tempdir()?;
    let rc = write_runtime_config(
        dir.path(),
        Some(&redis.url()),
        &dir.path().join("clicks.db"),
    );
    let spin = SpinBuilder::default().runtime_config(&rc).start();
    spin.create(json!({"url": "https://example.com/in-redis", "slug": "in-redis"}))?;
    let keys = redis.cli(&["KEYS", "*"]);
    ensure!(keys.contains("link:in-redis"), "redis keys: {keys:?}");
    let stored = redis.cli(&["GET", "link:in-redis"]);
    ensure!(
        stored.contains("https://example.com/in-redis"),
        "stored value: {stored:?}"
    );
    let r = spin.request("GET", "/in-redis", &[("User-Agent", CHROME)], None);
    ensure!(r.status == 302, "{} {}", r.status, r.body);
    ensure!(
        r.header("location") == Some("https://example.com/in-redis"),
        "{:?}",
        r.headers
    );
    // Clicks go to SQLite, not Redis: the click was recorded there.
    ensure!(
        spin.api("GET", "/api/links/in-redis", None).json()["clicks"] == 1,
        "clicks"
    );
    // Deleting removes the key from Redis.
    ensure!(
        spin.api("DELETE", "/api/links/in-redis", None).status == 204,
        "delete"
    );
    let keys = redis.cli(&["KEYS", "link:*"]);
    ensure!(!keys.contains("link:in-redis"), "after delete: {keys:?}");
    Ok(())
}

fn behind_caddy_a_spoofed_x_forwarded_for_changes_no_visitor() -> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .variable("trusted_proxy_hops", "1")
        .start();
    let proxy_port = free_port();
    let _caddy = Caddy::start(&caddyfile_for_test(proxy_port, spin.port), proxy_port);
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    spin.create(json!({"url": "https://e.com/", "slug": "proxied"}))?;
    spin.create(json!({"url": "https://e.com/", "slug": "direct"}))?;

    // Through Caddy: five different spoofed addresses, one real client.
    for i in 1..=5 {
        let xff = format!("203.0.113.{i}");
        let r = try_request(
            &proxy,
            "GET",
            "/proxied",
            &[("User-Agent", CHROME), ("X-Forwarded-For", &xff)],
            None,
        )?;
        ensure!(r.status == 302, "through caddy: {} {}", r.status, r.body);
    }
    let stats = spin.api("GET", "/api/links/proxied/stats", None).json();
    ensure!(stats["total"] == 5, "{stats}");
    ensure!(
        stats["unique_visitors"] == 1,
        "a spoofed X-Forwarded-For chose the visitor: {stats}"
    );

    // Control: straight to Spin with trusted_proxy_hops = 1 the header is
    // believed, so the same five values are five visitors (the test above
    // would notice a proxy that passed them through).
    for i in 1..=5 {
        let xff = format!("203.0.113.{i}");
        let r = spin.request(
            "GET",
            "/direct",
            &[("User-Agent", CHROME), ("X-Forwarded-For", &xff)],
            None,
        );
        ensure!(r.status == 302, "direct: {}", r.status);
    }
    let stats = spin.api("GET", "/api/links/direct/stats", None).json();
    ensure!(stats["unique_visitors"] == 5, "{stats}");
    Ok(())
}

fn metrics_and_health_are_not_reachable_through_caddy_under_any_spelling() -> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .variable("trusted_proxy_hops", "1")
        .start();
    let proxy_port = free_port();
    let _caddy = Caddy::start(&caddyfile_for_test(proxy_port, spin.port), proxy_port);
    // Control: the app serves it directly, and the proxy does proxy.
    let direct = raw_request(spin.port, "GET", "/metrics", &[]);
    ensure!(
        direct.status == 200 && direct.body.contains("shortener_clicks_total"),
        "direct /metrics: {} {}",
        direct.status,
        direct.body
    );
    let direct = raw_request(spin.port, "GET", "/health", &[]);
    ensure!(
        direct.status == 200 && direct.body.contains("\"checks\""),
        "direct /health: {} {}",
        direct.status,
        direct.body
    );
    let proxied = raw_request(proxy_port, "GET", "/api/openapi.json", &[]);
    ensure!(
        proxied.status == 200,
        "caddy proxies the API: {}",
        proxied.status
    );

    let spellings = [
        "/metrics",
        "/METRICS",
        "/Metrics",
        "/metrics/",
        "/metrics/x",
        "//metrics",
        "///metrics",
        "/%6detrics",
        "/%6Detrics",
        "/%4detrics",
        "/metric%73",
        "/%2fmetrics",
        "/%2Fmetrics",
        "/./metrics",
        "/.//metrics",
        "/x/../metrics",
        "/api/../metrics",
        "/%2e/metrics",
        "/metrics/.",
        "/metrics/..",
        "/metrics?x",
        "/metrics?format=prometheus",
        "/metrics#x",
        "/metrics;x",
        "/metrics%3Bx",
        "/metrics%00",
        "/metrics%20",
        "/metrics.",
        "http://127.0.0.1/metrics",
    ];
    // Every spelling of /metrics, and the same spellings of /health.
    let health_spellings: Vec<String> = spellings
        .iter()
        .map(|p| {
            p.replace("metrics", "health")
                .replace("METRICS", "HEALTH")
                .replace("Metrics", "Health")
                .replace("%6detrics", "%68ealth")
                .replace("%6Detrics", "%68ealth")
                .replace("%4detrics", "%48ealth")
                .replace("metric%73", "healt%68")
        })
        .collect();
    let mut leaked = Vec::new();
    let every = spellings
        .iter()
        .copied()
        .chain(health_spellings.iter().map(String::as_str));
    for path in every {
        for method in ["GET", "HEAD"] {
            let r = raw_request(proxy_port, method, path, &[]);
            let metric_headers = r
                .header("content-type")
                .is_some_and(|t| t.contains("openmetrics") || t.contains("version=0.0.4"));
            let health_body = r.body.contains("\"checks\"");
            if r.body.contains("shortener_") || metric_headers || health_body {
                leaked.push(format!("{method} {path} -> {}", r.status));
            }
        }
    }
    ensure!(
        leaked.is_empty(),
        "/metrics or /health reached through Caddy: {leaked:?}"
    );
    Ok(())
}

fn prometheus_scrapes_clicks_total_equal_to_the_clicks_served() -> Result<(), Failed> {
    let spin = SpinBuilder::default().start();
    spin.create(json!({"url": "https://e.com/a", "slug": "scraped-a"}))?;
    spin.create(json!({"url": "https://e.com/b", "slug": "scraped-b"}))?;
    let mut served = (0u32, 0u32);
    for (slug, ua, n) in [
        ("scraped-a", CHROME, 7),
        ("scraped-b", CHROME, 4),
        ("scraped-a", GOOGLEBOT, 3),
    ] {
        for _ in 0..n {
            let r = spin.request("GET", &format!("/{slug}"), &[("User-Agent", ua)], None);
            if r.status == 302 {
                if ua == GOOGLEBOT {
                    served.1 += 1;
                } else {
                    served.0 += 1;
                }
            }
        }
    }
    // HEAD and misses are not clicks.
    spin.request("HEAD", "/scraped-a", &[("User-Agent", CHROME)], None);
    spin.request("GET", "/not-a-link", &[("User-Agent", CHROME)], None);
    ensure!(served == (11, 3), "served {served:?}");

    let prometheus = Prometheus::start(&[format!("127.0.0.1:{}", spin.port)]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = prometheus.query("shortener_clicks_total");
        let value = |kind: &str| {
            last.iter()
                .find(|(m, _)| m["kind"] == kind)
                .map(|(_, v)| *v)
        };
        if value("human").is_some() && value("bot").is_some() {
            ensure!(
                value("human") == Some(f64::from(served.0))
                    && value("bot") == Some(f64::from(served.1)),
                "prometheus has {last:?}, served {served:?}"
            );
            let up = prometheus.query("up{job=\"shortener\"}");
            ensure!(up.first().map(|(_, v)| *v) == Some(1.0), "up: {up:?}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("prometheus never scraped shortener_clicks_total: {last:?}").into())
}
