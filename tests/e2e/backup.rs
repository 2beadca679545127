//! Backups: `deploy/backup.py` copies both file stores while a real `spin up`
//! serves redirects under load, and a restore into a new state dir finds every
//! link and every click of the backup.
//!
//! The stores are laid out as `deploy/app/runtime.toml` lays them out (its
//! `/data/` paths moved to a temp dir), so the trial tracks the real file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};

use crate::drive::Oha;
use crate::ensure;
use crate::harness::{CHROME, SpinApp, SpinBuilder, root, trial};

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "a_backup_taken_under_load_restores_into_a_new_state_dir_with_every_link_and_click",
        a_backup_taken_under_load_restores_into_a_new_state_dir_with_every_link_and_click,
    )]
}

/// `deploy/app/runtime.toml` with its `/data/` directory replaced by `dir`.
fn runtime_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("deploy/app/runtime.toml"))
        .expect("deploy/app/runtime.toml");
    assert!(
        text.contains("path = \"/data/kv.db\"") && text.contains("path = \"/data/clicks.db\""),
        "deploy/app/runtime.toml keeps its stores at /data/kv.db and /data/clicks.db"
    );
    let path = dir.join("runtime.toml");
    std::fs::write(
        &path,
        text.replace("\"/data/", &format!("\"{}/", dir.display())),
    )
    .unwrap();
    path
}

fn backup_script(args: &[&str]) -> Result<String, Failed> {
    let out = Command::new("python3")
        .arg(root().join("deploy/backup.py"))
        .args(args)
        .output()
        .map_err(|e| format!("python3 deploy/backup.py: {e}"))?;
    ensure!(
        out.status.success(),
        "backup.py {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Every link the API lists (following the cursor), by slug: (url, clicks).
fn all_links(app: &SpinApp) -> Result<BTreeMap<String, (String, u64)>, Failed> {
    let mut links = BTreeMap::new();
    let mut path = "/api/links?limit=7".to_owned();
    loop {
        let page = app.api("GET", &path, None);
        ensure!(page.status == 200, "list: {} {}", page.status, page.body);
        let body = page.json();
        for link in body["links"].as_array().cloned().unwrap_or_default() {
            let slug = link["slug"].as_str().unwrap_or_default().to_owned();
            let detail = app.api("GET", &format!("/api/links/{slug}"), None).json();
            links.insert(
                slug,
                (
                    link["url"].as_str().unwrap_or_default().to_owned(),
                    detail["clicks"].as_u64().unwrap_or(u64::MAX),
                ),
            );
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/links?limit=7&cursor={cursor}"),
            None => return Ok(links),
        }
    }
}

fn a_backup_taken_under_load_restores_into_a_new_state_dir_with_every_link_and_click()
-> Result<(), Failed> {
    let live = tempfile::tempdir()?;
    let app = SpinBuilder::default()
        .runtime_config(runtime_config(live.path()))
        .state_dir(live.path().join("state"))
        .start();

    // 20 links, 5 clicks each.
    for i in 0..20 {
        let slug = format!("bk-{i:02}");
        let created = app.api(
            "POST",
            "/api/links",
            Some(json!({"url": format!("https://example.com/{slug}"), "slug": slug})),
        );
        ensure!(created.status == 201, "create {slug}: {}", created.body);
        for _ in 0..5 {
            let r = app.request("GET", &format!("/{slug}"), &[("User-Agent", CHROME)], None);
            ensure!(r.status == 302, "redirect {slug}: {}", r.status);
        }
    }
    ensure!(all_links(&app)?.len() == 20, "20 links listed");

    // The same bounded load without a backup first (baseline, bk-01), then
    // on bk-00 with a hot backup during it.
    let oha = |slug: &str| {
        Oha::new(vec![format!("{}/{slug}", app.base())], 3000, 16).header("User-Agent", CHROME)
    };
    let baseline = oha("bk-01").run();
    let baseline_served = baseline.total(302);
    ensure!(
        baseline_served == 3000,
        "{baseline_served} of 3000 baseline redirects"
    );
    let before = all_links(&app)?;
    let load = oha("bk-00").spawn();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backup_dir = live.path().join("backup");
    let started = Instant::now();
    let said = backup_script(&[
        "backup",
        "--clicks",
        &live.path().join("clicks.db").display().to_string(),
        "--kv",
        &live.path().join("kv.db").display().to_string(),
        "--out",
        &backup_dir.display().to_string(),
    ])?;
    let backup_secs = started.elapsed().as_secs_f64();
    let during = load.wait();
    let served = during.total(302);
    eprintln!(
        "backup: {said} ({backup_secs:.2}s with the script's start-up); redirects, 3000 at c=16: \
         without a backup p99 {:.1} ms, slowest {:.1} ms; during it p99 {:.1} ms, slowest {:.1} ms",
        baseline.p99_ms, baseline.slowest_ms, during.p99_ms, during.slowest_ms,
    );
    ensure!(
        served == 3000,
        "{served} of 3000 redirects during the backup"
    );
    let after = all_links(&app)?;
    ensure!(
        after["bk-00"].1 == 5 + served,
        "bk-00: {} clicks after the load",
        after["bk-00"].1
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup_dir.join("manifest.json"))?)?;
    let in_backup = manifest["stores"]["clicks"]["clicks"].as_u64().unwrap_or(0);
    ensure!(
        manifest["stores"]["clicks"]["links"] == 20 && manifest["stores"]["kv"]["links"] == 20,
        "manifest: {manifest}"
    );
    drop(app);

    // Restore into a new state dir; a fresh `spin up` on it.
    let restored = tempfile::tempdir()?;
    backup_script(&[
        "restore",
        "--from",
        &backup_dir.display().to_string(),
        "--clicks",
        &restored.path().join("clicks.db").display().to_string(),
        "--kv",
        &restored.path().join("kv.db").display().to_string(),
    ])?;
    let app = SpinBuilder::default()
        .runtime_config(runtime_config(restored.path()))
        .state_dir(restored.path().join("state"))
        .start();
    let found = all_links(&app)?;
    ensure!(
        found.keys().eq(before.keys()),
        "restored links {:?}",
        found.keys().collect::<Vec<_>>()
    );
    let mut total = 0;
    for (slug, (url, clicks)) in &found {
        ensure!(*url == before[slug].0, "{slug}: url {url}");
        if slug != "bk-00" {
            // Untouched during the backup: exactly their clicks.
            ensure!(
                *clicks == before[slug].1,
                "{slug}: {clicks} clicks restored, {} recorded",
                before[slug].1
            );
        }
        total += clicks;
    }
    // Every click in the backup is found; bk-00's lie between what was
    // acknowledged before the backup began and after the load ended.
    ensure!(
        total == in_backup,
        "{total} clicks restored, {in_backup} in the backup"
    );
    let hot = found["bk-00"].1;
    ensure!(
        (5..=5 + served).contains(&hot),
        "bk-00: {hot} clicks restored, outside 5..={}",
        5 + served
    );
    // The restored app serves and counts on.
    let r = app.request("GET", "/bk-07", &[("User-Agent", CHROME)], None);
    ensure!(
        r.status == 302 && r.header("location") == Some("https://example.com/bk-07"),
        "restored redirect: {} {:?}",
        r.status,
        r.header("location")
    );
    ensure!(
        app.api("GET", "/api/links/bk-07", None).json()["clicks"] == 6,
        "the restored app does not count on"
    );
    Ok(())
}
