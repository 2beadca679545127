//! Redirect options on a real `spin up`: a click limit under concurrent
//! load across Spin instances (each its own SQLite connection), the rules
//! and query forwarding through Spin's HTTP stack, and orphan visits.

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::drive::Oha;
use crate::harness::{CHROME, SpinBuilder, trial};

/// The click limit, and the requests fired at it, 32 at a time.
const LIMIT: u64 = 100;
const REQUESTS: u64 = 600;

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "a_limited_link_under_concurrent_load_serves_exactly_max_clicks_302s_and_records_as_many_clicks",
            a_limited_link_under_concurrent_load_serves_exactly_max_clicks_302s_and_records_as_many_clicks,
        ),
        trial(
            "rules_forwarded_queries_and_orphan_visits_work_through_spin",
            rules_forwarded_queries_and_orphan_visits_work_through_spin,
        ),
    ]
}

fn a_limited_link_under_concurrent_load_serves_exactly_max_clicks_302s_and_records_as_many_clicks()
-> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .args(&["--max-instance-reuse-count", "8"])
        .start();
    let created = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/limited", "slug": "limited", "max_clicks": LIMIT})),
    );
    crate::ensure!(created.status == 201, "create: {}", created.body);

    let run = Oha::new(vec![format!("{}/limited", spin.base())], REQUESTS, 32)
        .header("User-Agent", CHROME)
        .run();
    let (served, exhausted) = (run.total(302), run.total(410));
    crate::ensure!(
        served == LIMIT && exhausted == REQUESTS - LIMIT,
        "exactly {LIMIT} 302s and the rest 410: statuses {:?}, errors {:?}\n{}",
        run.statuses,
        run.errors,
        spin.log_text()
    );
    let link = spin.api("GET", "/api/links/limited", None).json();
    crate::ensure!(
        link["clicks"].as_u64() == Some(LIMIT),
        "clicks recorded {} != {LIMIT}",
        link["clicks"]
    );
    let stats = spin.api("GET", "/api/links/limited/stats", None).json();
    crate::ensure!(stats["total"].as_u64() == Some(LIMIT), "stats: {stats}");
    // Every 410 of a GET is an orphan visit of its path.
    let orphans = spin.api("GET", "/api/orphans", None).json();
    crate::ensure!(
        orphans["total"].as_u64() == Some(exhausted) && orphans["paths"][0]["path"] == "/limited",
        "orphans: {orphans}"
    );
    Ok(())
}

fn rules_forwarded_queries_and_orphan_visits_work_through_spin() -> Result<(), Failed> {
    let spin = SpinBuilder::default().start();
    let created = spin.api(
        "POST",
        "/api/links",
        Some(
            json!({"url": "https://example.com/base?keep=1#frag", "slug": "ruled", "rules": [
                {"url": "https://example.com/android", "device": "android"},
                {"url": "https://example.com/german", "language": "de"},
            ]}),
        ),
    );
    crate::ensure!(created.status == 201, "create: {}", created.body);
    let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    // (request headers, path, expected Location)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 3] = [
        (
            &[("User-Agent", android)],
            "/ruled",
            "https://example.com/android",
        ),
        (
            &[
                ("User-Agent", CHROME),
                ("Accept-Language", "fr;q=0.9, de-CH;q=0.8"),
            ],
            "/ruled?utm_source=x",
            "https://example.com/german?utm_source=x",
        ),
        (
            &[("User-Agent", CHROME)],
            "/ruled?utm_source=y&a=%20b",
            "https://example.com/base?keep=1&utm_source=y&a=%20b#frag",
        ),
    ];
    for (headers, path, want) in cases {
        let r = spin.request("GET", path, headers, None);
        crate::ensure!(
            r.status == 302 && r.header("location") == Some(want),
            "{path}: {} {:?}",
            r.status,
            r.header("location")
        );
    }
    let stats = spin.api("GET", "/api/links/ruled/stats", None).json();
    crate::ensure!(
        stats["rules"] == json!([{"index": 0, "clicks": 1}, {"index": 1, "clicks": 1}])
            && stats["total"] == 3,
        "stats: {stats}"
    );
    for path in ["/nope", "/nope", "/x", "/wp-admin/setup.php"] {
        crate::ensure!(spin.get(path).status == 404, "{path}");
    }
    let orphans = spin.api("GET", "/api/orphans", None).json();
    crate::ensure!(
        orphans["total"] == 4 && orphans["paths"][0] == json!({"path": "/nope", "visits": 2}),
        "orphans: {orphans}"
    );
    Ok(())
}
