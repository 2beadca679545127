//! The OpenAPI description against a real `spin up`: the document served at
//! `/api/openapi.json` is valid OpenAPI (openapi-spec-validator), and
//! schemathesis, driven by it with a bounded number of examples, finds no
//! server error and no answer that the description does not allow.
//!
//! Both tools are PyPI packages (`pip install schemathesis
//! openapi-spec-validator`, see .ci/run). Schemathesis only talks to the
//! loopback Spin and follows no redirect (short links point elsewhere).

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Failed, Trial};
use serde_json::json;

use crate::ensure;
use crate::harness::{SpinApp, TOKEN, trial};

/// Examples per operation (schemathesis' `--max-examples`).
const MAX_EXAMPLES: &str = "25";

pub fn trials() -> Vec<Trial> {
    vec![trial(
        "the_served_openapi_description_is_valid_and_every_answer_under_a_real_spin_up_conforms_to_it",
        the_served_openapi_description_is_valid_and_every_answer_conforms_to_it,
    )]
}

fn tool(name: &str, args: &[&str], cwd: &Path) -> Result<(bool, String), Failed> {
    let out = Command::new(name)
        .args(args)
        .current_dir(cwd)
        // Never through a proxy: the only target is the loopback Spin.
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .output()
        .map_err(|e| {
            format!("{name} does not run ({e}): pip install schemathesis openapi-spec-validator")
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

fn the_served_openapi_description_is_valid_and_every_answer_conforms_to_it() -> Result<(), Failed> {
    let spin = SpinApp::up();
    let dir = tempfile::tempdir()?;

    // Served without a token, as JSON.
    let served = spin.get("/api/openapi.json");
    ensure!(
        served.status == 200,
        "GET /api/openapi.json: {}",
        served.status
    );
    ensure!(
        served.header("content-type") == Some("application/json"),
        "content type {:?}",
        served.header("content-type")
    );
    let doc = served.json();
    ensure!(
        doc["openapi"] == json!("3.1.0"),
        "not OpenAPI 3.1: {}",
        served.body
    );
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &served.body)?;

    let (valid, report) = tool(
        "openapi-spec-validator",
        &[file.to_str().unwrap()],
        dir.path(),
    )?;
    ensure!(
        valid,
        "openapi-spec-validator refused the description:\n{report}"
    );

    // A link for the examples to find (most generated slugs name none),
    // with the tag of the tag routes' examples.
    let seeded = spin.api(
        "POST",
        "/api/links",
        Some(
            json!({"url": "https://example.com/docs", "slug": "docs-example", "tags": ["launch"]}),
        ),
    );
    ensure!(seeded.status == 201, "seed: {}", seeded.body);

    let auth = format!("Authorization: Bearer {TOKEN}");
    let schema_url = format!("{}/api/openapi.json", spin.base());
    let (passed, report) = tool(
        "schemathesis",
        &[
            "run",
            &schema_url,
            "--url",
            &spin.base(),
            "--header",
            &auth,
            "--checks",
            "all",
            // "Schema-valid" is not "valid" here: an expiry in the past, a
            // `from` after `to`, a URL of our own host or a cursor no page
            // returned are schema-valid and rightly refused (400, with the
            // error schema, which every other check verifies).
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "8",
            "--max-redirects",
            "0",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ],
        dir.path(),
    )?;
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("generated"))
        .collect();
    eprintln!("schemathesis: {}", summary.join(" | "));
    ensure!(
        passed,
        "schemathesis found answers the description does not allow:\n{report}"
    );
    // Spin must have answered every request without a trap.
    let log = spin.log_text();
    ensure!(
        !log.contains("trapped") && !log.contains("panicked"),
        "the component trapped or panicked:\n{log}"
    );
    Ok(())
}
