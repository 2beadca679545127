//! Graceful degradation: the redirect is served when the click store fails,
//! and every click it could not record is counted as unrecorded.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::config::names;

use crate::helpers::{GOOGLEBOT, TestApp, Visit};

async fn metrics(app: &TestApp) -> String {
    app.send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .text()
}

#[tokio::test]
async fn a_link_with_every_click_recorded_reports_zero_unrecorded_clicks() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.follow(&slug).await;
    let link = app.link(&slug).await;
    assert_eq!(link["clicks"], 1);
    assert_eq!(link["unrecorded_clicks"], json!({"human": 0, "bot": 0}));
    let text = metrics(&app).await;
    assert!(
        text.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn clicks_the_click_store_refuses_are_served_and_counted_as_unrecorded_by_kind() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com/x", None).await;
    app.follow(&slug).await;
    app.sql.set_failing(true);
    for _ in 0..3 {
        let r = app.follow(&slug).await;
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.header("location"), Some("https://e.com/x"));
    }
    let bot = app
        .visit(&slug, Visit::default().user_agent(GOOGLEBOT))
        .await;
    assert_eq!(bot.status, StatusCode::FOUND);
    app.sql.set_failing(false);
    app.follow(&slug).await;

    // Served = recorded + unrecorded, per link and kind.
    let link = app.link(&slug).await;
    assert_eq!(link["clicks"], 2);
    assert_eq!(link["unrecorded_clicks"], json!({"human": 3, "bot": 1}));
    assert_eq!(app.clicks_of(&slug), 2);
    let text = metrics(&app).await;
    assert!(
        text.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("shortener_clicks_unrecorded_total{kind=\"bot\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_click_whose_answer_is_lost_after_its_commit_is_counted_twice_and_the_excess_is_the_unrecorded_count()
 {
    // A remote click database (libSQL over HTTP) can commit a click and
    // then lose the answer. The redirect cannot tell that from a refused
    // write, so it tallies the click too: the click counts twice, and the
    // excess is bounded by, and visible as, the unrecorded count.
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com/x", None).await;
    app.sql.set_losing_answers(true);
    for _ in 0..4 {
        assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    }
    app.sql.set_losing_answers(false);
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);

    // 5 served: 5 recorded (each committed) and the 4 lost answers tallied
    // as well, so recorded + unrecorded exceeds served by exactly the
    // unrecorded count.
    let link = app.link(&slug).await;
    assert_eq!(link["clicks"], 5, "every commit is a recorded click");
    assert_eq!(link["unrecorded_clicks"], json!({"human": 4, "bot": 0}));
}

#[tokio::test]
async fn when_the_tally_fails_too_the_redirect_is_refused_so_no_served_click_goes_uncounted() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.sql.set_failing(true);
    app.unrecorded.set_failing(true);
    let r = app.follow(&slug).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "store_unavailable");
    assert!(r.header("location").is_none());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("click store (SQLite)"), "{message}");
    assert!(!message.contains("(test)"), "the cause is not sent");
    app.sql.set_failing(false);
    app.unrecorded.set_failing(false);
    let link = app.link(&slug).await;
    assert_eq!(link["clicks"], 0);
    assert_eq!(link["unrecorded_clicks"], json!({"human": 0, "bot": 0}));
}

#[tokio::test]
async fn a_deleted_link_keeps_its_unrecorded_clicks_in_the_counter_but_a_new_link_starts_at_zero() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", Some("reused")).await;
    app.sql.set_failing(true);
    app.follow(&slug).await;
    app.sql.set_failing(false);
    app.api(Method::DELETE, "/api/links/reused", None).await;
    // A later link of the same slug is another link.
    app.set_now(time::macros::datetime!(2030-01-15 13:00 UTC));
    app.create_ok("https://other.example", Some("reused")).await;
    assert_eq!(
        app.link("reused").await["unrecorded_clicks"],
        json!({"human": 0, "bot": 0})
    );
    let text = metrics(&app).await;
    assert!(
        text.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_click_database_locked_by_another_process_delays_a_redirect_only_by_the_busy_timeout() {
    let app = TestApp::with_vars(&[(names::SQLITE_BUSY_TIMEOUT_MS, "200")]).await;
    let slug = app.create_ok("https://e.com", None).await;
    // Another connection (a backup, a shell) holds the write lock.
    let other = rusqlite::Connection::open(&app.db_path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let r = app.follow(&slug).await;
    let waited = started.elapsed();
    assert_eq!(r.status, StatusCode::FOUND);
    // The test store opens with a 5 s busy timeout, as Spin's host does:
    // anything well under that is the pragma's doing.
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    let health = app
        .send(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["checks"]["sqlite"], "error");
    other.execute_batch("ROLLBACK").unwrap();

    // Released: clicks record again, health recovers.
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    let link = app.link(&slug).await;
    assert_eq!(link["clicks"], 1);
    assert_eq!(link["unrecorded_clicks"], json!({"human": 1, "bot": 0}));
    let health = app
        .send(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn a_failing_key_value_store_makes_redirects_503_naming_it_and_they_recover() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.kv.set_failing(true);
    let r = app.follow(&slug).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "store_unavailable");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("link store (key-value)"), "{message}");
    assert!(!message.contains("(test)"), "the cause is not sent");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(app.clicks_of(&slug), 0);
    app.kv.set_failing(false);
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    assert_eq!(app.clicks_of(&slug), 1);
}

#[tokio::test]
async fn an_unreadable_tally_makes_the_link_read_503_naming_it() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.unrecorded.set_failing(true);
    let r = app
        .api(Method::GET, &format!("/api/links/{slug}"), None)
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unrecorded-clicks tally"),
        "{}",
        r.text()
    );
}
