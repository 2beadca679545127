//! API keys with roles: made by an admin and shown once, listed without
//! their secret, refused with 403 naming the role needed, 401 once revoked,
//! expired or unknown.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::helpers::TestApp;

async fn keys(app: &TestApp) -> Vec<Value> {
    let r = app.api(Method::GET, "/api/keys", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_admin_makes_a_key_that_is_shown_once_and_listed_without_its_secret() {
    let app = TestApp::spawn().await;
    let r = app
        .api(
            Method::POST,
            "/api/keys",
            Some(json!({"name": " grafana ", "role": "viewer", "expires_at": "2031-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let made = r.json();
    let key = made["key"].as_str().unwrap();
    let id = made["id"].as_str().unwrap();
    assert!(key.starts_with(&format!("shk_{id}_")), "{key}");
    assert_eq!(
        r.header("location"),
        Some(format!("/api/keys/{id}").as_str())
    );
    assert_eq!(made["name"], "grafana");
    assert_eq!(made["role"], "viewer");
    assert_eq!(made["created_at"], "2030-01-15T12:00:00Z");
    assert_eq!(made["expires_at"], "2031-01-01T00:00:00Z");
    assert_eq!(made["last_used_at"], Value::Null);

    let listed = keys(&app).await;
    assert_eq!(listed.len(), 1);
    let mut expected = made.clone();
    expected.as_object_mut().unwrap().remove("key");
    assert_eq!(listed[0], expected);
    let text = listed[0].to_string();
    assert!(!text.contains(&key[4 + id.len() + 1..]), "no secret listed");
    let stored = app.query("SELECT key_hash FROM api_keys", vec![]);
    assert!(
        !format!("{stored:?}").contains(key),
        "only a hash is stored"
    );
}

#[tokio::test]
async fn each_role_does_what_it_may_and_gets_a_403_naming_the_role_it_lacks() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com/x", None).await;
    let viewer = app.key("viewer").await;
    let editor = app.key("editor").await;
    let admin = app.key("admin").await;
    let create = || Some(json!({"url": "https://e.com/new"}));

    for path in [
        "/api/links".to_owned(),
        format!("/api/links/{slug}"),
        format!("/api/links/{slug}/stats"),
        format!("/api/links/{slug}/qr"),
    ] {
        let r = app.api_as(&viewer, Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "viewer GET {path}: {}", r.text());
    }
    let r = app
        .api_as(&viewer, Method::POST, "/api/links", create())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "forbidden");
    assert_eq!(
        r.json()["error"]["message"],
        "This needs the editor role; this key is viewer."
    );
    let r = app
        .api_as(&viewer, Method::DELETE, &format!("/api/links/{slug}"), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.api_as(&viewer, Method::GET, "/api/keys", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = app
        .api_as(&editor, Method::POST, "/api/links", create())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = app
        .api_as(
            &editor,
            Method::PATCH,
            &format!("/api/links/{slug}"),
            Some(json!({"url": "https://e.com/y"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (method, path) in [(Method::GET, "/api/keys"), (Method::POST, "/api/keys")] {
        let body = (method == Method::POST).then(|| json!({"name": "n", "role": "viewer"}));
        let r = app.api_as(&editor, method, path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            r.json()["error"]["message"],
            "This needs the admin role; this key is editor."
        );
    }

    let r = app.api_as(&admin, Method::GET, "/api/keys", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .api_as(&admin, Method::DELETE, &format!("/api/links/{slug}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_revoked_an_expired_or_an_unknown_key_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let viewer = app.key("viewer").await;
    assert_eq!(
        app.api_as(&viewer, Method::GET, "/api/links", None)
            .await
            .status,
        StatusCode::OK
    );
    let id = viewer.split('_').nth(1).unwrap();
    let r = app
        .api(Method::DELETE, &format!("/api/keys/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.api_as(&viewer, Method::GET, "/api/links", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    let r = app
        .api(Method::DELETE, &format!("/api/keys/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "revoked once");

    let r = app
        .api(
            Method::POST,
            "/api/keys",
            Some(json!({"name": "brief", "role": "editor", "expires_at": "2030-01-16T00:00:00Z"})),
        )
        .await;
    let brief = r.json()["key"].as_str().unwrap().to_owned();
    app.set_now(datetime!(2030-01-16 00:00 UTC));
    let r = app.api_as(&brief, Method::GET, "/api/links", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["message"], "The key has expired.");

    // The right shape with a wrong secret, and a key that never existed.
    let forged = format!("{}{}", &brief[..brief.len() - 1], "Z");
    let forged = if forged == brief {
        format!("{}{}", &brief[..brief.len() - 1], "Y")
    } else {
        forged
    };
    for key in [
        forged.as_str(),
        "shk_000000000000_00000000000000000000000000000000",
        "shk_x",
    ] {
        let r = app.api_as(key, Method::GET, "/api/links", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{key}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn a_key_notes_when_it_was_last_used_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let viewer = app.key("viewer").await;
    assert_eq!(keys(&app).await[0]["last_used_at"], Value::Null);
    app.api_as(&viewer, Method::GET, "/api/links", None).await;
    assert_eq!(keys(&app).await[0]["last_used_at"], "2030-01-15T12:00:00Z");
    app.set_now(datetime!(2030-01-15 12:00:30 UTC));
    app.api_as(&viewer, Method::GET, "/api/links", None).await;
    assert_eq!(keys(&app).await[0]["last_used_at"], "2030-01-15T12:00:00Z");
    app.set_now(datetime!(2030-01-15 12:01:00 UTC));
    app.api_as(&viewer, Method::GET, "/api/links", None).await;
    assert_eq!(keys(&app).await[0]["last_used_at"], "2030-01-15T12:01:00Z");
}

#[tokio::test]
async fn a_key_request_with_a_bad_name_role_or_expiry_is_refused_with_its_code() {
    let app = TestApp::spawn().await;
    for (body, code) in [
        (json!({"name": "", "role": "viewer"}), "invalid_name"),
        (
            json!({"name": "x".repeat(65), "role": "viewer"}),
            "invalid_name",
        ),
        (json!({"name": "n", "role": "owner"}), "invalid_role"),
        (
            json!({"name": "n", "role": "viewer", "expires_at": "soon"}),
            "invalid_timestamp",
        ),
        (
            json!({"name": "n", "role": "viewer", "expires_at": "2030-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"name": "n", "role": "viewer", "extra": 1}),
            "invalid_json",
        ),
    ] {
        let r = app.api(Method::POST, "/api/keys", Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.error_code(), code, "{body}");
    }
    assert!(keys(&app).await.is_empty());
}
