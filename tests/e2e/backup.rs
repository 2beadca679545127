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
    vec![
        trial(
            "a_backup_taken_under_load_restores_into_a_new_state_dir_with_every_link_and_click",
            a_backup_taken_under_load_restores_into_a_new_state_dir_with_every_link_and_click,
        ),
        trial(
            "a_restore_brings_back_the_unrecorded_clicks_tally_of_the_backup",
            a_restore_brings_back_the_unrecorded_clicks_tally_of_the_backup,
        ),
        trial(
            "links_created_or_deleted_between_the_copies_are_restored_whole_or_not_at_all",
            links_created_or_deleted_between_the_copies_are_restored_whole_or_not_at_all,
        ),
        trial(
            "restore_with_force_refuses_while_the_app_runs_and_leaves_its_files_alone",
            restore_with_force_refuses_while_the_app_runs_and_leaves_its_files_alone,
        ),
    ]
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

/// `python3 deploy/backup.py args...`, whatever its exit status.
fn run_script(args: &[&str]) -> Result<std::process::Output, Failed> {
    Ok(Command::new("python3")
        .arg(root().join("deploy/backup.py"))
        .args(args)
        .output()
        .map_err(|e| format!("python3 deploy/backup.py: {e}"))?)
}

/// `backup.py backup` of the three stores in `live` (laid out as
/// [`runtime_config`] lays them out) into `out`.
fn backup_of(live: &Path, out: &Path) -> Result<String, Failed> {
    backup_script(&[
        "backup",
        "--clicks",
        &live.join("clicks.db").display().to_string(),
        "--kv",
        &live.join("kv.db").display().to_string(),
        "--out",
        &out.display().to_string(),
    ])
}

/// `backup.py restore` of `from` into the stores of `dir`.
fn restore_args(from: &Path, dir: &Path) -> Vec<String> {
    vec![
        "restore".into(),
        "--from".into(),
        from.display().to_string(),
        "--clicks".into(),
        dir.join("clicks.db").display().to_string(),
        "--kv".into(),
        dir.join("kv.db").display().to_string(),
    ]
}

/// A `spin up` on the stores of `dir` (the deploy runtime config's layout).
fn app_on(dir: &Path) -> SpinApp {
    SpinBuilder::default()
        .runtime_config(runtime_config(dir))
        .state_dir(dir.join("state"))
        .start()
}

fn create_link(app: &SpinApp, slug: &str) -> Result<(), Failed> {
    let created = app.api(
        "POST",
        "/api/links",
        Some(json!({"url": format!("https://example.com/{slug}"), "slug": slug})),
    );
    ensure!(created.status == 201, "create {slug}: {}", created.body);
    Ok(())
}

fn visit(app: &SpinApp, slug: &str, times: usize) -> Result<(), Failed> {
    for _ in 0..times {
        let r = app.request("GET", &format!("/{slug}"), &[("User-Agent", CHROME)], None);
        ensure!(r.status == 302, "redirect {slug}: {}", r.status);
    }
    Ok(())
}

fn backup_script(args: &[&str]) -> Result<String, Failed> {
    let out = run_script(args)?;
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

fn a_restore_brings_back_the_unrecorded_clicks_tally_of_the_backup() -> Result<(), Failed> {
    let live = tempfile::tempdir()?;
    let app = app_on(live.path());
    create_link(&app, "tally")?;
    visit(&app, "tally", 2)?;
    // clicks.db refuses writes while another connection holds its write
    // lock: each redirect waits the busy timeout, then is tallied.
    let lock = rusqlite::Connection::open(live.path().join("clicks.db"))?;
    lock.execute_batch("BEGIN EXCLUSIVE")?;
    visit(&app, "tally", 3)?;
    lock.execute_batch("COMMIT")?;
    drop(lock);
    let link = app.api("GET", "/api/links/tally", None).json();
    ensure!(
        link["clicks"] == 2 && link["unrecorded_clicks"] == json!({"human": 3, "bot": 0}),
        "before the backup: {link}"
    );
    let backup = live.path().join("backup");
    backup_of(live.path(), &backup)?;
    drop(app);

    let restored = tempfile::tempdir()?;
    let args = restore_args(&backup, restored.path());
    backup_script(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let app = app_on(restored.path());
    let link = app.api("GET", "/api/links/tally", None).json();
    ensure!(
        link["clicks"] == 2 && link["unrecorded_clicks"] == json!({"human": 3, "bot": 0}),
        "restored: {link}"
    );
    let metrics = app.get("/metrics").body;
    ensure!(
        metrics.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 3\n"),
        "restored /metrics: {}",
        metrics
            .lines()
            .filter(|l| l.contains("unrecorded"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

/// A backup directory whose stores come from two backups (`from[kind]`),
/// with a manifest that describes each file: what `backup` writes when the
/// files are copied at the instants those backups were taken.
fn assemble(dir: &Path, from: &[(&str, &Path)]) -> Result<(), Failed> {
    std::fs::create_dir_all(dir)?;
    let mut stores = serde_json::Map::new();
    let mut created_at = Value::Null;
    for (kind, backup) in from {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json"))?)?;
        let info = manifest["stores"][kind].clone();
        if info.is_null() {
            continue; // a store this backup.py does not copy
        }
        let file = info["file"].as_str().unwrap_or_default().to_owned();
        std::fs::copy(backup.join(&file), dir.join(&file))?;
        stores.insert((*kind).to_owned(), info);
        created_at = manifest["created_at"].clone();
    }
    std::fs::write(
        dir.join("manifest.json"),
        json!({"created_at": created_at, "stores": stores}).to_string(),
    )?;
    Ok(())
}

fn links_created_or_deleted_between_the_copies_are_restored_whole_or_not_at_all()
-> Result<(), Failed> {
    let live = tempfile::tempdir()?;
    let app = app_on(live.path());
    for slug in ["keep", "gone", "again"] {
        create_link(&app, slug)?;
        visit(&app, slug, 2)?;
    }
    let first = live.path().join("first");
    backup_of(live.path(), &first)?;
    ensure!(
        app.api("DELETE", "/api/links/gone", None).status == 204,
        "delete gone"
    );
    create_link(&app, "late")?;
    visit(&app, "late", 1)?;
    // Deleted and re-created under the same slug, in a later second (to
    // another URL): each copy holds another generation of it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ensure!(
        app.api("DELETE", "/api/links/again", None).status == 204,
        "delete again"
    );
    let recreated = app.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.org/again-2", "slug": "again"})),
    );
    ensure!(
        recreated.status == 201,
        "re-create again: {}",
        recreated.body
    );
    visit(&app, "again", 1)?;
    let second = live.path().join("second");
    backup_of(live.path(), &second)?;
    drop(app);

    // Each store copied at one of the two instants: the delete of `gone`,
    // the create of `late` and the re-create of `again` fall between the
    // copies, in both orders.
    for (name, kv_from, registry_from) in [
        ("records first", &first, &second),
        ("registry first", &second, &first),
    ] {
        let split = live.path().join(name.replace(' ', "-"));
        assemble(
            &split,
            &[
                ("kv", kv_from.as_path()),
                ("clicks", registry_from.as_path()),
                ("unrecorded", registry_from.as_path()),
            ],
        )?;
        let restored = tempfile::tempdir()?;
        let args = restore_args(&split, restored.path());
        let said = backup_script(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let app = app_on(restored.path());
        let listed = all_links(&app)?;
        ensure!(
            listed.keys().eq(["keep"].iter()) && listed["keep"].1 == 2,
            "{name}: restored {listed:?} ({said})"
        );
        for slug in ["gone", "late", "again"] {
            let got = app.api("GET", &format!("/api/links/{slug}"), None);
            ensure!(
                got.status == 404,
                "{name}: {slug} half restored: {} {}",
                got.status,
                got.body
            );
            let r = app.request("GET", &format!("/{slug}"), &[("User-Agent", CHROME)], None);
            ensure!(r.status == 404, "{name}: /{slug} answers {}", r.status);
            // Its slug is free again, and a new link there starts from zero.
            create_link(&app, slug)?;
            let again = app.api("GET", &format!("/api/links/{slug}"), None).json();
            ensure!(again["clicks"] == 0, "{name}: re-created {slug}: {again}");
        }
    }
    Ok(())
}

/// Whether `unshare` can run a command in a new PID namespace (root, or
/// unprivileged user namespaces).
fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn restore_with_force_refuses_while_the_app_runs_and_leaves_its_files_alone() -> Result<(), Failed>
{
    let live = tempfile::tempdir()?;
    let app = app_on(live.path());
    create_link(&app, "first")?;
    let backup = live.path().join("backup");
    backup_of(live.path(), &backup)?;
    create_link(&app, "after")?;
    visit(&app, "after", 2)?;

    // Idle (Spin has closed clicks.db, kv.db stays open), under load, and
    // from another PID namespace, as from another container on the same
    // volume (where /proc shows no Spin: only the kernel's lease can tell).
    let isolated = unshare_works();
    if !isolated {
        eprintln!("backup: unshare cannot make a PID namespace here; that case is skipped");
    }
    let mut expected = 2;
    for (case, busy, elsewhere) in [
        ("idle", false, false),
        ("under load", true, false),
        ("from another PID namespace", false, true),
    ] {
        if elsewhere && !isolated {
            continue;
        }
        let load = busy.then(|| {
            Oha::new(vec![format!("{}/after", app.base())], 2000, 4)
                .header("User-Agent", CHROME)
                .spawn()
        });
        if busy {
            std::thread::sleep(std::time::Duration::from_millis(200));
        } else {
            // Idle: once Spin dropped its instances, clicks.db is closed
            // (its WAL checkpointed away) and only kv.db stays open.
            let wal = live.path().join("clicks.db-wal");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while wal.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            eprintln!(
                "backup: {case}: clicks.db {}",
                if wal.exists() {
                    "still open"
                } else {
                    "closed by Spin"
                }
            );
        }
        let mut args = restore_args(&backup, live.path());
        args.push("--force".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = if elsewhere {
            let script = root().join("deploy/backup.py").display().to_string();
            let mut command = vec!["--pid", "--fork", "--mount-proc", "python3", &script];
            command.extend(&args);
            Command::new("unshare").args(&command).output()?
        } else {
            run_script(&args)?
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let served = load.map(|l| l.wait().total(302));
        expected += served.unwrap_or(0);
        ensure!(
            !out.status.success() && stderr.contains("refusing to restore while the app runs"),
            "restore --force on a running app ({case}): {} {stderr}",
            out.status
        );
        eprintln!(
            "backup: restore --force refused ({case}): {}",
            stderr.trim()
        );
        // Nothing was replaced: the link made after the backup is still
        // there with every click.
        let clicks = app.api("GET", "/api/links/after", None).json()["clicks"]
            .as_u64()
            .unwrap_or(0);
        ensure!(
            clicks == expected,
            "after the refusal ({case}): {clicks} clicks, {served:?} served"
        );
    }
    ensure!(
        app.get("/health").status == 200,
        "the app still answers /health"
    );
    Ok(())
}
