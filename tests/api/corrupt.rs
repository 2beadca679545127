//! Records that do not decode (garbage in key-value or in the registry's
//! copy, or a record an older version wrote) and registry slugs that an
//! older version allowed: the list and search (which read the registry's
//! copy) skip and count them, a read of one is a clear error, and a delete
//! of any registered slug removes it.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use shortener::storage::{KvStore, SqlStore, SqlValue, Statement};

use crate::helpers::{TestApp, slugs_of};

/// Overwrites the record of `slug` with bytes that are no link.
async fn corrupt(app: &TestApp, slug: &str) {
    app.kv
        .set(&format!("link:{slug}"), b"\x00not json{")
        .await
        .unwrap();
}

/// Overwrites the registry's copy of the record of `slug` (what lists read)
/// with bytes that are no link.
async fn corrupt_copy(app: &TestApp, slug: &str) {
    let garble = Statement {
        sql: "UPDATE links SET record = 'not json{' WHERE slug = ?1",
        operation: "UPDATE",
        table: "links",
    };
    app.sql.execute(&garble, vec![slug.into()]).await.unwrap();
}

async fn metrics(app: &TestApp) -> String {
    let r = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.text()
}

#[tokio::test]
async fn the_list_skips_a_corrupt_record_and_pages_past_it() {
    let app = TestApp::spawn().await;
    for slug in ["aaa", "bbb", "ccc", "ddd"] {
        app.create_ok("https://e.com/", Some(slug)).await;
    }
    corrupt_copy(&app, "bbb").await;

    let first = app.api(Method::GET, "/api/links?limit=2", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(slugs_of(&first.json()), ["aaa"]);
    let cursor = first.json()["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .api(
            Method::GET,
            &format!("/api/links?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(slugs_of(&second.json()), ["ccc", "ddd"]);
}

#[tokio::test]
async fn a_corrupt_key_value_record_is_still_listed_from_its_registry_copy() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/", Some("aaa")).await;
    corrupt(&app, "aaa").await;
    let r = app.api(Method::GET, "/api/links", None).await;
    assert_eq!(slugs_of(&r.json()), ["aaa"]);
    assert_eq!(r.json()["links"][0]["url"], "https://e.com/");
}

#[tokio::test]
async fn a_search_that_reaches_a_corrupt_record_skips_it() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/match", Some("one")).await;
    app.create_ok("https://e.com/match", Some("two")).await;
    corrupt_copy(&app, "one").await;
    let r = app.api(Method::GET, "/api/links?q=match", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(slugs_of(&r.json()), ["two"]);
    assert!(r.json()["next_cursor"].is_null());
}

#[tokio::test]
async fn corrupt_records_seen_are_counted_once_each_on_metrics_until_deleted() {
    let app = TestApp::spawn().await;
    for slug in ["aaa", "bbb", "ccc"] {
        app.create_ok("https://e.com/", Some(slug)).await;
    }
    assert!(
        metrics(&app)
            .await
            .contains("shortener_corrupt_records 0\n"),
        "zero before any is seen"
    );
    corrupt(&app, "aaa").await;
    corrupt_copy(&app, "aaa").await;
    corrupt_copy(&app, "bbb").await;
    // Seen by two lists, a search and a read: each counted once.
    app.api(Method::GET, "/api/links", None).await;
    app.api(Method::GET, "/api/links", None).await;
    app.api(Method::GET, "/api/links?q=e.com", None).await;
    app.api(Method::GET, "/api/links/aaa", None).await;
    let text = metrics(&app).await;
    assert!(text.contains("shortener_corrupt_records 2\n"), "{text}");

    let r = app.api(Method::DELETE, "/api/links/aaa", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let text = metrics(&app).await;
    assert!(text.contains("shortener_corrupt_records 1\n"), "{text}");
}

#[tokio::test]
async fn getting_or_patching_a_corrupt_record_is_a_500_corrupt_record_error() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/", Some("broken")).await;
    corrupt(&app, "broken").await;

    let r = app.api(Method::GET, "/api/links/broken", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.error_code(), "corrupt_record");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Delete"), "{message}");
    assert!(
        !message.contains("expected"),
        "no decoder detail: {message}"
    );

    let patch = serde_json::json!({"url": "https://f.com/"});
    let r = app
        .api(Method::PATCH, "/api/links/broken", Some(patch))
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.error_code(), "corrupt_record");
    assert_eq!(
        app.kv.get("link:broken").await.unwrap().as_deref(),
        Some(&b"\x00not json{"[..]),
        "a PATCH never rewrites a record it could not read"
    );
}

#[tokio::test]
async fn deleting_a_corrupt_record_removes_its_registry_row_record_and_clicks() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/", Some("broken")).await;
    app.follow("broken").await;
    corrupt(&app, "broken").await;

    let r = app.api(Method::DELETE, "/api/links/broken", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(app.kv.get("link:broken").await.unwrap(), None);
    assert_eq!(app.clicks_of("broken"), 0);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM links WHERE slug = ?1",
            vec!["broken".into()]
        ),
        0
    );
}

#[tokio::test]
async fn deleting_a_registered_reserved_word_that_an_older_version_allowed_removes_it() {
    let app = TestApp::spawn().await;
    // What an older version stored: a registry row, a record and a click.
    app.sql
        .execute_blocking(
            &Statement {
                sql: "INSERT INTO links (slug, created_at) VALUES ('metrics', 1893456000)",
                operation: "INSERT",
                table: "links",
            },
            vec![],
        )
        .unwrap();
    app.sql
        .execute_blocking(
            &Statement {
                sql: "INSERT INTO clicks (slug, at, day, browser, os, is_bot, visitor) \
                      VALUES ('metrics', 1893456000, '2030-01-01', 'Chrome', 'Windows', 0, 'v')",
                operation: "INSERT",
                table: "clicks",
            },
            vec![],
        )
        .unwrap();
    let record = serde_json::json!({"slug": "metrics", "url": "https://e.com/",
        "created_at": "2030-01-01T00:00:00Z", "expires_at": null});
    app.kv
        .set("link:metrics", record.to_string().as_bytes())
        .await
        .unwrap();

    let r = app.api(Method::DELETE, "/api/links/metrics", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(app.kv.get("link:metrics").await.unwrap(), None);
    assert_eq!(app.clicks_of("metrics"), 0);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM links WHERE slug = ?1",
            vec![SqlValue::from("metrics")]
        ),
        0
    );
    let r = app.api(Method::DELETE, "/api/links/metrics", None).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "gone: a second delete is 404"
    );
}
