//! The console's routes and the API it added (edit, QR, search) over real
//! HTTP under `spin up`. The browser test (tests/browser/) drives the page.

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::ensure;
use crate::harness::{CHROME, SpinApp, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "a_patch_changes_the_target_and_expiry_under_a_real_spin_up",
            a_patch_changes_the_target_and_expiry_under_a_real_spin_up,
        ),
        trial(
            "the_console_qr_and_search_are_served_by_the_api_component",
            the_console_qr_and_search_are_served_by_the_api_component,
        ),
    ]
}

fn a_patch_changes_the_target_and_expiry_under_a_real_spin_up() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let created = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://old.example/", "slug": "e2e-edit"})),
    );
    ensure!(created.status == 201, "create: {}", created.body);
    let follow = |ua: &str| spin.request("GET", "/e2e-edit", &[("User-Agent", ua)], None);
    ensure!(
        follow(CHROME).header("location") == Some("https://old.example/"),
        "first target"
    );

    let patched = spin.api(
        "PATCH",
        "/api/links/e2e-edit",
        Some(json!({"url": "https://new.example/x", "expires_at": "2099-01-01T00:00:00Z"})),
    );
    ensure!(patched.status == 200, "patch: {}", patched.body);
    ensure!(
        patched.json()["url"] == "https://new.example/x",
        "{}",
        patched.body
    );
    let r = follow(CHROME);
    ensure!(r.status == 302, "{}", r.status);
    ensure!(
        r.header("location") == Some("https://new.example/x"),
        "redirect after patch: {:?}",
        r.header("location")
    );
    let got = spin.api("GET", "/api/links/e2e-edit", None).json();
    ensure!(got["expires_at"] == "2099-01-01T00:00:00Z", "{got}");
    ensure!(got["clicks"] == 2, "clicks survive the edit: {got}");
    let list = spin.api("GET", "/api/links", None).json();
    ensure!(
        list["links"][0]["url"] == "https://new.example/x",
        "list: {list}"
    );

    // null clears the expiry; refusals are the create's.
    let cleared = spin.api(
        "PATCH",
        "/api/links/e2e-edit",
        Some(json!({"expires_at": null})),
    );
    ensure!(
        cleared.status == 200 && cleared.json()["expires_at"].is_null(),
        "{}",
        cleared.body
    );
    for (body, status, code) in [
        (json!({"url": "ftp://x"}), 400, "invalid_url"),
        (
            json!({"url": "https://sho.rt/a"}),
            400,
            "self_referencing_url",
        ),
        (
            json!({"expires_at": "2000-01-01T00:00:00Z"}),
            400,
            "invalid_expiry",
        ),
        (json!({}), 400, "empty_patch"),
    ] {
        let r = spin.api("PATCH", "/api/links/e2e-edit", Some(body.clone()));
        ensure!(r.status == status, "{body}: {} {}", r.status, r.body);
        ensure!(r.json()["error"]["code"] == code, "{body}: {}", r.body);
    }
    let missing = spin.api(
        "PATCH",
        "/api/links/e2e-none",
        Some(json!({"url": "https://e.com/"})),
    );
    ensure!(missing.status == 404, "{}", missing.status);
    ensure!(
        follow(CHROME).header("location") == Some("https://new.example/x"),
        "refusals changed nothing"
    );
    Ok(())
}

fn the_console_qr_and_search_are_served_by_the_api_component() -> Result<(), Failed> {
    let spin = SpinApp::up();
    for path in [
        "/console/",
        "/console/app.js",
        "/console/vendor/uplot/uPlot.iife.min.js",
    ] {
        let r = spin.get(path);
        ensure!(r.status == 200, "{path}: {}", r.status);
        let csp = r.header("content-security-policy").unwrap_or_default();
        ensure!(
            csp.starts_with("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        ensure!(
            r.header("x-content-type-options") == Some("nosniff"),
            "{path}"
        );
    }
    let bare = spin.get("/console");
    ensure!(
        bare.status == 308 && bare.header("location") == Some("console/"),
        "/console: {} {:?}",
        bare.status,
        bare.header("location")
    );

    let r = spin.api(
        "POST",
        "/api/links",
        Some(json!({"url": "https://example.com/findme", "slug": "e2e-qr"})),
    );
    ensure!(r.status == 201, "{}", r.body);
    let svg = spin.api("GET", "/api/links/e2e-qr/qr", None);
    ensure!(svg.status == 200, "{}", svg.status);
    ensure!(
        svg.header("content-type") == Some("image/svg+xml") && svg.body.contains("<svg"),
        "{:?}",
        svg.header("content-type")
    );
    let found = spin.api("GET", "/api/links?q=FINDME", None).json();
    ensure!(found["links"][0]["slug"] == "e2e-qr", "{found}");
    let none = spin.api("GET", "/api/links?q=absent-text", None).json();
    ensure!(none["links"] == json!([]), "{none}");
    Ok(())
}
