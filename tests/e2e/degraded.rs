//! Broken data and refused configuration under a real `spin up`:
//!
//! * garbage written into a link's value in Spin's key-value file: the list
//!   skips it and counts it, a read of it is a `corrupt_record` error, a
//!   delete removes it;
//! * a placeholder `visitor_salt`: `/health` (the `api` component, which
//!   spin.toml grants the salt only to check it) answers 503 naming it, and
//!   redirects (the `redirect` component) are still served, their clicks
//!   counted as unrecorded;
//! * an `unrecorded.db` that cannot be opened (a directory in its place):
//!   `/metrics` still answers 200 with every other metric, and
//!   `shortener_store_up{store="sqlite_unrecorded"} 0`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::ensure;
use crate::harness::{CHROME, SpinApp, SpinBuilder, trial, write_runtime_config};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "garbage_in_a_link_record_of_the_kv_file_is_refused_by_a_read_counted_and_deletable_and_lists_show_the_registry_copy",
            garbage_in_a_link_record_of_the_kv_file_is_refused_by_a_read_counted_and_deletable_and_lists_show_the_registry_copy,
        ),
        trial(
            "a_placeholder_visitor_salt_makes_health_503_naming_it_while_redirects_are_served",
            a_placeholder_visitor_salt_makes_health_503_naming_it_while_redirects_are_served,
        ),
        trial(
            "an_unrecorded_db_that_cannot_be_opened_leaves_metrics_200_with_its_store_down",
            an_unrecorded_db_that_cannot_be_opened_leaves_metrics_200_with_its_store_down,
        ),
    ]
}

/// Waits until `/health` answers at all (any status), for an app that is
/// expected to be unhealthy.
fn wait_answering(spin: &SpinApp) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if crate::harness::try_request(&spin.base(), "GET", "/health", &[], None).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("spin up never answered\n{}", spin.log_text()).into())
}

fn create(spin: &SpinApp, slug: &str) -> Result<String, Failed> {
    spin.create(json!({"url": format!("https://example.com/{slug}"), "slug": slug}))
}

/// Overwrites the value of `key` in Spin's key-value file (its
/// `spin_key_value` table) with bytes that are no JSON; exactly one row.
fn write_garbage(kv_file: &Path, key: &str) -> Result<(), Failed> {
    let script = "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         n = c.execute(\"UPDATE spin_key_value SET value = x'00ff7b6e6f74206a736f6e' WHERE key = ?\", (sys.argv[2],)).rowcount\n\
         print(n)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(kv_file)
        .arg(key)
        .output()
        .map_err(|e| format!("python3 runs: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim() == "1",
        "garbage written into {key}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn listed(spin: &SpinApp, path: &str) -> Result<Vec<String>, Failed> {
    let r = spin.api("GET", path, None);
    ensure!(r.status == 200, "GET {path}: {} {}", r.status, r.body);
    Ok(r.json()["links"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["slug"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn garbage_in_a_link_record_of_the_kv_file_is_refused_by_a_read_counted_and_deletable_and_lists_show_the_registry_copy()
-> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let config = write_runtime_config(dir.path(), None, &dir.path().join("clicks.db"));
    let spin = SpinBuilder::default()
        .runtime_config(&config)
        .state_dir(dir.path().join("state"))
        .start();
    for slug in ["aaa", "bbb", "ccc"] {
        create(&spin, slug)?;
    }
    write_garbage(&dir.path().join("kv.db"), "link:bbb")?;

    // Lists read the registry's copy of each record (authoritative), not
    // key-value: the link is listed as it was written.
    let first = listed(&spin, "/api/links?limit=2")?;
    ensure!(
        first == ["aaa", "bbb"],
        "page 1 from the registry: {first:?}"
    );
    let second = listed(&spin, "/api/links?limit=2&cursor=bbb")?;
    ensure!(second == ["ccc"], "page 2 goes on after it: {second:?}");
    let found = listed(&spin, "/api/links?q=example.com")?;
    ensure!(found == ["aaa", "bbb", "ccc"], "a search: {found:?}");

    let r = spin.api("GET", "/api/links/bbb", None);
    ensure!(
        r.status == 500 && r.json()["error"]["code"] == "corrupt_record",
        "a read of it: {} {}",
        r.status,
        r.body
    );
    let metrics = spin.get("/metrics");
    ensure!(
        metrics.status == 200 && metrics.body.contains("shortener_corrupt_records 1\n"),
        "counted once: {} {}",
        metrics.status,
        metrics.body
    );
    let logged = spin
        .log_text()
        .matches("corrupt link record for bbb")
        .count();
    ensure!(logged == 1, "logged once, not {logged} times");

    let r = spin.api("DELETE", "/api/links/bbb", None);
    ensure!(r.status == 204, "delete: {} {}", r.status, r.body);
    ensure!(
        spin.get("/metrics")
            .body
            .contains("shortener_corrupt_records 0\n"),
        "no longer counted once deleted"
    );
    Ok(())
}

fn a_placeholder_visitor_salt_makes_health_503_naming_it_while_redirects_are_served()
-> Result<(), Failed> {
    let spin = SpinBuilder::default()
        .variable("visitor_salt", "change-me-visitor-salt")
        .spawn();
    wait_answering(&spin)?;
    let health = spin.get("/health");
    ensure!(
        health.status == 503 && health.json()["status"] == "misconfigured",
        "health: {} {}",
        health.status,
        health.body
    );
    let reason = health.json()["refused"]["visitor_salt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(reason.contains("placeholder"), "names why: {reason}");
    ensure!(
        !health.body.contains("change-me-visitor-salt"),
        "never the value"
    );

    create(&spin, "salted")?;
    for _ in 0..3 {
        let r = spin.request("GET", "/salted", &[("User-Agent", CHROME)], None);
        ensure!(r.status == 302, "redirect served: {} {}", r.status, r.body);
    }
    let link = spin.api("GET", "/api/links/salted", None).json();
    ensure!(
        link["clicks"] == 0 && link["unrecorded_clicks"] == json!({"human": 3, "bot": 0}),
        "counted as unrecorded, no click row: {link}"
    );
    ensure!(
        spin.log_text().contains("visitor_salt is a placeholder"),
        "a log line names it"
    );
    Ok(())
}

fn an_unrecorded_db_that_cannot_be_opened_leaves_metrics_200_with_its_store_down()
-> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let config = write_runtime_config(dir.path(), None, &dir.path().join("clicks.db"));
    // SQLite cannot open a directory as a database.
    std::fs::create_dir(dir.path().join("unrecorded.db"))?;
    let spin = SpinBuilder::default()
        .runtime_config(&config)
        .state_dir(dir.path().join("state"))
        .spawn();
    wait_answering(&spin)?;
    create(&spin, "still")?;
    let r = spin.request("GET", "/still", &[("User-Agent", CHROME)], None);
    ensure!(r.status == 302, "a recorded click: {} {}", r.status, r.body);

    let health = spin.get("/health");
    ensure!(
        health.status == 503 && health.json()["checks"]["sqlite_unrecorded"] == "error",
        "health names the tally: {} {}",
        health.status,
        health.body
    );
    let metrics = spin.get("/metrics");
    ensure!(
        metrics.status == 200,
        "metrics: {} {}",
        metrics.status,
        metrics.body
    );
    for line in [
        "shortener_store_up{store=\"sqlite_unrecorded\"} 0\n",
        "shortener_store_up{store=\"sqlite\"} 1\n",
        "shortener_store_up{store=\"kv\"} 1\n",
        "shortener_clicks_total{kind=\"human\"} 1\n",
        "shortener_links 1\n",
        "shortener_corrupt_records 0\n",
        "# EOF\n",
    ] {
        ensure!(metrics.body.contains(line), "{line:?} in\n{}", metrics.body);
    }
    ensure!(
        !metrics.body.contains("shortener_clicks_unrecorded_total"),
        "no made-up tally: {}",
        metrics.body
    );
    Ok(())
}
