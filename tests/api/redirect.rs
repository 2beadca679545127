use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::config::names;
use shortener::storage::SqlValue;
use time::macros::datetime;
use tower::ServiceExt;

use crate::helpers::{CHROME, GOOGLEBOT, TestApp, Visit};

#[tokio::test]
async fn following_a_link_redirects_with_302_and_records_one_click() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://example.com/target", None).await;
    let r = app.follow(&slug).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://example.com/target"));
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
    assert_eq!(app.clicks_of(&slug), 1);
}

#[tokio::test]
async fn the_redirect_status_follows_the_variable() {
    for code in [301u16, 302, 307, 308] {
        let app = TestApp::with_vars(&[(names::REDIRECT_STATUS, &code.to_string())]).await;
        let slug = app.create_ok("https://example.com", None).await;
        assert_eq!(app.follow(&slug).await.status.as_u16(), code);
    }
}

#[tokio::test]
async fn head_answers_like_get_but_records_no_click() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://example.com/x", None).await;
    let head = app
        .visit(&slug, Visit::default().method(Method::HEAD))
        .await;
    assert_eq!(head.status, StatusCode::FOUND);
    assert_eq!(head.header("location"), Some("https://example.com/x"));
    assert!(head.body.is_empty());
    assert_eq!(app.clicks_of(&slug), 0);
    let link = app
        .api(Method::GET, &format!("/api/links/{slug}"), None)
        .await
        .json();
    assert_eq!(link["clicks"], 0);
}

#[tokio::test]
async fn an_unknown_slug_is_404_and_records_nothing() {
    let app = TestApp::spawn().await;
    for path in ["nope", "x", "a.b", "%FF%FE"] {
        let r = app.follow(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.error_code(), "not_found");
    }
    assert_eq!(app.count("SELECT count(*) FROM clicks", vec![]), 0);
}

#[tokio::test]
async fn an_expired_link_is_410_and_records_nothing() {
    let app = TestApp::spawn().await;
    create_brief(&app).await;
    assert_eq!(app.follow("brief").await.status, StatusCode::FOUND);
    app.set_now(datetime!(2030-01-16 00:00 UTC));
    let r = app.follow("brief").await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(r.error_code(), "link_expired");
    let head = app
        .visit("brief", Visit::default().method(Method::HEAD))
        .await;
    assert_eq!(head.status, StatusCode::GONE);
    assert_eq!(app.clicks_of("brief"), 1);
}

#[tokio::test]
async fn a_click_row_holds_referrer_host_browser_os_bot_flag_and_a_hash_but_no_ip() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.visit(
        &slug,
        Visit::default().referer("https://News.example.org/item?id=1"),
    )
    .await;
    app.visit(&slug, Visit::default().user_agent(GOOGLEBOT))
        .await;
    let rows = app.query(
        "SELECT referrer_host, browser, os, is_bot, visitor, day FROM clicks ORDER BY id",
        vec![],
    );
    assert_eq!(rows[0][0], SqlValue::Text("news.example.org".into()));
    assert_eq!(rows[0][1], SqlValue::Text("Chrome".into()));
    assert_eq!(rows[0][3], SqlValue::Integer(0));
    assert_eq!(rows[1][3], SqlValue::Integer(1));
    assert_eq!(rows[0][5], SqlValue::Text("2030-01-15".into()));
    let raw = std::fs::read(&app.db_path).unwrap();
    let wal = std::fs::read(app.db_path.with_extension("db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("203.0.113.7"), "no raw IP is stored");
    }
}

fn visitor_hashes(app: &TestApp) -> Vec<SqlValue> {
    app.query("SELECT visitor FROM clicks ORDER BY id", vec![])
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[tokio::test]
async fn a_spoofed_left_most_forwarded_for_does_not_change_the_visitor() {
    let app = TestApp::with_vars(&[(names::TRUSTED_PROXY_HOPS, "1")]).await;
    let slug = app.create_ok("https://e.com", None).await;
    let via_proxy = |xff| Visit::default().peer("172.18.0.3").forwarded_for(xff);
    app.visit(&slug, via_proxy("198.51.100.4")).await;
    app.visit(&slug, via_proxy("6.6.6.6, 198.51.100.4")).await;
    app.visit(&slug, via_proxy("7.7.7.7, 8.8.8.8, 198.51.100.4"))
        .await;
    app.visit(&slug, via_proxy("198.51.100.5")).await;
    let h = visitor_hashes(&app);
    assert_eq!(h[0], h[1]);
    assert_eq!(h[0], h[2]);
    assert_ne!(h[0], h[3], "a different real client is a different visitor");
    let stats = app.stats(&slug, "").await.json();
    assert_eq!(stats["unique_visitors"], 2);
}

#[tokio::test]
async fn without_trusted_hops_forwarded_for_is_ignored() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.visit(&slug, Visit::default().forwarded_for("1.1.1.1"))
        .await;
    app.visit(&slug, Visit::default().forwarded_for("2.2.2.2"))
        .await;
    let h = visitor_hashes(&app);
    assert_eq!(h[0], h[1], "the peer is the client");
}

#[tokio::test]
async fn a_failed_click_write_still_redirects_and_records_nothing_in_the_click_store() {
    // Graceful degradation (tests/api/resilience.rs): the redirect is the
    // product; the click is counted as unrecorded instead.
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.sql.set_failing(true);
    let r = app.follow(&slug).await;
    app.sql.set_failing(false);
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://e.com/"));
    assert_eq!(app.clicks_of(&slug), 0);
}

#[tokio::test]
async fn a_failing_key_value_store_is_a_503_for_redirects_and_a_500_for_creates() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.kv.set_failing(true);
    let r = app.follow(&slug).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "store_unavailable");
    let create = app.create(json!({"url": "https://e.com"})).await;
    assert_eq!(create.status, StatusCode::INTERNAL_SERVER_ERROR);
    app.kv.set_failing(false);
    // The failed create released its slug claim: nothing half-written.
    assert_eq!(app.count("SELECT count(*) FROM links", vec![]), 1);
}

#[tokio::test]
async fn every_slug_answer_is_no_store_404_410_and_503_included() {
    let app = TestApp::spawn().await;
    create_brief(&app).await;
    let mut answers = vec![app.follow("brief").await, app.follow("nope").await];
    answers.push(app.follow("a.b").await);
    app.set_now(datetime!(2030-01-16 00:00 UTC));
    answers.push(app.follow("brief").await);
    answers.push(
        app.visit("brief", Visit::default().method(Method::HEAD))
            .await,
    );
    answers.push(
        app.visit("brief", Visit::default().method(Method::POST))
            .await,
    );
    app.kv.set_failing(true);
    answers.push(app.follow("brief").await);
    app.kv.set_failing(false);
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [302, 404, 404, 410, 410, 405, 503]);
    for r in &answers {
        let cache = r.header("cache-control").unwrap_or_default();
        assert!(
            cache.split(',').any(|d| d.trim() == "no-store"),
            "{}: cache-control {cache:?}",
            r.status
        );
    }
}

#[tokio::test]
async fn a_user_agent_or_referer_with_non_ascii_bytes_is_read_lossily_not_dropped() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    // UTF-8 (a device name in an app's agent) and a lone Latin-1 byte.
    let utf8 = format!("{CHROME} Gerät/1.0");
    let latin1 = [CHROME.as_bytes(), b" Ger\xe4t/1.0"].concat();
    for ua in [utf8.as_bytes(), &latin1] {
        let visit = Visit::default()
            .no_user_agent()
            .raw_header("user-agent", ua)
            .raw_header("referer", b"https://news.example.org/caf\xc3\xa9?q=\xe9");
        assert_eq!(app.visit(&slug, visit).await.status, StatusCode::FOUND);
    }
    let rows = app.query(
        "SELECT browser, os, is_bot, referrer_host FROM clicks ORDER BY id",
        vec![],
    );
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row[0], SqlValue::Text("Chrome".into()));
        assert_eq!(row[1], SqlValue::Text("Windows 10".into()));
        assert_eq!(row[2], SqlValue::Integer(0), "a browser, not a bot");
        assert_eq!(row[3], SqlValue::Text("news.example.org".into()));
    }
}

#[tokio::test]
async fn only_the_first_1024_bytes_of_a_128_kb_user_agent_and_2048_of_a_referer_are_read() {
    use shortener::clicks::{MAX_REFERER_BYTES, MAX_USER_AGENT_BYTES};
    assert_eq!((MAX_USER_AGENT_BYTES, MAX_REFERER_BYTES), (1024, 2048));
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    // A browser's agent padded to 128 kB: past the cap, a bot's name and
    // "Windows " × n (quadratic in the old matcher) are never read.
    let padded = format!("{CHROME} {}", "x".repeat(1024));
    let hostile = [
        format!("{padded} Googlebot/2.1 {}", "Windows ".repeat(16 * 1024)),
        format!("{padded} curl/8.5.0 {}", "1.".repeat(64 * 1024)),
    ];
    let referer = format!("https://news.example.org/{}", "a/".repeat(64 * 1024));
    for ua in &hostile {
        assert!(ua.len() >= 128 * 1024);
        let visit = Visit::default().user_agent(ua).referer(&referer);
        assert_eq!(app.visit(&slug, visit).await.status, StatusCode::FOUND);
    }
    let rows = app.query(
        "SELECT browser, is_bot, referrer_host FROM clicks ORDER BY id",
        vec![],
    );
    for row in &rows {
        assert_eq!(row[0], SqlValue::Text("Chrome".into()));
        assert_eq!(
            row[1],
            SqlValue::Integer(0),
            "the bot's name is past the cap"
        );
        assert_eq!(row[2], SqlValue::Text("news.example.org".into()));
    }
    // Equal first 1024 bytes, same peer, same day: one visitor.
    assert_eq!(app.stats(&slug, "").await.json()["unique_visitors"], 1);
}

/// A link `brief` to `https://e.com` that expires a day after the clock.
async fn create_brief(app: &TestApp) {
    let r = app
        .create(
            json!({"url": "https://e.com", "slug": "brief", "expires_at": "2030-01-16T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_hot_path_answers_every_request_exactly_as_the_router_does() {
    let app = TestApp::spawn().await;
    app.create_ok("https://example.com/docs", Some("docs"))
        .await;
    let cases = [
        (Method::GET, "/docs"),
        (Method::HEAD, "/docs"),
        (Method::GET, "/docs?utm=1"),
        (Method::GET, "/Docs"),
        (Method::GET, "/nope"),
        (Method::HEAD, "/nope"),
        (Method::GET, "/ab"),
        (Method::GET, "/a_b-c"),
        (Method::GET, "/health"),
        (Method::GET, "/HEALTH"),
        (Method::GET, "/api"),
        (Method::GET, "/console"),
        (Method::GET, "/%64ocs"),
        (Method::GET, "/docs/"),
        (Method::GET, "/docs.html"),
        (Method::GET, "/"),
        (Method::POST, "/docs"),
        (Method::DELETE, "/docs"),
    ];
    for (method, path) in cases {
        let request = || {
            Request::builder()
                .method(method.clone())
                .uri(path)
                .header("user-agent", CHROME)
                .body(Body::empty())
                .unwrap()
        };
        let direct = app.router.clone().oneshot(request()).await.unwrap();
        let routed = shortener::router(app.app.clone())
            .oneshot(request())
            .await
            .unwrap();
        assert_eq!(direct.status(), routed.status(), "{method} {path}");
        assert_eq!(direct.headers(), routed.headers(), "{method} {path}");
        let body = |r: axum::response::Response| axum::body::to_bytes(r.into_body(), usize::MAX);
        assert_eq!(
            body(direct).await.unwrap(),
            body(routed).await.unwrap(),
            "{method} {path}"
        );
    }
    // Both served the GETs of the link: the same clicks, once each.
    assert_eq!(app.clicks_of("docs"), 6);
}
