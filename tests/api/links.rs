use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::json;
use shortener::config::names;
use shortener::storage::KvStore;

use crate::helpers::{BASE, TestApp};

#[tokio::test]
async fn creating_a_link_returns_201_with_its_short_url() {
    let app = TestApp::spawn().await;
    let r = app
        .create(json!({"url": "https://example.com/a?b=c"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = r.json();
    let slug = body["slug"].as_str().unwrap();
    assert_eq!(slug.len(), 7);
    assert!(slug.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(body["short_url"], format!("{BASE}/{slug}"));
    assert_eq!(body["url"], "https://example.com/a?b=c");
    assert_eq!(body["created_at"], "2030-01-15T12:00:00Z");
    assert!(body["expires_at"].is_null());
    assert_eq!(
        r.header("location"),
        Some(format!("/api/links/{slug}").as_str())
    );
}

#[tokio::test]
async fn the_short_url_never_comes_from_the_host_header() {
    let app = TestApp::spawn().await;
    let request = axum::http::Request::post("/api/links")
        .header("host", "evil.example")
        .header("authorization", format!("Bearer {}", crate::helpers::TOKEN))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"url": "https://example.com"}).to_string(),
        ))
        .unwrap();
    let r = app.send(request).await;
    assert!(r.json()["short_url"].as_str().unwrap().starts_with(BASE));
}

#[tokio::test]
async fn slug_length_follows_the_variable() {
    let app = TestApp::with_vars(&[(names::SLUG_LENGTH, "12")]).await;
    let slug = app.create_ok("https://example.com", None).await;
    assert_eq!(slug.len(), 12);
}

#[tokio::test]
async fn a_custom_slug_is_used_as_given() {
    let app = TestApp::spawn().await;
    let slug = app
        .create_ok("https://example.com", Some("My_Link-1"))
        .await;
    assert_eq!(slug, "My_Link-1");
    let r = app.api(Method::GET, "/api/links/My_Link-1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["url"], "https://example.com/");
    assert_eq!(r.json()["clicks"], 0);
}

#[tokio::test]
async fn an_existing_slug_is_a_409_and_is_never_overwritten() {
    let app = TestApp::spawn().await;
    app.create_ok("https://first.example", Some("taken")).await;
    let r = app
        .create(json!({"url": "https://second.example", "slug": "taken"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "slug_taken");
    let link = app.api(Method::GET, "/api/links/taken", None).await.json();
    assert_eq!(link["url"], "https://first.example/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_slug_give_exactly_one_201() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let url = format!("https://racer{i}.example/");
                let r = app.create(json!({"url": url, "slug": "contested"})).await;
                (r.status, url)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (status, url) = t.await.unwrap();
        match status {
            StatusCode::CREATED => winners.push(url),
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let stored = app
        .api(Method::GET, "/api/links/contested", None)
        .await
        .json();
    assert_eq!(
        stored["url"], winners[0],
        "the winner's URL is the one stored"
    );
}

#[tokio::test]
async fn expires_at_is_stored_normalised_to_utc() {
    let app = TestApp::spawn().await;
    let r = app
        .create(json!({"url": "https://e.com", "expires_at": "2030-02-01T01:00:00+01:00"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["expires_at"], "2030-02-01T00:00:00Z");
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    let stored = app.kv.get(&format!("link:{slug}")).await.unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(
        stored["expires_at"], "2030-02-01T00:00:00Z",
        "the record itself"
    );
    let read = app
        .api(Method::GET, &format!("/api/links/{slug}"), None)
        .await;
    assert_eq!(read.json()["expires_at"], "2030-02-01T00:00:00Z");
}

#[tokio::test]
async fn records_stored_before_timestamps_were_typed_still_load() {
    let app = TestApp::spawn().await;
    // The record format as it has always been written: RFC 3339 text.
    let legacy = json!({"slug": "legacy1", "url": "https://e.com/",
        "created_at": "2030-01-01T00:00:00Z", "expires_at": "2030-01-10T00:00:00Z"});
    app.kv
        .set("link:legacy1", legacy.to_string().as_bytes())
        .await
        .unwrap();
    let r = app.api(Method::GET, "/api/links/legacy1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["created_at"], "2030-01-01T00:00:00Z");
    // The clock says 2030-01-15: expired.
    assert_eq!(app.follow("legacy1").await.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_stored_expiry_that_does_not_parse_is_an_error_not_never_expires() {
    let app = TestApp::spawn().await;
    let corrupt = json!({"slug": "broken1", "url": "https://e.com/",
        "created_at": "2030-01-01T00:00:00Z", "expires_at": "someday"});
    app.kv
        .set("link:broken1", corrupt.to_string().as_bytes())
        .await
        .unwrap();
    let r = app.follow("broken1").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.header("location").is_none(), "no redirect");
}

#[tokio::test]
async fn paging_lists_every_link_exactly_once_in_a_stable_order() {
    let app = TestApp::spawn().await;
    let mut created = HashSet::new();
    for i in 0..23 {
        created.insert(app.create_ok(&format!("https://e{i}.example"), None).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/links?limit=5&cursor={c}"),
            None => "/api/links?limit=5".to_owned(),
        };
        let page = app.api(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK);
        let body = page.json();
        let links = body["links"].as_array().unwrap();
        assert!(links.len() <= 5);
        seen.extend(links.iter().map(|l| l["slug"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23, "no link twice");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "every link once"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable slug order");
}

#[tokio::test]
async fn a_page_holds_at_most_100_links_and_a_larger_limit_is_refused() {
    let app = TestApp::spawn().await;
    for i in 0..105 {
        app.create_ok(&format!("https://e{i}.example"), None).await;
    }
    // `limit` is 1-100 as documented; above is a 400, not a silent cap.
    for limit in ["101", "1000"] {
        let r = app
            .api(Method::GET, &format!("/api/links?limit={limit}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{limit}");
        assert_eq!(r.error_code(), "invalid_limit", "{limit}");
    }
    let page = app
        .api(Method::GET, "/api/links?limit=100", None)
        .await
        .json();
    assert_eq!(page["links"].as_array().unwrap().len(), 100);
    assert!(page["next_cursor"].is_string());
    let default = app.api(Method::GET, "/api/links", None).await.json();
    assert_eq!(default["links"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn an_empty_store_lists_no_links_and_no_cursor() {
    let app = TestApp::spawn().await;
    let page = app.api(Method::GET, "/api/links", None).await.json();
    assert_eq!(page, json!({"links": [], "next_cursor": null}));
}

#[tokio::test]
async fn getting_an_unknown_link_is_404() {
    let app = TestApp::spawn().await;
    let r = app.api(Method::GET, "/api/links/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
}

#[tokio::test]
async fn deleting_removes_the_link_its_clicks_and_rollups() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com", Some("gone-soon")).await;
    for _ in 0..3 {
        app.follow("gone-soon").await;
    }
    let r = app.api(Method::DELETE, "/api/links/gone-soon", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(app.follow("gone-soon").await.status, StatusCode::NOT_FOUND);
    for table in [
        "SELECT count(*) FROM clicks WHERE slug = ?1",
        "SELECT count(*) FROM daily_clicks WHERE slug = ?1",
        "SELECT count(*) FROM daily_dimensions WHERE slug = ?1",
        "SELECT count(*) FROM link_dimensions WHERE slug = ?1",
        "SELECT count(*) FROM links WHERE slug = ?1",
    ] {
        assert_eq!(app.count(table, vec!["gone-soon".into()]), 0, "{table}");
    }
    assert_eq!(
        app.api(Method::DELETE, "/api/links/gone-soon", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_link_recreated_after_delete_starts_from_zero() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com", Some("reborn")).await;
    app.follow("reborn").await;
    app.api(Method::DELETE, "/api/links/reborn", None).await;
    app.create_ok("https://other.com", Some("reborn")).await;
    let link = app.api(Method::GET, "/api/links/reborn", None).await.json();
    assert_eq!(link["clicks"], 0);
    assert_eq!(app.stats("reborn", "").await.json()["total"], 0);
}

#[tokio::test]
async fn deleting_an_unknown_link_is_404() {
    let app = TestApp::spawn().await;
    let r = app.api(Method::DELETE, "/api/links/never", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_random_slug_that_collides_is_redrawn() {
    let app = TestApp::spawn().await;
    app.create_ok("https://first.example", Some("Taken12"))
        .await;
    app.queue_random_slugs(&["Taken12", "Fresh34"]);
    let slug = app.create_ok("https://second.example", None).await;
    assert_eq!(slug, "Fresh34");
    let first = app
        .api(Method::GET, "/api/links/Taken12", None)
        .await
        .json();
    assert_eq!(
        first["url"], "https://first.example/",
        "the taken slug is untouched"
    );
}

#[tokio::test]
async fn random_slug_draws_give_up_with_a_500_after_repeated_collisions() {
    let app = TestApp::spawn().await;
    app.create_ok("https://first.example", Some("Taken12"))
        .await;
    app.queue_random_slugs(&["Taken12"; shortener::links::RANDOM_SLUG_ATTEMPTS]);
    let r = app.create(json!({"url": "https://second.example"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.count("SELECT count(*) FROM links", vec![]),
        1,
        "nothing else stored"
    );
}

#[tokio::test]
async fn a_random_slug_that_is_a_reserved_word_is_redrawn() {
    let app = TestApp::spawn().await;
    app.queue_random_slugs(&["metrics", "CONSOLE", "Fresh34"]);
    let slug = app.create_ok("https://e.example", None).await;
    assert_eq!(slug, "Fresh34");
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 1);
}

#[tokio::test]
async fn a_failed_registry_delete_leaves_the_link_whole() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.example", Some("keepme")).await;
    app.sql.set_failing(true);
    let r = app
        .api(Method::DELETE, &format!("/api/links/{slug}"), None)
        .await;
    app.sql.set_failing(false);
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Neither half is gone: the record still answers and the slug is still owned.
    let got = app.api(Method::GET, "/api/links/keepme", None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(app.follow("keepme").await.status, StatusCode::FOUND);
    let again = app
        .create(json!({"url": "https://other.example", "slug": "keepme"}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // And a retried delete removes both.
    let r = app.api(Method::DELETE, "/api/links/keepme", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 0);
    assert_eq!(
        app.api(Method::GET, "/api/links/keepme", None).await.status,
        StatusCode::NOT_FOUND
    );
}
