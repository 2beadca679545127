//! The API contract of README.md over real HTTP.

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::harness::{CHROME, SpinApp, TOKEN, trial};

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "the_api_contract_holds_under_a_real_spin_up",
        the_api_contract_holds_under_a_real_spin_up,
    )]
}

fn the_api_contract_holds_under_a_real_spin_up() -> Result<(), Failed> {
    let spin = SpinApp::up();

    // Health checks both stores.
    let health = spin.request("GET", "/health", &[], None);
    assert_eq!(
        health.json()["checks"],
        json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"})
    );

    // Auth.
    assert_eq!(spin.request("GET", "/api/links", &[], None).status, 401);

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
    let text = spin.request(
        "POST",
        "/api/links",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Content-Type", "text/plain"),
        ],
        Some("x"),
    );
    assert_eq!(text.status, 415);

    // Redirects: GET counts, HEAD does not, unknown is 404.
    for _ in 0..3 {
        let r = spin.request("GET", "/e2e-custom", &[("User-Agent", CHROME)], None);
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://example.org/"));
    }
    let bot = spin.request(
        "GET",
        "/e2e-custom",
        &[("User-Agent", "Googlebot/2.1")],
        None,
    );
    assert_eq!(bot.status, 302);
    let head = spin.request("HEAD", "/e2e-custom", &[("User-Agent", CHROME)], None);
    assert_eq!(head.status, 302);
    assert_eq!(spin.request("GET", "/nope-nope", &[], None).status, 404);

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
    let metrics = spin.request("GET", "/metrics", &[], None);
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
    assert_eq!(spin.request("GET", "/e2e-custom", &[], None).status, 404);
    assert_eq!(
        spin.api("DELETE", "/api/links/e2e-custom", None).status,
        404
    );
    Ok(())
}
