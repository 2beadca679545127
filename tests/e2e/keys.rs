//! API keys under a real `spin up`: each role's refusals, and a revoked key
//! refused at its next request.

use libtest_mimic::{Failed, Trial};
use serde_json::{Value, json};

use crate::ensure;
use crate::harness::{Reply, SpinApp, trial};

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "keys::each_role_is_refused_what_it_may_not_do_and_a_revoked_key_at_once",
        each_role_is_refused_what_it_may_not_do_and_a_revoked_key_at_once,
    )]
}

fn as_key(spin: &SpinApp, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let text = body.map(|b| b.to_string());
    spin.request(method, path, &headers, text.as_deref())
}

fn make_key(spin: &SpinApp, role: &str) -> Result<(String, String), Failed> {
    let r = spin.api(
        "POST",
        "/api/keys",
        Some(json!({"name": format!("e2e {role}"), "role": role})),
    );
    ensure!(
        r.status == 201,
        "make a {role} key: {} {}",
        r.status,
        r.body
    );
    let made = r.json();
    Ok((
        made["id"].as_str().unwrap_or_default().to_owned(),
        made["key"].as_str().unwrap_or_default().to_owned(),
    ))
}

fn each_role_is_refused_what_it_may_not_do_and_a_revoked_key_at_once() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let slug = spin.create(json!({"url": "https://e.com/keys"}))?;
    let (viewer_id, viewer) = make_key(&spin, "viewer")?;
    let (_, editor) = make_key(&spin, "editor")?;
    let new_link = || Some(json!({"url": "https://e.com/new"}));
    let refused = |r: &Reply, needed: &str| {
        r.status == 403
            && r.json()["error"]["code"] == "forbidden"
            && r.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("the {needed} role")))
    };

    for path in ["/api/links".to_owned(), format!("/api/links/{slug}/stats")] {
        let r = as_key(&spin, &viewer, "GET", &path, None);
        ensure!(
            r.status == 200,
            "viewer GET {path}: {} {}",
            r.status,
            r.body
        );
    }
    let r = as_key(&spin, &viewer, "POST", "/api/links", new_link());
    ensure!(
        refused(&r, "editor"),
        "viewer POST: {} {}",
        r.status,
        r.body
    );
    let r = as_key(
        &spin,
        &viewer,
        "DELETE",
        &format!("/api/links/{slug}"),
        None,
    );
    ensure!(
        refused(&r, "editor"),
        "viewer DELETE: {} {}",
        r.status,
        r.body
    );

    let r = as_key(&spin, &editor, "POST", "/api/links", new_link());
    ensure!(r.status == 201, "editor POST: {} {}", r.status, r.body);
    let r = as_key(&spin, &editor, "GET", "/api/keys", None);
    ensure!(
        refused(&r, "admin"),
        "editor GET keys: {} {}",
        r.status,
        r.body
    );

    let listed = spin.api("GET", "/api/keys", None);
    ensure!(
        listed.status == 200 && !listed.body.contains(&viewer[viewer.len() - 32..]),
        "the list shows no secret: {}",
        listed.body
    );
    let r = spin.api("DELETE", &format!("/api/keys/{viewer_id}"), None);
    ensure!(r.status == 204, "revoke: {} {}", r.status, r.body);
    let r = as_key(&spin, &viewer, "GET", "/api/links", None);
    ensure!(
        r.status == 401 && r.json()["error"]["code"] == "unauthorized",
        "a revoked key: {} {}",
        r.status,
        r.body
    );
    Ok(())
}
