//! The API contract of README.md over real HTTP: every route, every status
//! and every refusal code, against a real `spin up` of the built component.

use std::collections::BTreeSet;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ensure;
use crate::harness::{CHROME, GOOGLEBOT, Reply, SpinApp, SpinBuilder, TOKEN, raw_request, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "contract::the_api_contract_holds_under_a_real_spin_up",
            the_api_contract_holds_under_a_real_spin_up,
        ),
        trial(
            "contract::every_create_refusal_of_the_readme_has_its_status_and_code",
            every_create_refusal_of_the_readme_has_its_status_and_code,
        ),
        trial(
            "contract::paging_lists_every_link_once_in_a_stable_order",
            paging_lists_every_link_once_in_a_stable_order,
        ),
        trial(
            "contract::stats_refuse_bad_dates_and_unknown_slugs",
            stats_refuse_bad_dates_and_unknown_slugs,
        ),
        trial(
            "contract::an_expired_link_answers_410_and_records_no_click",
            an_expired_link_answers_410_and_records_no_click,
        ),
        trial(
            "contract::a_128_kb_user_agent_is_answered_and_counted_as_the_browser_its_first_kilobyte_names",
            a_128_kb_user_agent_is_answered_and_counted_as_the_browser_its_first_kilobyte_names,
        ),
        trial(
            "contract::auth_refusals_are_401_with_their_codes",
            auth_refusals_are_401_with_their_codes,
        ),
        trial(
            "contract::redirect_status_and_slug_length_variables_take_effect",
            redirect_status_and_slug_length_variables_take_effect,
        ),
        trial(
            "contract::a_bad_redirect_status_answers_500_misconfigured_naming_it",
            a_bad_redirect_status_answers_500_misconfigured_naming_it,
        ),
        trial(
            "contract::unknown_routes_and_methods_get_json_errors",
            unknown_routes_and_methods_get_json_errors,
        ),
    ]
}

/// The `error.code` of a JSON error body.
pub fn code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or("<no error code>")
        .to_owned()
}

fn the_api_contract_holds_under_a_real_spin_up() -> Result<(), Failed> {
    let spin = SpinApp::up();

    // Health checks both stores.
    let health = spin.request("GET", "/health", &[], None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(
        health.json()["checks"],
        json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"})
    );

    // Create: random and custom slugs; Location; the README's body.
    let created = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/e2e"})),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let random = body["slug"].as_str().unwrap().to_owned();
    assert_eq!(random.len(), 7);
    assert!(
        random.chars().all(|c| c.is_ascii_alphanumeric()),
        "{random}"
    );
    assert_eq!(body["short_url"], format!("https://sho.rt/{random}"));
    assert_eq!(body["url"], "https://example.com/e2e");
    assert!(
        OffsetDateTime::parse(body["created_at"].as_str().unwrap(), &Rfc3339).is_ok(),
        "{body}"
    );
    assert_eq!(body["expires_at"], Value::Null);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/links/{random}").as_str())
    );
    let custom = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.org/", "slug": "e2e-custom"})),
    );
    assert_eq!(custom.status, 201);
    assert_eq!(custom.json()["slug"], "e2e-custom");

    // An existing slug is never overwritten.
    let dup = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://other.org/", "slug": "e2e-custom"})),
    );
    assert_eq!(dup.status, 409);
    assert_eq!(code(&dup), "slug_taken");

    // Redirects: GET counts, HEAD answers the same and does not, unknown is 404.
    for _ in 0..3 {
        let r = spin.request("GET", "/e2e-custom", &[("User-Agent", CHROME)], None);
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://example.org/"));
        assert_eq!(r.header("cache-control"), Some("private, no-store"));
    }
    let bot = spin.request("GET", "/e2e-custom", &[("User-Agent", GOOGLEBOT)], None);
    assert_eq!(bot.status, 302);
    let head = spin.request("HEAD", "/e2e-custom", &[("User-Agent", CHROME)], None);
    assert_eq!(head.status, 302);
    assert_eq!(head.header("location"), Some("https://example.org/"));
    assert_eq!(head.header("cache-control"), Some("private, no-store"));
    let miss = spin.request("GET", "/nope-nope", &[], None);
    assert_eq!(miss.status, 404);
    assert_eq!(code(&miss), "not_found");
    assert_eq!(spin.request("HEAD", "/nope-nope", &[], None).status, 404);
    // Not a valid slug at all: still a plain 404.
    assert_eq!(spin.request("GET", "/a", &[], None).status, 404);

    // Get one: the link plus every click (bots included).
    let link = spin.api("GET", "/api/links/e2e-custom", None);
    assert_eq!(link.status, 200);
    assert_eq!(link.json()["clicks"], 4);
    assert_eq!(link.json()["url"], "https://example.org/");
    assert_eq!(link.json()["short_url"], "https://sho.rt/e2e-custom");
    let unknown = spin.api("GET", "/api/links/no-such-link", None);
    assert_eq!((unknown.status, code(&unknown)), (404, "not_found".into()));

    // Stats.
    let stats = spin.api("GET", "/api/links/e2e-custom/stats", None);
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["slug"], "e2e-custom");
    assert_eq!(
        (
            stats["total"].clone(),
            stats["humans"].clone(),
            stats["bots"].clone()
        ),
        (json!(4), json!(3), json!(1))
    );
    // One Chrome on one IP is one visitor, Googlebot another.
    assert_eq!(stats["unique_visitors"], 2);
    let today = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(stats["daily"][0]["date"], today.as_str(), "{stats}");
    assert_eq!(stats["daily"][0]["clicks"], 4);
    assert_eq!(stats["browsers"][0], json!({"name": "Chrome", "clicks": 3}));
    for key in ["referrers", "operating_systems"] {
        assert!(stats[key].is_array(), "{key}: {stats}");
    }

    // Metrics are read from SQLite, in OpenMetrics text.
    let metrics = spin.request("GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.contains("text/plain") || t.contains("openmetrics")),
        "{:?}",
        metrics.headers
    );
    for line in [
        "shortener_clicks_total{kind=\"human\"} 3",
        "shortener_clicks_total{kind=\"bot\"} 1",
        "shortener_links 2",
    ] {
        assert!(metrics.body.contains(line), "{line}\n{}", metrics.body);
    }

    // Delete removes the link and its clicks; a second delete is 404.
    assert_eq!(
        spin.api("DELETE", "/api/links/e2e-custom", None).status,
        204
    );
    assert_eq!(spin.request("GET", "/e2e-custom", &[], None).status, 404);
    assert_eq!(spin.api("GET", "/api/links/e2e-custom", None).status, 404);
    assert_eq!(
        spin.api("GET", "/api/links/e2e-custom/stats", None).status,
        404
    );
    assert_eq!(
        spin.api("DELETE", "/api/links/e2e-custom", None).status,
        404
    );
    // The slug is free again, and the new link starts with no clicks.
    spin.create(json!({"url": "https://example.net/", "slug": "e2e-custom"}))?;
    assert_eq!(
        spin.api("GET", "/api/links/e2e-custom", None).json()["clicks"],
        0
    );
    // Clicks of deleted links stay in the all-time counter.
    let metrics = spin.get("/metrics").body;
    assert!(
        metrics.contains("shortener_clicks_total{kind=\"human\"} 3"),
        "{metrics}"
    );
    Ok(())
}

fn every_create_refusal_of_the_readme_has_its_status_and_code() -> Result<(), Failed> {
    let spin = SpinApp::up();
    spin.create(json!({"url": "https://e.com/", "slug": "taken"}))?;
    let past = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    let cases = [
        (json!({"url": "ftp://x.org/"}), 400, "invalid_url"),
        (json!({"url": "not a url"}), 400, "invalid_url"),
        (json!({"url": "https://user:pw@e.com/"}), 400, "invalid_url"),
        (
            json!({"url": format!("https://e.com/{}", "a".repeat(2100))}),
            400,
            "invalid_url",
        ),
        (
            json!({"url": "https://sho.rt/abc"}),
            400,
            "self_referencing_url",
        ),
        (
            json!({"url": "https://e.com", "slug": "ab"}),
            400,
            "invalid_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "has space"}),
            400,
            "invalid_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "x".repeat(65)}),
            400,
            "invalid_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "api"}),
            400,
            "reserved_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "Health"}),
            400,
            "reserved_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "METRICS"}),
            400,
            "reserved_slug",
        ),
        (
            json!({"url": "https://e.com", "slug": "console"}),
            400,
            "reserved_slug",
        ),
        (
            json!({"url": "https://SHO.RT./abc"}),
            400,
            "self_referencing_url",
        ),
        (
            json!({"url": "https://e.com", "expires_at": "tomorrow"}),
            400,
            "invalid_timestamp",
        ),
        (
            json!({"url": "https://e.com", "expires_at": past}),
            400,
            "invalid_expiry",
        ),
        (json!({"slug": "no-url"}), 400, "invalid_json"),
        (json!({"url": 42}), 400, "invalid_json"),
        (
            json!({"url": "https://e.com", "colour": "red"}),
            400,
            "invalid_json",
        ),
        (
            json!({"url": "https://other.org/", "slug": "taken"}),
            409,
            "slug_taken",
        ),
        (
            json!({"url": "https://e.com", "slug": "x".repeat(17000)}),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, expected) in cases {
        let r = spin.api("POST", "/api/links", Some(body.clone()));
        let shown: String = body.to_string().chars().take(80).collect();
        ensure!(
            (r.status, code(&r)) == (status, expected.to_owned()),
            "{shown}: expected {status} {expected}, got {} {}",
            r.status,
            r.body
        );
    }
    let auth = format!("Bearer {TOKEN}");
    for raw in ["{", "", "[1,2]"] {
        let r = spin.request(
            "POST",
            "/api/links",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(raw),
        );
        ensure!(
            (r.status, code(&r)) == (400, "invalid_json".into()),
            "{raw:?}: {} {}",
            r.status,
            r.body
        );
    }
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(t) = content_type {
            headers.push(("Content-Type", t));
        }
        let r = spin.request(
            "POST",
            "/api/links",
            &headers,
            Some(r#"{"url":"https://e.com"}"#),
        );
        ensure!(
            (r.status, code(&r)) == (415, "unsupported_media_type".into()),
            "{content_type:?}: {} {}",
            r.status,
            r.body
        );
    }
    // Nothing refused was stored: only `taken` exists, still with its URL.
    let list = spin.api("GET", "/api/links?limit=100", None).json();
    let links = list["links"].as_array().cloned().unwrap_or_default();
    ensure!(
        links.len() == 1 && links[0]["url"] == "https://e.com/",
        "{list}"
    );
    Ok(())
}

fn paging_lists_every_link_once_in_a_stable_order() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let mut made = BTreeSet::new();
    for i in 0..7 {
        made.insert(
            spin.create(json!({"url": format!("https://e.com/{i}"), "slug": format!("page-{i}")}))?,
        );
    }
    for _ in 0..3 {
        made.insert(spin.create(json!({"url": "https://e.com/random"}))?);
    }
    // Default page size is 20: all ten at once, no next page.
    let all = spin.api("GET", "/api/links", None).json();
    ensure!(all["links"].as_array().map(Vec::len) == Some(10), "{all}");
    ensure!(all["next_cursor"].is_null(), "{all}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/links?limit=3&cursor={c}"),
            None => "/api/links?limit=3".to_owned(),
        };
        let page = spin.api("GET", &path, None);
        ensure!(page.status == 200, "{path}: {}", page.body);
        let page = page.json();
        let links = page["links"].as_array().cloned().unwrap_or_default();
        ensure!(links.len() <= 3, "{page}");
        seen.extend(links.iter().map(|l| l["slug"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    ensure!(unique.len() == seen.len(), "a link came twice: {seen:?}");
    ensure!(unique == made, "listed {seen:?}, made {made:?}");
    let again: Vec<String> = spin.api("GET", "/api/links?limit=100", None).json()["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slug"].as_str().unwrap().to_owned())
        .collect();
    ensure!(
        again == seen,
        "the order is not stable: {again:?} vs {seen:?}"
    );
    for (query, expected) in [
        ("limit=0", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=not%20a%20slug", "invalid_cursor"),
    ] {
        let r = spin.api("GET", &format!("/api/links?{query}"), None);
        ensure!(
            (r.status, code(&r)) == (400, expected.into()),
            "{query}: {} {}",
            r.status,
            r.body
        );
    }
    Ok(())
}

fn stats_refuse_bad_dates_and_unknown_slugs() -> Result<(), Failed> {
    let spin = SpinApp::up();
    spin.create(json!({"url": "https://e.com/", "slug": "dated"}))?;
    spin.request("GET", "/dated", &[("User-Agent", CHROME)], None);
    let today = OffsetDateTime::now_utc().date();
    let ok = spin.api(
        "GET",
        &format!("/api/links/dated/stats?from={today}&to={today}"),
        None,
    );
    ensure!(ok.status == 200 && ok.json()["total"] == 1, "{}", ok.body);
    let before = spin.api("GET", "/api/links/dated/stats?to=2000-01-01", None);
    ensure!(
        before.status == 200 && before.json()["total"] == 0,
        "{}",
        before.body
    );
    for (query, expected) in [
        ("from=yesterday", "invalid_date"),
        ("to=2026-13-01", "invalid_date"),
        ("from=2026-02-10&to=2026-02-01", "invalid_date_range"),
    ] {
        let r = spin.api("GET", &format!("/api/links/dated/stats?{query}"), None);
        ensure!(
            (r.status, code(&r)) == (400, expected.into()),
            "{query}: {} {}",
            r.status,
            r.body
        );
    }
    let r = spin.api("GET", "/api/links/undated/stats", None);
    ensure!(
        (r.status, code(&r)) == (404, "not_found".into()),
        "{}",
        r.body
    );
    Ok(())
}

fn an_expired_link_answers_410_and_records_no_click() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let soon = (OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&Rfc3339)
        .unwrap();
    let r = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://e.com/", "slug": "soon-gone", "expires_at": soon})),
    );
    ensure!(r.status == 201, "{}", r.body);
    ensure!(r.json()["expires_at"].is_string(), "{}", r.body);
    std::thread::sleep(Duration::from_secs(3));
    for method in ["GET", "HEAD"] {
        let gone = spin.request(method, "/soon-gone", &[("User-Agent", CHROME)], None);
        ensure!(
            gone.status == 410,
            "{method}: {} {}",
            gone.status,
            gone.body
        );
        // Not cacheable: the expiry may be cleared.
        ensure!(
            gone.header("cache-control") == Some("private, no-store"),
            "{method} 410: cache-control {:?}",
            gone.header("cache-control")
        );
    }
    let gone = spin.get("/soon-gone");
    ensure!(code(&gone) == "link_expired", "{}", gone.body);
    let link = spin.api("GET", "/api/links/soon-gone", None);
    ensure!(
        link.status == 200 && link.json()["clicks"] == 0,
        "{}",
        link.body
    );
    Ok(())
}

/// Issue 22's hostile agent (`"Windows " × n`, quadratic in the old matcher:
/// 1.9 s of CPU at 128 kB) after a browser's agent: only the first
/// 1024 bytes are read, so every visit is a human Chrome on Windows 10.
/// The time of each request is printed (a figure, not an assertion).
fn a_128_kb_user_agent_is_answered_and_counted_as_the_browser_its_first_kilobyte_names()
-> Result<(), Failed> {
    let spin = SpinApp::up();
    let r = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://e.com/", "slug": "long-agent"})),
    );
    ensure!(r.status == 201, "{}", r.body);
    let sizes_kb = [8usize, 32, 64, 128];
    for kb in sizes_kb {
        for (kind, agent) in [
            ("windows", "Windows ".repeat(kb * 1024 / 8)),
            (
                "chrome+windows",
                format!("{CHROME} {}", "Windows ".repeat(kb * 1024 / 8)),
            ),
        ] {
            let started = std::time::Instant::now();
            // Raw HTTP: ureq's buffers hold no 128 kB header.
            let r = raw_request(spin.port, "GET", "/long-agent", &[("User-Agent", &agent)]);
            eprintln!(
                "{kb:>4} kB {kind:<15} {} in {:.3} s",
                r.status,
                started.elapsed().as_secs_f64()
            );
            ensure!(r.status == 302, "{kb} kB {kind}: {} {}", r.status, r.body);
        }
    }
    let stats = spin.api("GET", "/api/links/long-agent/stats", None).json();
    let clicks = 2 * sizes_kb.len();
    ensure!(stats["total"] == clicks, "{stats}");
    ensure!(
        stats["humans"] == clicks,
        "no hostile agent is a bot: {stats}"
    );
    let browsers = &stats["browsers"];
    let chrome = browsers
        .as_array()
        .and_then(|b| b.iter().find(|e| e["name"] == "Chrome"))
        .map(|e| e["clicks"].clone());
    ensure!(chrome == Some(json!(sizes_kb.len())), "{browsers}");
    Ok(())
}

fn auth_refusals_are_401_with_their_codes() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let routes = [
        ("GET", "/api/links"),
        ("POST", "/api/links"),
        ("GET", "/api/links/some-slug"),
        ("DELETE", "/api/links/some-slug"),
        ("GET", "/api/links/some-slug/stats"),
    ];
    for (method, path) in routes {
        for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            let r = spin.request(method, path, &headers, None);
            ensure!(
                (r.status, code(&r)) == (401, "unauthorized".into()),
                "{method} {path} with {auth:?}: {} {}",
                r.status,
                r.body
            );
        }
    }
    // The scheme is case-insensitive.
    let lower = spin.request(
        "GET",
        "/api/links",
        &[("Authorization", &format!("bearer {TOKEN}"))],
        None,
    );
    ensure!(lower.status == 200, "{}", lower.body);
    drop(spin);

    // No token configured: the API is off.
    let off = SpinBuilder::default().variable("admin_token", "").start();
    for (method, path) in routes {
        let r = off.api(method, path, None);
        ensure!(
            (r.status, code(&r)) == (401, "api_disabled".into()),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    // Redirects and health do not need it.
    ensure!(off.get("/health").status == 200, "health");
    Ok(())
}

fn redirect_status_and_slug_length_variables_take_effect() -> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .variable("redirect_status", "308")
        .variable("slug_length", "12")
        .start();
    let slug = spin.create(json!({"url": "https://e.com/moved"}))?;
    ensure!(slug.len() == 12, "{slug}");
    let r = spin.get(&format!("/{slug}"));
    ensure!(r.status == 308, "{}", r.status);
    ensure!(
        r.header("location") == Some("https://e.com/moved"),
        "{:?}",
        r.headers
    );
    Ok(())
}

fn a_bad_redirect_status_answers_500_misconfigured_naming_it() -> Result<(), Failed> {
    // The api component does not read redirect_status: it still works.
    let spin = SpinBuilder::default()
        .variable("redirect_status", "200")
        .start();
    let r = spin.get("/anything");
    ensure!(
        (r.status, code(&r)) == (500, "misconfigured".into()),
        "{} {}",
        r.status,
        r.body
    );
    ensure!(r.body.contains("redirect_status"), "{}", r.body);
    let log = spin.log_text();
    ensure!(log.contains("redirect_status"), "Spin's log: {log}");
    let health = spin.get("/health");
    ensure!(health.status == 200, "the api component: {}", health.body);
    Ok(())
}

fn unknown_routes_and_methods_get_json_errors() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let r = spin.api("GET", "/api/nothing-here", None);
    ensure!(
        (r.status, code(&r)) == (404, "not_found".into()),
        "{} {}",
        r.status,
        r.body
    );
    for (method, path) in [
        ("PUT", "/api/links"),
        ("POST", "/api/links/some-slug"),
        ("POST", "/health"),
        ("DELETE", "/metrics"),
    ] {
        let r = spin.api(method, path, None);
        ensure!(
            (r.status, code(&r)) == (405, "method_not_allowed".into()),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    // Spin's own liveness endpoint answers too.
    ensure!(
        spin.get("/.well-known/spin/health").status == 200,
        "spin health"
    );
    Ok(())
}
