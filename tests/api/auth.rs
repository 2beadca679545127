use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::config::names;

use crate::helpers::{TOKEN, TestApp};

fn api_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/api/links"),
        (Method::GET, "/api/links"),
        (Method::GET, "/api/links/abc"),
        (Method::DELETE, "/api/links/abc"),
        (Method::GET, "/api/links/abc/stats"),
    ]
}

#[tokio::test]
async fn every_api_route_refuses_a_missing_token_with_401() {
    let app = TestApp::spawn().await;
    for (method, path) in api_routes() {
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"url": "https://example.com"}).to_string(),
            ))
            .unwrap();
        let r = app.send(request).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.error_code(), "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn a_wrong_token_or_scheme_is_refused_with_401() {
    let app = TestApp::spawn().await;
    for auth in [
        format!("Bearer {TOKEN}x"),
        "Bearer ".to_owned(),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
    ] {
        let request = Request::builder()
            .uri("/api/links")
            .header("authorization", auth.clone())
            .body(Body::empty())
            .unwrap();
        let r = app.send(request).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth}");
    }
}

#[tokio::test]
async fn with_no_token_configured_the_api_refuses_every_call_and_says_why() {
    let app = TestApp::with_vars(&[(names::ADMIN_TOKEN, "")]).await;
    for (method, path) in api_routes() {
        let r = app.api(method, path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.error_code(), "api_disabled");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admin_token")
        );
    }
}

#[tokio::test]
async fn with_a_placeholder_or_short_token_the_api_refuses_every_call_and_says_why() {
    for (token, why) in [
        ("change-me-admin-token", "placeholder"),
        ("0123456789abcdef", "shorter than 32 bytes"),
    ] {
        let app = TestApp::with_vars(&[(names::ADMIN_TOKEN, token)]).await;
        let auth = format!("Bearer {token}");
        let request = Request::builder()
            .uri("/api/links")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap();
        let r = app.send(request).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(r.error_code(), "api_disabled");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(why), "{message}");
        // Redirects keep working.
        assert_eq!(app.follow("nope-nope").await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn redirects_and_health_are_public() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://example.com/", None).await;
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    let health = app
        .send(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status, StatusCode::OK);
}
