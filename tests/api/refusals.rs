use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use shortener::config::names;

use crate::helpers::{TOKEN, TestApp, TestResponse};

async fn refused(app: &TestApp, body: serde_json::Value, code: &str) {
    let r = app.create(body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
    assert_eq!(r.error_code(), code, "{body}");
    assert!(!r.json()["error"]["message"].as_str().unwrap().is_empty());
}

/// An authorised `POST /api/links` with a raw body and content type.
async fn post_raw(app: &TestApp, content_type: Option<&str>, body: Body) -> TestResponse {
    let mut builder =
        Request::post("/api/links").header("authorization", format!("Bearer {TOKEN}"));
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    app.send(builder.body(body).unwrap()).await
}

fn nothing_stored(app: &TestApp) {
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 0);
}

#[tokio::test]
async fn invalid_urls_are_refused_with_400() {
    let app = TestApp::spawn().await;
    for url in [
        "ftp://e.com",
        "/relative",
        "e.com",
        "javascript:alert(1)",
        "https://u:p@e.com",
        "",
    ] {
        refused(&app, json!({"url": url}), "invalid_url").await;
    }
    refused(
        &app,
        json!({"url": format!("https://e.com/{}", "a".repeat(2040))}),
        "invalid_url",
    )
    .await;
    nothing_stored(&app);
}

#[tokio::test]
async fn urls_pointing_at_our_own_short_links_are_refused() {
    let app = TestApp::spawn().await;
    refused(
        &app,
        json!({"url": "https://sho.rt/abc"}),
        "self_referencing_url",
    )
    .await;
    nothing_stored(&app);
}

#[tokio::test]
async fn urls_reaching_the_shortener_by_another_name_are_refused() {
    let app = TestApp::with_vars(&[
        (names::PUBLIC_BASE_URL, "http://127.0.0.1:3000"),
        (names::PUBLIC_HOST_ALIASES, "sho.rt, go.example:8443"),
    ])
    .await;
    for url in [
        "http://localhost:3000/abc",
        "http://localhost.:3000/abc",
        "http://[::1]:3000/abc",
        "http://[::ffff:127.0.0.1]:3000/abc",
        "http://127.0.0.1.:3000/abc",
        "https://sho.rt./abc",
        "http://SHO.RT/abc",
        "https://go.example:8443/abc",
    ] {
        refused(&app, json!({"url": url}), "self_referencing_url").await;
    }
    nothing_stored(&app);
    app.create_ok("http://localhost:8080/elsewhere", None).await;
    app.create_ok("https://go.example/other-port", None).await;
}

#[tokio::test]
async fn invalid_and_reserved_slugs_are_refused() {
    let app = TestApp::spawn().await;
    for slug in ["ab", "has space", "a/b", "ünicode"] {
        refused(
            &app,
            json!({"url": "https://e.com", "slug": slug}),
            "invalid_slug",
        )
        .await;
    }
    for slug in ["api", "health", "metrics", "console", "API", "Console"] {
        refused(
            &app,
            json!({"url": "https://e.com", "slug": slug}),
            "reserved_slug",
        )
        .await;
    }
    nothing_stored(&app);
}

#[tokio::test]
async fn bad_or_past_expiry_is_refused() {
    let app = TestApp::spawn().await;
    refused(
        &app,
        json!({"url": "https://e.com", "expires_at": "tomorrow"}),
        "invalid_timestamp",
    )
    .await;
    refused(
        &app,
        json!({"url": "https://e.com", "expires_at": "2020-01-01T00:00:00Z"}),
        "invalid_expiry",
    )
    .await;
    nothing_stored(&app);
}

#[tokio::test]
async fn out_of_range_timestamps_are_400_and_claim_nothing() {
    let app = TestApp::spawn().await;
    for expires_at in [
        // In range with its offset, year 10000 in UTC.
        "9999-12-31T23:59:59-01:00",
        // Year -1 in UTC.
        "0000-01-01T00:00:00+01:00",
        "2030-02-30T00:00:00Z",
        "2030-01-01T00:00:00+24:00",
    ] {
        refused(
            &app,
            json!({"url": "https://e.com", "slug": "stuck1", "expires_at": expires_at}),
            "invalid_timestamp",
        )
        .await;
    }
    nothing_stored(&app);
    // The slug was never claimed: it is free for a valid create.
    let r = app
        .create(
            json!({"url": "https://e.com", "slug": "stuck1", "expires_at": "9999-12-31T23:59:59Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["expires_at"], "9999-12-31T23:59:59Z");
    assert_eq!(app.follow("stuck1").await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn malformed_json_missing_fields_and_wrong_types_are_400() {
    let app = TestApp::spawn().await;
    for raw in [
        "{",
        "[]",
        "{}",
        r#"{"url": 5}"#,
        r#"{"slug": "abc"}"#,
        r#"{"url": "https://e.com", "extra": 1}"#,
        "",
    ] {
        let r = post_raw(&app, Some("application/json"), Body::from(raw)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(r.error_code(), "invalid_json", "{raw}");
    }
    nothing_stored(&app);
}

#[tokio::test]
async fn bodies_over_16_kib_are_413() {
    let app = TestApp::spawn().await;
    let big = json!({"url": "https://e.com", "slug": "x".repeat(17 * 1024)}).to_string();
    let r = post_raw(&app, Some("application/json"), Body::from(big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.error_code(), "payload_too_large");
    nothing_stored(&app);
}

#[tokio::test]
async fn a_chunked_body_over_16_kib_without_length_is_413() {
    let app = TestApp::spawn().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let r = post_raw(&app, Some("application/json"), body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_content_type_other_than_json_is_415() {
    let app = TestApp::spawn().await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = post_raw(&app, ct, Body::from(r#"{"url":"https://e.com"}"#)).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(r.error_code(), "unsupported_media_type");
    }
    let ok = post_raw(
        &app,
        Some("application/json; charset=utf-8"),
        Body::from(r#"{"url":"https://e.com"}"#),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_paging_parameters_are_400() {
    let app = TestApp::spawn().await;
    for q in ["limit=0", "limit=-1", "limit=abc", "cursor=a%2Fb"] {
        let r = app.api(Method::GET, &format!("/api/links?{q}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let r = app.api(Method::GET, "/api/nothing/here", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = app.api(Method::PUT, "/api/links", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "method_not_allowed");
}
