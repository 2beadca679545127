//! Export and import under a real `spin up`: every source's fixture imports
//! (and a second import creates nothing), a viewer key is refused the
//! import, the import's 10 MiB limit holds through Spin, and 10,000 links
//! import and export in one request each (the times are printed, never
//! asserted).

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::ensure;
use crate::harness::{Reply, SpinApp, TOKEN, root, trial};

pub fn trials() -> Vec<Trial> {
    vec![
        trial(
            "transfer::each_sources_fixture_imports_once_and_a_viewer_is_refused",
            each_sources_fixture_imports_once_and_a_viewer_is_refused,
        ),
        trial(
            "transfer::ten_thousand_links_import_and_export_in_one_request_each",
            ten_thousand_links_import_and_export_in_one_request_each,
        ),
    ]
}

/// A request with a long timeout (an import of 10,000 links takes a while
/// on a loaded machine); a transport error is a failure.
fn slow_request(
    spin: &SpinApp,
    method: &str,
    path: &str,
    bearer: &str,
    body: Vec<u8>,
) -> Result<Reply, Failed> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", spin.base()))
        .header("Authorization", format!("Bearer {bearer}"))
        .header("Content-Type", "text/csv")
        .body(body)
        .map_err(|e| e.to_string())?;
    let mut response = agent
        .run(request)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
    Ok(Reply {
        status,
        headers: Vec::new(),
        body,
    })
}

fn import(spin: &SpinApp, bearer: &str, query: &str, body: Vec<u8>) -> Result<Reply, Failed> {
    slow_request(spin, "POST", &format!("/api/import?{query}"), bearer, body)
}

fn each_sources_fixture_imports_once_and_a_viewer_is_refused() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let fixtures = root().join("tests/fixtures/import");
    let cases = [
        ("shlink", "shlink.json", "shl-docs"),
        ("yourls", "yourls.json", "yrl-quote"),
        ("kutt", "kutt.json", "kutt-a"),
        ("bitly", "bitly.json", "3bTly01"),
        ("csv", "links.csv", "csv-one"),
    ];
    let viewer = spin.api(
        "POST",
        "/api/keys",
        Some(json!({"name": "e2e viewer", "role": "viewer"})),
    );
    ensure!(viewer.status == 201, "viewer key: {}", viewer.body);
    let viewer = viewer.json()["key"].as_str().unwrap_or_default().to_owned();
    for (source, file, slug) in cases {
        let body = std::fs::read(fixtures.join(file)).map_err(|e| e.to_string())?;
        let r = import(&spin, &viewer, &format!("source={source}"), body.clone())?;
        ensure!(
            r.status == 403 && r.json()["error"]["code"] == "forbidden",
            "a viewer imports {source}: {} {}",
            r.status,
            r.body
        );
        let dry = import(
            &spin,
            TOKEN,
            &format!("source={source}&dry_run=true"),
            body.clone(),
        )?;
        ensure!(
            dry.status == 200 && dry.json()["created"] == 2,
            "dry run {source}: {} {}",
            dry.status,
            dry.body
        );
        let r = spin.get(&format!("/{slug}"));
        ensure!(r.status == 404, "{slug} after a dry run: {}", r.status);
        let real = import(&spin, TOKEN, &format!("source={source}"), body.clone())?;
        ensure!(
            real.status == 200 && real.json() == dry.json(),
            "import {source}: {} {} (dry run said {})",
            real.status,
            real.body,
            dry.body
        );
        let r = spin.get(&format!("/{slug}"));
        ensure!(r.status == 302, "{slug} after its import: {}", r.status);
        let again = import(&spin, TOKEN, &format!("source={source}"), body)?;
        ensure!(
            again.json()
                == json!({"created": 0, "skipped_existing": 2, "conflicts": [], "errors": []}),
            "import {source} again: {}",
            again.body
        );
    }
    let r = spin.api("GET", "/api/export/links?format=json", None);
    ensure!(r.status == 200, "export: {} {}", r.status, r.body);
    let exported = r.json().as_array().map_or(0, Vec::len);
    ensure!(exported == 10, "exported {exported} links, imported 10");
    let mut over = b"url\n".to_vec();
    over.resize(10 * 1024 * 1024 + 1, b'\n');
    let r = import(&spin, TOKEN, "source=csv", over)?;
    ensure!(
        r.status == 413 && r.body.contains("10 MiB"),
        "an import over 10 MiB: {} {}",
        r.status,
        r.body
    );
    Ok(())
}

fn ten_thousand_links_import_and_export_in_one_request_each() -> Result<(), Failed> {
    const N: usize = 10_000;
    let spin = SpinApp::up();
    let mut csv = String::from("slug,url\n");
    for i in 0..N {
        csv.push_str(&format!("bulk-{i:05},https://example.com/bulk/{i}?a=1,2\n"));
    }
    let started = Instant::now();
    let r = import(&spin, TOKEN, "source=csv", csv.into_bytes())?;
    let took = started.elapsed();
    ensure!(
        r.status == 200 && r.json()["created"] == N,
        "import {N}: {} {}",
        r.status,
        &r.body[..r.body.len().min(500)]
    );
    eprintln!(
        "transfer: imported {N} links in {:.1} s ({:.2} ms per link)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / N as f64
    );
    let started = Instant::now();
    let r = slow_request(
        &spin,
        "GET",
        "/api/export/links?format=csv",
        TOKEN,
        Vec::new(),
    )?;
    let took = started.elapsed();
    let rows = r.body.lines().count();
    ensure!(
        r.status == 200 && rows == N + 1,
        "export: {} with {rows} lines",
        r.status
    );
    eprintln!(
        "transfer: exported {N} links as CSV in {:.1} s ({} bytes)",
        took.as_secs_f64(),
        r.body.len()
    );
    Ok(())
}
