//! Clicks under load: bounded oha runs (fixed request counts, loopback)
//! against one link and against a Zipf mix of links, human and bot user
//! agents at once. Every redirect served must be exactly one click recorded,
//! per link and per kind, and no request may answer 5xx (the trap that
//! killed 3-5 % of redirects at c=32 would fail here).
//!
//! The runs print their throughput and p99; nothing asserts on timing.

use std::collections::BTreeMap;

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::drive::{Oha, OhaRun, zipf_urls};
use crate::ensure;
use crate::harness::{CHROME, GOOGLEBOT, SpinApp, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "load::every_redirect_served_to_one_link_under_load_is_one_click",
            every_redirect_served_to_one_link_under_load_is_one_click,
        ),
        trial(
            "load::a_zipf_mix_of_links_reconciles_per_link_for_humans_and_bots",
            a_zipf_mix_of_links_reconciles_per_link_for_humans_and_bots,
        ),
    ]
}

/// Connections of a load run (the figure the README's numbers use).
pub const CONNECTIONS: u32 = 32;

/// Fails unless every answer was one of `allowed` and no transport error
/// happened.
pub fn only(run: &OhaRun, allowed: &[u16], what: &str) -> Result<(), Failed> {
    ensure!(
        run.errors.is_empty(),
        "{what}: transport errors {:?}",
        run.errors
    );
    ensure!(
        run.server_errors() == 0,
        "{what}: {} answers were 5xx: {:?}",
        run.server_errors(),
        run.statuses
    );
    ensure!(
        run.statuses.keys().all(|s| allowed.contains(s)),
        "{what}: unexpected statuses {:?}",
        run.statuses
    );
    Ok(())
}

/// (humans, bots) recorded for `slug`, from the stats API.
pub fn recorded(spin: &SpinApp, slug: &str) -> Result<(u64, u64), Failed> {
    let r = spin.api("GET", &format!("/api/links/{slug}/stats"), None);
    ensure!(r.status == 200, "stats {slug}: {} {}", r.status, r.body);
    let s = r.json();
    Ok((
        s["humans"].as_u64().unwrap_or(u64::MAX),
        s["bots"].as_u64().unwrap_or(u64::MAX),
    ))
}

fn figures(what: &str, run: &OhaRun) {
    eprintln!(
        "figures: {what}: {:.0} requests/s, p99 {:.1} ms over {} requests",
        run.rps,
        run.p99_ms,
        run.answers()
    );
}

fn every_redirect_served_to_one_link_under_load_is_one_click() -> Result<(), Failed> {
    let spin = SpinApp::up();
    spin.create(json!({"url": "https://e.com/hot", "slug": "hot"}))?;
    let url = vec![format!("{}/hot", spin.base())];

    // Humans at c=32, then bots, then HEAD checkers (not clicks), then
    // unknown slugs (a key-value miss, no click).
    let humans = Oha::new(url.clone(), 3000, CONNECTIONS)
        .header("User-Agent", CHROME)
        .run();
    figures("redirect with its click write, c=32", &humans);
    only(&humans, &[302], "humans")?;
    let bots = Oha::new(url.clone(), 1000, CONNECTIONS)
        .header("User-Agent", GOOGLEBOT)
        .run();
    only(&bots, &[302], "bots")?;
    let heads = Oha::new(url, 500, CONNECTIONS / 2)
        .method("HEAD")
        .header("User-Agent", CHROME)
        .run();
    only(&heads, &[302], "HEAD")?;
    let misses = Oha::new(
        vec![format!("{}/not-a-link", spin.base())],
        3000,
        CONNECTIONS,
    )
    .header("User-Agent", CHROME)
    .run();
    figures("unknown slug (key-value miss, no click), c=32", &misses);
    only(&misses, &[404], "unknown slug")?;

    let (h, b) = recorded(&spin, "hot")?;
    ensure!(
        (h, b) == (humans.total(302), bots.total(302)),
        "recorded {h} human / {b} bot clicks; served {} / {} redirects",
        humans.total(302),
        bots.total(302)
    );
    let metrics = spin.get("/metrics").body;
    for line in [
        format!("shortener_clicks_total{{kind=\"human\"}} {h}"),
        format!("shortener_clicks_total{{kind=\"bot\"}} {b}"),
    ] {
        ensure!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    Ok(())
}

fn a_zipf_mix_of_links_reconciles_per_link_for_humans_and_bots() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let mut slugs = Vec::new();
    for i in 0..12 {
        slugs.push(spin.create(
            json!({"url": format!("https://e.com/{i}"), "slug": format!("zipf-{i:02}")}),
        )?);
    }
    let mut urls = zipf_urls(&spin.base(), &slugs, 190);
    // About 3 % unknown slugs.
    urls.extend(std::iter::repeat_n(format!("{}/zipf-none", spin.base()), 6));

    // Humans and bots at the same time, c=32 together.
    let humans = Oha::new(urls.clone(), 3000, CONNECTIONS / 2)
        .header("User-Agent", CHROME)
        .spawn();
    let bots = Oha::new(urls, 1500, CONNECTIONS / 2)
        .header("User-Agent", GOOGLEBOT)
        .spawn();
    let humans = humans.wait();
    let bots = bots.wait();
    figures("Zipf mix, humans (c=16 beside bots at c=16)", &humans);
    only(&humans, &[302, 404], "humans")?;
    only(&bots, &[302, 404], "bots")?;

    let mut wrong = BTreeMap::new();
    for slug in &slugs {
        let path = format!("/{slug}");
        let served = (humans.count(&path, 302), bots.count(&path, 302));
        let got = recorded(&spin, slug)?;
        if got != served {
            wrong.insert(slug.clone(), (served, got));
        }
    }
    ensure!(
        wrong.is_empty(),
        "per link ((served humans, bots), (recorded humans, bots)): {wrong:?}"
    );
    // The most popular link really was hit most, and the misses were misses.
    ensure!(
        humans.count("/zipf-00", 302) > humans.count("/zipf-11", 302),
        "not a Zipf mix: {:?}",
        humans.answered
    );
    ensure!(
        humans.count("/zipf-none", 404) > 0 && humans.count("/zipf-none", 302) == 0,
        "{:?}",
        humans.answered
    );
    Ok(())
}
