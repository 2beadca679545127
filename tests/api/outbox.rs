//! The click outbox (`click_outbox = "true"`): clicks committed on the
//! replica, shipped to the shared click database in idempotent batches,
//! nothing lost or counted twice while that database fails.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::outbox::SHIP_EVERY;

use crate::helpers::{GOOGLEBOT, TestApp, Visit};

async fn outbox_app() -> TestApp {
    let app = TestApp::with_vars(&[("click_outbox", "true")]).await;
    app.warm_tally().await;
    app
}

async fn get(app: &TestApp, path: &str) -> crate::helpers::TestResponse {
    app.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn a_redirect_commits_its_click_in_the_outbox_and_a_stats_read_ships_it_first() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/a", None).await;
    for _ in 0..3 {
        assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    }
    app.visit(&slug, Visit::default().user_agent(GOOGLEBOT))
        .await;
    assert_eq!(
        app.clicks_of(&slug),
        0,
        "nothing reached the click database yet"
    );
    assert_eq!(app.outboxed(), 4);

    let stats = app.stats(&slug, "").await.json();
    assert_eq!(stats["total"], 4);
    assert_eq!(stats["humans"], 3);
    assert_eq!(stats["bots"], 1);
    assert_eq!(stats["browsers"][0]["name"], "Chrome");
    assert_eq!(stats["lag"]["unshipped_clicks"], 0);
    assert_eq!(app.clicks_of(&slug), 4);
    assert_eq!(app.outboxed(), 0);
    assert_eq!(app.link(&slug).await["clicks"], 4);
}

#[tokio::test]
async fn every_ship_every_th_redirect_ships_the_outbox_without_any_read() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/b", None).await;
    for _ in 0..SHIP_EVERY - 1 {
        app.follow(&slug).await;
    }
    assert_eq!(app.clicks_of(&slug), 0);
    app.follow(&slug).await;
    assert_eq!(app.clicks_of(&slug), SHIP_EVERY);
    assert_eq!(app.outboxed(), 0);
    // The shipping redirect folded the batch into the rollups as well.
    let folded = app.count(
        "SELECT coalesce(sum(clicks), 0) FROM daily_clicks WHERE slug = ?1",
        vec![slug.as_str().into()],
    );
    assert_eq!(folded, SHIP_EVERY);
}

#[tokio::test]
async fn a_batch_whose_answer_was_lost_after_its_commit_is_sent_again_and_counted_once() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/c", None).await;
    for _ in 0..5 {
        app.follow(&slug).await;
    }
    // The click database commits the batch, but its answer is lost: the
    // outbox keeps the clicks.
    app.sql.set_losing_answers(true);
    let _ = app.stats(&slug, "").await;
    app.sql.set_losing_answers(false);
    assert_eq!(
        app.clicks_of(&slug),
        5,
        "the lost answer's batch was committed"
    );
    assert_eq!(
        app.outboxed(),
        5,
        "and kept, since its commit was not known"
    );

    let stats = app.stats(&slug, "").await.json();
    assert_eq!(stats["total"], 5, "the batch sent again counts once");
    assert_eq!(app.clicks_of(&slug), 5);
    assert_eq!(app.outboxed(), 0);
}

#[tokio::test]
async fn click_numbers_are_never_reused_once_the_outbox_is_empty() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/d", None).await;
    for round in 1..=3 {
        app.follow(&slug).await;
        app.follow(&slug).await;
        // Each read empties the outbox; the next clicks must not take the
        // numbers of shipped ones (they would be dropped as duplicates).
        assert_eq!(app.stats(&slug, "").await.json()["total"], 2 * round);
        assert_eq!(app.outboxed(), 0);
    }
}

#[tokio::test]
async fn while_the_click_database_is_down_redirects_are_served_and_health_metrics_and_stats_show_the_backlog()
 {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/e", None).await;
    app.follow(&slug).await;
    assert_eq!(app.stats(&slug, "").await.json()["total"], 1);

    app.sql.set_failing(true);
    for _ in 0..SHIP_EVERY + 10 {
        let r = app.follow(&slug).await;
        assert_eq!(r.status, StatusCode::FOUND);
        assert_eq!(r.header("location"), Some("https://e.com/e"));
    }
    app.set_now(time::macros::datetime!(2030-01-15 12:01 UTC));

    let health = get(&app, "/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
    let health = health.json();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["checks"]["sqlite"], "error");
    assert_eq!(health["outbox"]["unshipped_clicks"], SHIP_EVERY + 10);
    assert_eq!(health["outbox"]["oldest_unshipped_age_seconds"], 60.0);

    let metrics = get(&app, "/metrics").await.text();
    let backlog = format!("shortener_click_outbox_clicks {}", SHIP_EVERY + 10);
    assert!(metrics.contains(&backlog), "{metrics}");
    assert!(
        metrics.contains("shortener_click_outbox_oldest_seconds 60.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shortener_store_up{store=\"sqlite\"} 0"),
        "{metrics}"
    );

    // The click database comes back: the next read ships the backlog, once.
    app.sql.set_failing(false);
    let stats = app.stats(&slug, "").await.json();
    assert_eq!(stats["total"], SHIP_EVERY + 11);
    assert_eq!(stats["lag"]["unshipped_clicks"], 0);
    assert_eq!(app.clicks_of(&slug), SHIP_EVERY + 11);
    let metrics = get(&app, "/metrics").await.text();
    assert!(
        metrics.contains("shortener_click_outbox_clicks 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shortener_click_outbox_oldest_seconds 0.0"),
        "{metrics}"
    );
    let health = get(&app, "/health").await.json();
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn a_stats_read_while_another_connection_holds_the_write_lock_declares_what_it_does_not_count()
 {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/f", None).await;
    app.follow(&slug).await;
    app.stats(&slug, "").await;
    app.follow(&slug).await;
    app.follow(&slug).await;
    // Another process writes to the click database past the busy timeout:
    // the ship fails, the reads still answer, two clicks behind.
    let holder = rusqlite::Connection::open(&app.db_path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let stats = app.stats(&slug, "").await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.text());
    let stats = stats.json();
    assert_eq!(stats["total"], 1);
    assert_eq!(stats["lag"]["unshipped_clicks"], 2);
    assert!(stats["lag"]["oldest_unshipped_at"].is_string(), "{stats}");
    holder.execute_batch("ROLLBACK").unwrap();

    let stats = app.stats(&slug, "").await.json();
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["lag"],
        json!({"unshipped_clicks": 0, "oldest_unshipped_age_seconds": 0.0})
    );
}

#[tokio::test]
async fn a_limited_links_clicks_go_to_the_click_database_directly_and_are_refused_while_it_is_down()
{
    let app = outbox_app().await;
    let r = app
        .create(json!({"url": "https://e.com/g", "max_clicks": 2}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let slug = r.json()["slug"].as_str().unwrap().to_owned();
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    assert_eq!(app.clicks_of(&slug), 1, "counted against the limit at once");
    assert_eq!(app.outboxed(), 0);
    app.sql.set_failing(true);
    assert_eq!(
        app.follow(&slug).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    app.sql.set_failing(false);
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    assert_eq!(app.follow(&slug).await.status, StatusCode::GONE);
}

#[tokio::test]
async fn a_link_deleted_before_its_clicks_were_shipped_gets_none_of_them() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/h", None).await;
    app.follow(&slug).await;
    let r = app
        .api(Method::DELETE, &format!("/api/links/{slug}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    // The scrape ships the outbox: the deleted link's click is dropped, as
    // a click is when its link goes between the read and the write.
    let _ = get(&app, "/metrics").await;
    assert_eq!(app.outboxed(), 0);
    app.create_ok("https://e.com/other", Some(&slug)).await;
    assert_eq!(app.clicks_of(&slug), 0);
    assert_eq!(app.link(&slug).await["clicks"], 0);
}

#[tokio::test]
async fn the_raw_clicks_export_ships_the_outbox_first() {
    let app = outbox_app().await;
    let slug = app.create_ok("https://e.com/i", None).await;
    app.follow(&slug).await;
    app.follow(&slug).await;
    let r = app
        .api(
            Method::GET,
            &format!("/api/links/{slug}/clicks?format=json"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(2), "{}", r.text());
    assert_eq!(app.outboxed(), 0);
}
