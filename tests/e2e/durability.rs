//! Durability: Spin stopped under load (SIGTERM, then SIGKILL: a crash), then
//! `spin up` again on the same state dir. Every link still redirects, and no
//! acknowledged click is missing: per link, the clicks recorded are at least
//! the 302s oha received, and in total at most those plus the requests that
//! were in flight when Spin died (a click committed whose answer never
//! arrived), never more than the requests sent.
//!
//! WAL + `synchronous=NORMAL` promises exactly this for a process crash.

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::drive::{Oha, zipf_urls};
use crate::ensure;
use crate::harness::{CHROME, GOOGLEBOT, SpinBuilder, trial};
use crate::load::recorded;

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "durability::after_sigterm_under_load_no_acknowledged_click_is_missing",
            || stopped_under_load("TERM"),
        ),
        trial(
            "durability::after_sigkill_under_load_no_acknowledged_click_is_missing",
            || stopped_under_load("KILL"),
        ),
    ]
}

const REQUESTS: u64 = 6000;
const CONNECTIONS: u32 = 16;

fn stopped_under_load(signal: &str) -> Result<(), Failed> {
    let state = tempfile::tempdir()?;
    let mut spin = SpinBuilder::default().state_dir(state.path()).start();
    let mut slugs = Vec::new();
    for i in 0..8 {
        slugs.push(spin.create(
            json!({"url": format!("https://e.com/{i}"), "slug": format!("durable-{i}")}),
        )?);
    }
    let urls = zipf_urls(&spin.base(), &slugs, 64);
    let mut humans = Oha::new(urls.clone(), REQUESTS, CONNECTIONS)
        .header("User-Agent", CHROME)
        .spawn();
    let mut bots = Oha::new(urls, REQUESTS / 3, CONNECTIONS / 2)
        .header("User-Agent", GOOGLEBOT)
        .spawn();

    // Stop Spin once clicks are flowing (well before oha would finish on
    // its own at any speed this machine reaches), from the clicks the app
    // itself counts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let clicks: u64 = spin
            .get("/metrics")
            .body
            .lines()
            .filter(|l| l.starts_with("shortener_clicks_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        if clicks >= 500 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_running = humans.running() && bots.running();
    spin.stop_with(signal);
    let humans = humans.wait();
    let bots = bots.wait();
    // Spin does not drain on SIGTERM: requests in flight then are answered
    // 500 or cut off. None of them was acknowledged; each may or may not
    // have committed its click.
    let failed = humans.server_errors() + bots.server_errors();
    let cut = humans.errors.values().sum::<u64>() + bots.errors.values().sum::<u64>();
    let summary = format!(
        "SIG{signal}: humans {:?}, bots {:?}, {cut} transport errors {:?}",
        humans.statuses, bots.statuses, humans.errors
    );
    eprintln!("durability {summary}");
    ensure!(
        still_running,
        "oha finished before Spin was stopped: nothing was in flight; {summary}"
    );
    ensure!(
        humans.total(302) + bots.total(302) > 0,
        "no redirect was acknowledged"
    );

    // The same state dir again.
    let spin = SpinBuilder::default().state_dir(state.path()).start();
    let mut extra_total = 0u64;
    let mut report = Vec::new();
    for slug in &slugs {
        let path = format!("/{slug}");
        // HEAD redirects without recording a click.
        let head = spin.request("HEAD", &path, &[("User-Agent", CHROME)], None);
        ensure!(
            head.status == 302,
            "{slug} no longer redirects: {}; {summary}",
            head.status
        );
        let acked = (humans.count(&path, 302), bots.count(&path, 302));
        let got = recorded(&spin, slug)?;
        report.push(format!("{slug}: acked {acked:?} recorded {got:?}"));
        ensure!(
            got.0 >= acked.0 && got.1 >= acked.1,
            "acknowledged clicks are missing after SIG{signal}: {report:?}; {summary}"
        );
        extra_total += (got.0 - acked.0) + (got.1 - acked.1);
    }
    // A recorded click without a 302 can only belong to a request that got
    // a 5xx, or to one still in flight when Spin died (at most one per
    // connection).
    let in_flight = u64::from(CONNECTIONS + CONNECTIONS / 2);
    ensure!(
        extra_total <= in_flight + failed,
        "{extra_total} clicks recorded beyond the acknowledged ones (at most {in_flight} in flight + {failed} answered 5xx): {report:?}; {summary}"
    );
    let sent = REQUESTS + REQUESTS / 3;
    let acked_total = humans.total(302) + bots.total(302);
    ensure!(
        acked_total + extra_total <= sent,
        "more clicks than requests"
    );
    eprintln!(
        "durability after SIG{signal}: {acked_total} redirects acknowledged, {extra_total} more clicks recorded (in flight), {failed} answered 5xx, {cut} failed at the transport"
    );
    // And it keeps working.
    let r = spin.request("GET", "/durable-0", &[("User-Agent", CHROME)], None);
    ensure!(r.status == 302, "after restart: {}", r.status);
    Ok(())
}
