//! Export (links, a link's clicks; CSV and JSON, streamed), import (each
//! source's fixture, dry runs, conflicts, idempotence, the body limit), and
//! `/api/whoami`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{GOOGLEBOT, TOKEN, TestApp, Visit};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

async fn import_as(
    app: &TestApp,
    bearer: &str,
    query: &str,
    body: Vec<u8>,
) -> crate::helpers::TestResponse {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/import?{query}"))
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "text/csv")
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

async fn import(app: &TestApp, query: &str, body: impl Into<Vec<u8>>) -> Value {
    let r = import_as(app, TOKEN, query, body.into()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn the_link_export_holds_every_link_with_its_clicks_in_csv_and_json() {
    let app = TestApp::spawn().await;
    let tricky = r#"https://e.com/a,b?q="x""#;
    app.create_ok(tricky, Some("tricky")).await;
    app.create_ok("https://e.com/plain", Some("plain")).await;
    app.follow("plain").await;
    app.follow("plain").await;

    let r = app
        .api(Method::GET, "/api/export/links?format=csv", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"links.csv\"")
    );
    let text = r.text();
    assert!(
        text.starts_with(
            "slug,url,created_at,expires_at,tags,clicks,forward_query,max_clicks,valid_from,rules\r\n"
        ),
        "{text}"
    );
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "plain");
    assert_eq!(rows[0][5], "2");
    assert_eq!(rows[1][0], "tricky");
    assert_eq!(
        rows[1][1], "https://e.com/a,b?q=%22x%22",
        "normalised as stored"
    );

    let r = app
        .api(Method::GET, "/api/export/links?format=json", None)
        .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let links = r.json();
    assert_eq!(links[0]["slug"], "plain");
    assert_eq!(links[0]["clicks"], 2);
    assert_eq!(links[0]["created_at"], "2030-01-15T12:00:00Z");
    assert_eq!(links[1]["clicks"], 0);
}

#[tokio::test]
async fn the_link_export_pages_through_more_links_than_one_page() {
    let app = TestApp::spawn().await;
    let n = shortener::transfer::export::PAGE + 3;
    let mut csv = String::from("slug,url\n");
    for i in 0..n {
        csv.push_str(&format!("s{i:04},https://e.com/{i}\n"));
    }
    let report = import(&app, "source=csv", csv).await;
    assert_eq!(report["created"], n);
    let r = app
        .api(Method::GET, "/api/export/links?format=json", None)
        .await;
    let links = r.json();
    let slugs: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs.len(), n);
    let mut sorted = slugs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, slugs, "each once, in slug order");
    let r = app.api(Method::GET, "/api/export/links", None).await;
    assert_eq!(csv_rows(&r.text()).len(), n, "CSV by default");
}

#[tokio::test]
async fn a_links_clicks_export_has_each_click_without_the_visitor_hash() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/c", Some("clicky")).await;
    app.visit(
        "clicky",
        Visit::default().referer("https://News.example.org/item?id=1"),
    )
    .await;
    app.visit("clicky", Visit::default().user_agent(GOOGLEBOT))
        .await;
    let r = app
        .api(Method::GET, "/api/links/clicky/clicks?format=json", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let clicks = r.json();
    assert_eq!(clicks.as_array().unwrap().len(), 2);
    let human = &clicks[0];
    assert_eq!(human["kind"], "human");
    assert_eq!(human["referrer_host"], "news.example.org");
    assert_eq!(human["browser"], "Chrome");
    assert_eq!(human["os"], "Windows 10");
    assert_eq!(human["device"], "pc");
    assert_eq!(human["at"], "2030-01-15T12:00:00Z");
    assert_eq!(clicks[1]["kind"], "bot");
    assert_eq!(clicks[1]["device"], "crawler");
    assert_eq!(clicks[1]["referrer_host"], Value::Null);
    let stored: String = match &app.query("SELECT visitor FROM clicks LIMIT 1", vec![])[0][0] {
        shortener::storage::SqlValue::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!r.text().contains(&stored), "no visitor hash");
    assert!(human.get("visitor").is_none());

    let r = app.api(Method::GET, "/api/links/clicky/clicks", None).await;
    let rows = csv_rows(&r.text());
    assert!(
        r.text()
            .starts_with("id,at,kind,referrer_host,browser,os,device,rule\r\n")
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][2], "bot");
}

#[tokio::test]
async fn a_click_a_rule_served_carries_its_rule_index_in_the_export_and_others_none() {
    let app = TestApp::spawn().await;
    let created = app
        .create(serde_json::json!({
            "url": "https://e.com/base",
            "slug": "ruled",
            "rules": [{"url": "https://e.com/bots", "query": {"via": "x"}}],
        }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    app.follow("ruled?via=x").await;
    app.follow("ruled").await;
    let clicks = app
        .api(Method::GET, "/api/links/ruled/clicks?format=json", None)
        .await
        .json();
    assert_eq!(clicks[0]["rule"], 0, "{clicks}");
    assert_eq!(clicks[1]["rule"], Value::Null, "{clicks}");
    let csv = app.api(Method::GET, "/api/links/ruled/clicks", None).await;
    let rows = csv_rows(&csv.text());
    assert_eq!((rows[0][7].as_str(), rows[1][7].as_str()), ("0", ""));
}

#[tokio::test]
async fn the_clicks_export_pages_through_more_clicks_than_one_page_each_once_in_id_order() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/many", Some("many")).await;
    let n = shortener::transfer::export::PAGE + 7;
    for i in 0..n {
        if i == n / 2 {
            app.set_now(time::macros::datetime!(2030-01-16 09:00 UTC));
        }
        app.follow("many").await;
    }
    let r = app
        .api(Method::GET, "/api/links/many/clicks?format=json", None)
        .await;
    let ids: Vec<i64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), n);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending, each once");
}

#[tokio::test]
async fn the_clicks_export_keeps_to_its_day_range_and_refuses_what_the_stats_refuse() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/d", Some("daily")).await;
    app.follow("daily").await;
    app.set_now(time::macros::datetime!(2030-01-17 08:00 UTC));
    app.follow("daily").await;
    let get = |q: &'static str| {
        let app = &app;
        async move {
            app.api(
                Method::GET,
                &format!("/api/links/daily/clicks?format=json{q}"),
                None,
            )
            .await
        }
    };
    let r = get("&from=2030-01-16").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.json()[0]["at"], "2030-01-17T08:00:00Z");
    let r = get("&to=2030-01-15").await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(get("&from=2030-1-1").await.error_code(), "invalid_date");
    assert_eq!(
        get("&from=2030-01-17&to=2030-01-16").await.error_code(),
        "invalid_date_range"
    );
    let r = app
        .api(Method::GET, "/api/links/daily/clicks?format=xml", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_format");
    let r = app.api(Method::GET, "/api/links/nope/clicks", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_sources_fixture_imports_with_its_slugs_and_targets() {
    let app = TestApp::spawn().await;
    let cases = [
        ("shlink", "shlink.json", ["shl-docs", "shl-blog"]),
        ("yourls", "yourls.json", ["yrl-home", "yrl-quote"]),
        ("kutt", "kutt.json", ["kutt-a", "kutt-b"]),
        ("bitly", "bitly.json", ["3bTly01", "3bTly02"]),
        ("csv", "links.csv", ["csv-one", "csv-two"]),
    ];
    for (source, file, slugs) in cases {
        let report = import(&app, &format!("source={source}"), fixture(file)).await;
        assert_eq!(
            report,
            json!({"created": 2, "skipped_existing": 0, "conflicts": [], "errors": []}),
            "{source}"
        );
        for slug in slugs {
            let r = app.follow(slug).await;
            assert_eq!(r.status, StatusCode::FOUND, "{source} {slug}");
        }
    }
    assert_eq!(
        app.link("shl-docs").await["url"],
        "https://example.com/docs?page=1,2"
    );
    assert_eq!(
        app.link("shl-docs").await["expires_at"],
        "2039-01-01T00:00:00Z"
    );
    assert_eq!(
        app.link("kutt-a").await["expires_at"],
        "2039-06-01T00:00:00Z"
    );
    assert_eq!(
        app.link("csv-one").await["url"],
        "https://example.com/a,b?q=%22x%22"
    );
    assert_eq!(
        app.link("yrl-quote").await["url"],
        "https://example.com/search?q=%22a,b%22"
    );
}

#[tokio::test]
async fn a_dry_run_reports_the_same_and_writes_nothing_and_a_second_import_creates_nothing() {
    let app = TestApp::spawn().await;
    let dry = import(&app, "source=shlink&dry_run=true", fixture("shlink.json")).await;
    assert_eq!(dry["created"], 2);
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 0);
    let real = import(&app, "source=shlink&dry_run=false", fixture("shlink.json")).await;
    assert_eq!(real, dry);
    let again = import(&app, "source=shlink", fixture("shlink.json")).await;
    assert_eq!(
        again,
        json!({"created": 0, "skipped_existing": 2, "conflicts": [], "errors": []})
    );
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 2);
}

#[tokio::test]
async fn an_existing_slug_with_another_target_is_a_conflict_and_is_never_overwritten() {
    let app = TestApp::spawn().await;
    app.create_ok("https://mine.example/", Some("taken")).await;
    app.create_ok("https://e.com/same", Some("same")).await;
    let csv = "slug,url\ntaken,https://theirs.example/\nsame,https://e.com/same\nnew1,https://e.com/new\n";
    let report = import(&app, "source=csv", csv).await;
    assert_eq!(report["created"], 1);
    assert_eq!(report["skipped_existing"], 1);
    assert_eq!(report["conflicts"][0]["slug"], "taken");
    assert_eq!(app.link("taken").await["url"], "https://mine.example/");
}

#[tokio::test]
async fn an_invalid_url_or_a_refused_slug_is_an_error_naming_its_line() {
    let app = TestApp::spawn().await;
    let csv = "slug,url\nok-1,https://e.com/1\nbad-url,ftp://e.com/\napi,https://e.com/2\nx,https://e.com/3\nself,https://sho.rt/abc\n,\n";
    let report = import(&app, "source=csv", csv).await;
    assert_eq!(report["created"], 1);
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6]);
    assert!(
        report["errors"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("reserved")
    );
}

#[tokio::test]
async fn a_csv_with_only_urls_imports_once_under_slugs_derived_from_them() {
    let app = TestApp::spawn().await;
    let csv = "url\nhttps://e.com/one\nhttps://e.com/two\n";
    assert_eq!(import(&app, "source=csv", csv).await["created"], 2);
    let again = import(&app, "source=csv", csv).await;
    assert_eq!(again["created"], 0);
    assert_eq!(again["skipped_existing"], 2);
}

#[tokio::test]
async fn a_body_that_is_not_the_sources_format_and_a_bad_query_are_400s() {
    let app = TestApp::spawn().await;
    let r = import_as(&app, TOKEN, "source=kutt", b"not json".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_import");
    let r = import_as(&app, TOKEN, "source=tinyurl", b"url\n".to_vec()).await;
    assert_eq!(r.error_code(), "invalid_source");
    let r = import_as(&app, TOKEN, "", b"url\n".to_vec()).await;
    assert_eq!(r.error_code(), "invalid_source");
    let r = import_as(&app, TOKEN, "source=csv&dry_run=yes", b"url\n".to_vec()).await;
    assert_eq!(r.error_code(), "invalid_query");
    let r = import_as(&app, TOKEN, "source=csv", b"slug\nabc\n".to_vec()).await;
    assert_eq!(r.error_code(), "invalid_import");
}

#[tokio::test]
async fn an_import_over_its_limit_is_a_413_naming_the_limit_and_one_under_it_reads() {
    let app = TestApp::spawn().await;
    let limit = shortener::transfer::MAX_IMPORT_BYTES;
    let mut big = b"url\n".to_vec();
    big.resize(limit + 1, b'\n');
    let r = import_as(&app, TOKEN, "source=csv", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.error_code(), "payload_too_large");
    assert!(r.text().contains("10 MiB"), "{}", r.text());
    // Past the 16 KiB of a JSON body, under the import's own limit.
    let mut large = b"url\n".to_vec();
    large.resize(64 * 1024, b'\n');
    let r = import_as(&app, TOKEN, "source=csv", large).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_viewer_exports_but_may_not_import_and_an_editor_imports() {
    let app = TestApp::spawn().await;
    let viewer = app.key("viewer").await;
    let editor = app.key("editor").await;
    let r = import_as(
        &app,
        &viewer,
        "source=csv",
        b"url\nhttps://e.com/\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("editor"), "{}", r.text());
    let r = app
        .api_as(&viewer, Method::GET, "/api/export/links", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = import_as(
        &app,
        &editor,
        "source=csv",
        b"url\nhttps://e.com/\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = app
        .api_as("wrong", Method::GET, "/api/export/links", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn whoami_names_the_role_and_the_key_id() {
    let app = TestApp::spawn().await;
    let r = app.api(Method::GET, "/api/whoami", None).await;
    assert_eq!(r.json(), json!({"role": "admin", "id": null}));
    let viewer = app.key("viewer").await;
    let r = app.api_as(&viewer, Method::GET, "/api/whoami", None).await;
    assert_eq!(r.json()["role"], "viewer");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(viewer.starts_with(&format!("shk_{id}_")));
    let r = app.api_as("nope", Method::GET, "/api/whoami", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
