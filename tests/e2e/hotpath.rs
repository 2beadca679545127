//! The redirect hot path under concurrency on a real `spin up`.
//!
//! Spin runs up to 16 requests of an instance at once and creates new
//! instances under load; a request that waits on a Rust-only future of
//! another request traps the whole instance (docs/spin-platform.md §4), which showed as
//! 3–5 % of redirects answered 500 on their instance's first requests. With
//! `--max-instance-reuse-count 4` nearly every request lands on a young
//! instance, so that window is hit again and again.

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::drive::Oha;
use crate::harness::{CHROME, SpinBuilder, trial};

/// Requests fired by oha, 32 at a time.
const REQUESTS: u64 = 2000;

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "concurrent_first_requests_of_young_instances_all_redirect_and_every_302_is_one_click",
        concurrent_first_requests_of_young_instances_all_redirect_and_every_302_is_one_click,
    )]
}

fn concurrent_first_requests_of_young_instances_all_redirect_and_every_302_is_one_click()
-> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .args(&["--max-instance-reuse-count", "4"])
        .start();
    let created = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/hot", "slug": "hot-path"})),
    );
    crate::ensure!(created.status == 201, "create: {}", created.body);

    let run = Oha::new(vec![format!("{}/hot-path", spin.base())], REQUESTS, 32)
        .header("User-Agent", CHROME)
        .run();
    let redirects = run.total(302);
    crate::ensure!(
        redirects == REQUESTS,
        "every request must answer 302; statuses {:?}, errors {:?}\n{}",
        run.statuses,
        run.errors,
        spin.log_text()
    );

    let link = spin.api("GET", "/api/links/hot-path", None).json();
    crate::ensure!(
        link["clicks"].as_u64() == Some(redirects),
        "clicks recorded {} != 302s served {redirects}",
        link["clicks"]
    );
    let stats = spin.api("GET", "/api/links/hot-path/stats", None).json();
    crate::ensure!(
        stats["total"].as_u64() == Some(redirects) && stats["humans"].as_u64() == Some(redirects),
        "stats disagree with the 302s served ({redirects}): {stats}"
    );
    Ok(())
}
