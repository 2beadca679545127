use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::helpers::{GOOGLEBOT, TestApp, Visit};

async fn get(app: &TestApp, path: &str) -> crate::helpers::TestResponse {
    app.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn health_is_ok_when_every_store_answers() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"status": "ok", "checks": {"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"}})
    );
}

#[tokio::test]
async fn health_is_503_naming_the_store_that_failed() {
    let app = TestApp::spawn().await;
    app.sql.set_failing(true);
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["checks"],
        json!({"kv": "ok", "sqlite": "error", "sqlite_unrecorded": "ok"})
    );
    app.sql.set_failing(false);
    app.kv.set_failing(true);
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["checks"],
        json!({"kv": "error", "sqlite": "ok", "sqlite_unrecorded": "ok"})
    );
    app.kv.set_failing(false);
    app.unrecorded.set_failing(true);
    let r = get(&app, "/health").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json()["checks"],
        json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "error"})
    );
}

#[tokio::test]
async fn metrics_report_clicks_by_kind_and_links_from_sqlite() {
    let app = TestApp::spawn().await;
    let a = app.create_ok("https://a.example", None).await;
    let b = app.create_ok("https://b.example", None).await;
    app.follow(&a).await;
    app.follow(&a).await;
    app.visit(&b, Visit::default().user_agent(GOOGLEBOT)).await;
    app.visit(&b, Visit::default().method(Method::HEAD)).await;

    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text();
    assert!(
        text.contains("shortener_clicks_total{kind=\"human\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("shortener_clicks_total{kind=\"bot\"} 1"),
        "{text}"
    );
    assert!(text.contains("shortener_links 2"), "{text}");
    for forbidden in [a.as_str(), b.as_str(), "203.0.113.7", "Googlebot"] {
        assert!(!text.contains(forbidden), "no slug, IP or agent in labels");
    }
    if let Ok(path) = std::env::var("SHORTENER_METRICS_DUMP") {
        std::fs::write(path, &text).unwrap();
    }
}

#[tokio::test]
async fn the_click_counter_never_goes_down_when_a_link_is_deleted() {
    let app = TestApp::spawn().await;
    let a = app.create_ok("https://a.example", None).await;
    app.follow(&a).await;
    app.follow(&a).await;
    app.api(Method::DELETE, &format!("/api/links/{a}"), None)
        .await;
    let text = get(&app, "/metrics").await.text();
    assert!(
        text.contains("shortener_clicks_total{kind=\"human\"} 2"),
        "{text}"
    );
    assert!(text.contains("shortener_links 0"), "{text}");
}

#[tokio::test]
async fn metrics_and_health_need_no_token() {
    let app = TestApp::spawn().await;
    // `get` sends no Authorization header.
    for path in ["/metrics", "/health"] {
        assert_eq!(get(&app, path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_refused_variable_makes_every_answer_name_it() {
    let error = shortener::config::Settings::from_lookup(|k| {
        (k == shortener::config::names::REDIRECT_STATUS).then(|| "303".to_owned())
    })
    .unwrap_err();
    let router = shortener::misconfigured_router(error);
    for path in ["/abc", "/health", "/api/links"] {
        let response = tower::ServiceExt::oneshot(
            router.clone(),
            Request::get(path).body(Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "misconfigured");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("redirect_status") && message.contains("303"),
            "{message}"
        );
    }
}

/// Salts the app refuses, as the admin token's rules refuse them: a
/// placeholder from `.env.example`, one shorter than 32 bytes, an empty one.
const REFUSED_SALTS: [&str; 3] = ["change-me-visitor-salt", "too-short-salt", ""];

#[tokio::test]
async fn a_placeholder_short_or_empty_visitor_salt_makes_health_503_naming_it() {
    for salt in REFUSED_SALTS {
        let app = TestApp::with_vars(&[(shortener::config::names::VISITOR_SALT, salt)]).await;
        let r = get(&app, "/health").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{salt:?}");
        let body = r.json();
        assert_eq!(body["status"], "misconfigured", "{salt:?}");
        assert_eq!(
            body["checks"],
            json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"}),
            "the stores are fine"
        );
        let reason = body["refused"]["visitor_salt"].as_str().unwrap_or_default();
        assert!(
            reason.contains("openssl rand -hex 32"),
            "{salt:?}: {reason}"
        );
        if !salt.is_empty() {
            assert!(!body.to_string().contains(salt), "the salt is never sent");
        }
    }
}

#[tokio::test]
async fn with_a_refused_visitor_salt_redirects_are_served_and_counted_as_unrecorded() {
    for salt in REFUSED_SALTS {
        let app = TestApp::with_vars(&[(shortener::config::names::VISITOR_SALT, salt)]).await;
        let slug = app.create_ok("https://e.com/", None).await;
        let human = app.follow(&slug).await;
        assert_eq!(
            human.status,
            StatusCode::FOUND,
            "{salt:?}: {}",
            human.text()
        );
        let bot = app
            .visit(&slug, Visit::default().user_agent(GOOGLEBOT))
            .await;
        assert_eq!(bot.status, StatusCode::FOUND, "{salt:?}");
        assert_eq!(
            app.clicks_of(&slug),
            0,
            "no weakly keyed visitor hash stored"
        );
        assert_eq!(
            app.link(&slug).await["unrecorded_clicks"],
            json!({"human": 1, "bot": 1}),
            "{salt:?}: served = recorded + unrecorded"
        );
    }
}

#[tokio::test]
async fn metrics_report_every_store_up_when_all_answer() {
    let app = TestApp::spawn().await;
    let text = get(&app, "/metrics").await.text();
    for store in ["kv", "sqlite", "sqlite_unrecorded"] {
        assert!(
            text.contains(&format!("shortener_store_up{{store=\"{store}\"}} 1\n")),
            "{store}: {text}"
        );
    }
}

#[tokio::test]
async fn metrics_answer_200_with_what_they_can_read_when_a_store_fails() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com/", None).await;
    app.follow(&slug).await;

    // The click database fails: its series are left out, the tally's stay.
    app.sql.set_failing(true);
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("shortener_store_up{store=\"sqlite\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("shortener_store_up{store=\"kv\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("shortener_store_up{store=\"sqlite_unrecorded\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("shortener_build_info{"), "{text}");
    assert!(
        !text.contains("shortener_clicks_total"),
        "no made-up zero: {text}"
    );
    assert!(!text.contains("shortener_links "), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    app.sql.set_failing(false);

    // The tally fails: the click database's series stay.
    app.unrecorded.set_failing(true);
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("shortener_store_up{store=\"sqlite_unrecorded\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("shortener_store_up{store=\"sqlite\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("shortener_clicks_total{kind=\"human\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("shortener_links 1\n"), "{text}");
    assert!(
        !text.contains("shortener_clicks_unrecorded_total"),
        "{text}"
    );
    app.unrecorded.set_failing(false);

    // The key-value store fails: every SQLite series stays.
    app.kv.set_failing(true);
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("shortener_store_up{store=\"kv\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("shortener_links 1\n"), "{text}");
}
