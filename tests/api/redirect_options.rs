//! The redirect's options of a link: query forwarding, click limits, start
//! dates and redirect rules; and orphan visits.

use std::net::IpAddr;
use std::sync::Barrier;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use shortener::clicks::{self, Click, Visitor};
use shortener::links::Slug;
use shortener::migrations;
use shortener::native::SqliteStore;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::helpers::{CHROME, GOOGLEBOT, TestApp, Visit};

const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.create(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

async fn patch(app: &TestApp, slug: &str, body: Value) -> Value {
    let r = app
        .api(Method::PATCH, &format!("/api/links/{slug}"), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn a_new_link_shows_its_redirect_options_at_their_defaults() {
    let app = TestApp::spawn().await;
    let link = create(&app, json!({"url": "https://e.com/"})).await;
    assert_eq!(link["forward_query"], true);
    assert_eq!(link["max_clicks"], Value::Null);
    assert_eq!(link["valid_from"], Value::Null);
    assert_eq!(link["rules"], json!([]));
    let read = app.link(link["slug"].as_str().unwrap()).await;
    assert_eq!(read["forward_query"], true);
    assert_eq!(read["rules"], json!([]));
}

#[tokio::test]
async fn the_request_query_is_appended_after_the_targets_own_before_its_fragment() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"url": "https://e.com/p?a=1#top", "slug": "fwd"}),
    )
    .await;
    let r = app.follow("fwd?utm_source=x&a=2").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://e.com/p?a=1&utm_source=x&a=2#top")
    );
    assert_eq!(
        app.follow("fwd").await.header("location"),
        Some("https://e.com/p?a=1#top")
    );
    // A query too long to forward is dropped: the target as it is, one click.
    let huge = format!("fwd?q={}", "x".repeat(16 * 1024));
    let r = app.follow(&huge).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://e.com/p?a=1#top"));
    assert_eq!(app.clicks_of("fwd"), 3);
}

#[tokio::test]
async fn without_forward_query_the_target_is_left_as_it_is_and_null_turns_it_back_on() {
    let app = TestApp::spawn().await;
    let link = create(
        &app,
        json!({"url": "https://e.com/p", "slug": "nofwd", "forward_query": false}),
    )
    .await;
    assert_eq!(link["forward_query"], false);
    assert_eq!(
        app.follow("nofwd?x=1").await.header("location"),
        Some("https://e.com/p")
    );
    assert_eq!(
        patch(&app, "nofwd", json!({"forward_query": null})).await["forward_query"],
        true
    );
    assert_eq!(
        app.follow("nofwd?x=1").await.header("location"),
        Some("https://e.com/p?x=1")
    );
}

#[tokio::test]
async fn a_link_serves_exactly_max_clicks_redirects_then_answers_410_link_exhausted() {
    let app = TestApp::spawn().await;
    let link = create(
        &app,
        json!({"url": "https://e.com/", "slug": "three", "max_clicks": 3}),
    )
    .await;
    assert_eq!(link["max_clicks"], 3);
    // HEAD counts nothing; bots count like humans.
    let head = app
        .visit("three", Visit::default().method(Method::HEAD))
        .await;
    assert_eq!(head.status, StatusCode::FOUND);
    assert_eq!(app.follow("three").await.status, StatusCode::FOUND);
    let bot = app
        .visit("three", Visit::default().user_agent(GOOGLEBOT))
        .await;
    assert_eq!(bot.status, StatusCode::FOUND);
    assert_eq!(app.follow("three").await.status, StatusCode::FOUND);
    for _ in 0..2 {
        let r = app.follow("three").await;
        assert_eq!(r.status, StatusCode::GONE);
        assert_eq!(r.error_code(), "link_exhausted");
    }
    let head = app
        .visit("three", Visit::default().method(Method::HEAD))
        .await;
    assert_eq!(head.status, StatusCode::GONE);
    assert_eq!(app.clicks_of("three"), 3);
    assert_eq!(app.link("three").await["clicks"], 3);
    // Raising the limit counts the clicks already recorded.
    patch(&app, "three", json!({"max_clicks": 4})).await;
    assert_eq!(app.follow("three").await.status, StatusCode::FOUND);
    assert_eq!(app.follow("three").await.status, StatusCode::GONE);
    // Removing it lets every click through again.
    assert_eq!(
        patch(&app, "three", json!({"max_clicks": null})).await["max_clicks"],
        Value::Null
    );
    assert_eq!(app.follow("three").await.status, StatusCode::FOUND);
    assert_eq!(app.clicks_of("three"), 5);
    assert_eq!(app.count("SELECT count(*) FROM click_limits", vec![]), 0);
}

#[tokio::test]
async fn a_limit_set_on_a_link_with_clicks_counts_them() {
    let app = TestApp::spawn().await;
    create(&app, json!({"url": "https://e.com/", "slug": "later"})).await;
    for _ in 0..3 {
        app.follow("later").await;
    }
    patch(&app, "later", json!({"max_clicks": 4})).await;
    assert_eq!(app.follow("later").await.status, StatusCode::FOUND);
    assert_eq!(app.follow("later").await.status, StatusCode::GONE);
    assert_eq!(app.clicks_of("later"), 4);
}

#[tokio::test]
async fn a_limited_link_whose_click_cannot_be_recorded_is_refused_not_tallied() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "capped", "max_clicks": 5}),
    )
    .await;
    create(&app, json!({"url": "https://e.com/", "slug": "open"})).await;
    app.warm_tally().await;
    app.sql.set_failing(true);
    let r = app.follow("capped").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "store_unavailable");
    // A link without a limit still degrades gracefully.
    assert_eq!(app.follow("open").await.status, StatusCode::FOUND);
    app.sql.set_failing(false);
    assert_eq!(
        app.link("capped").await["unrecorded_clicks"],
        json!({"human": 0, "bot": 0})
    );
    assert_eq!(
        app.link("open").await["unrecorded_clicks"],
        json!({"human": 1, "bot": 0})
    );
}

#[tokio::test]
async fn concurrent_instances_record_exactly_max_clicks_of_a_limited_link() {
    const WRITERS: usize = 8;
    const TRIES: usize = 25;
    const LIMIT: usize = 100;
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "race", "max_clicks": LIMIT}),
    )
    .await;
    let slug = Slug::parse("race").unwrap();
    let start = Barrier::new(WRITERS);
    let acked: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (db, slug, start) = (&app.db_path, &slug, &start);
                s.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let store = SqliteStore::open(db).unwrap();
                    runtime.block_on(migrations::run(&store, 0)).unwrap();
                    let visitor = Visitor::classify(CHROME, None);
                    start.wait();
                    let mut acked = 0;
                    for i in 0..TRIES {
                        let at = OffsetDateTime::now_utc();
                        let ip = IpAddr::from([198, 51, 100, (w * TRIES + i) as u8]);
                        let click = Click {
                            slug,
                            at,
                            visitor: &visitor,
                            visitor_hash: clicks::visitor_hash("salt", Some(ip), CHROME, "d"),
                            rule: None,
                            limited: true,
                        };
                        // A busy database is retried, like a client would.
                        loop {
                            match runtime.block_on(clicks::record(&store, &click)) {
                                Ok(Some(_)) => {
                                    acked += 1;
                                    break;
                                }
                                Ok(None) => break,
                                Err(e)
                                    if e.message.contains("locked")
                                        || e.message.contains("busy") => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    acked
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    const { assert!(WRITERS * TRIES > LIMIT) };
    assert_eq!(acked, LIMIT);
    assert_eq!(app.clicks_of("race"), LIMIT as i64);
    assert_eq!(app.link("race").await["clicks"], LIMIT as i64);
    assert_eq!(app.follow("race").await.status, StatusCode::GONE);
}

#[tokio::test]
async fn before_its_valid_from_a_link_answers_exactly_as_an_unknown_slug() {
    let app = TestApp::spawn().await;
    app.set_now(datetime!(2030-01-01 00:00 UTC));
    let link = create(
        &app,
        json!({"url": "https://e.com/", "slug": "soon", "valid_from": "2030-01-02T00:00:00+01:00"}),
    )
    .await;
    assert_eq!(link["valid_from"], "2030-01-01T23:00:00Z");
    let early = app.follow("soon").await;
    let unknown = app.follow("nosuch").await;
    assert_eq!(early.status, StatusCode::NOT_FOUND);
    assert_eq!(early.body, unknown.body);
    assert_eq!(app.clicks_of("soon"), 0);
    app.set_now(datetime!(2030-01-01 23:00 UTC));
    assert_eq!(app.follow("soon").await.status, StatusCode::FOUND);
    app.set_now(datetime!(2030-01-01 00:00 UTC));
    assert_eq!(
        patch(&app, "soon", json!({"valid_from": null})).await["valid_from"],
        Value::Null
    );
    assert_eq!(app.follow("soon").await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn the_first_matching_rule_chooses_the_target_and_stats_count_each_rules_clicks() {
    let app = TestApp::spawn().await;
    let link = create(
        &app,
        json!({"url": "https://e.com/default", "slug": "ruled", "rules": [
            {"url": "https://e.com/ios-de", "device": "ios", "language": "de"},
            {"url": "https://e.com/android", "device": "android"},
            {"url": "https://e.com/mobile", "device": "mobile"},
            {"url": "https://e.com/mail?from=rule", "query": {"src": "mail"}},
            {"url": "https://e.com/french", "language": "FR"},
        ]}),
    )
    .await;
    assert_eq!(
        link["rules"][0],
        json!({"url": "https://e.com/ios-de", "device": "ios", "language": "de"})
    );
    assert_eq!(link["rules"][4]["language"], "fr");
    let go = |ua: &'static str, lang: Option<&'static str>, query: &'static str| {
        let app = &app;
        async move {
            let mut v = Visit::default().user_agent(ua);
            if let Some(lang) = lang {
                v = v.raw_header("accept-language", lang.as_bytes());
            }
            let r = app.visit(&format!("ruled{query}"), v).await;
            assert_eq!(r.status, StatusCode::FOUND);
            r.header("location").unwrap().to_owned()
        }
    };
    assert_eq!(
        go(IPHONE, Some("de-DE,de;q=0.9"), "").await,
        "https://e.com/ios-de"
    );
    assert_eq!(
        go(IPHONE, Some("en, de;q=0"), "").await,
        "https://e.com/mobile"
    );
    assert_eq!(go(ANDROID, None, "").await, "https://e.com/android");
    assert_eq!(
        go(CHROME, None, "?src=mail").await,
        "https://e.com/mail?from=rule&src=mail"
    );
    assert_eq!(go(CHROME, Some("fr-CA"), "").await, "https://e.com/french");
    assert_eq!(
        go(CHROME, Some("en"), "?src=web").await,
        "https://e.com/default?src=web"
    );
    assert_eq!(go(CHROME, None, "").await, "https://e.com/default");
    let stats = app.stats("ruled", "").await.json();
    assert_eq!(stats["total"], 7);
    assert_eq!(
        stats["rules"],
        json!([
            {"index": 0, "clicks": 1},
            {"index": 1, "clicks": 1},
            {"index": 2, "clicks": 1},
            {"index": 3, "clicks": 1},
            {"index": 4, "clicks": 1},
        ])
    );
    // HEAD chooses the same target and counts nothing.
    let head = app
        .visit(
            "ruled",
            Visit::default().method(Method::HEAD).user_agent(ANDROID),
        )
        .await;
    assert_eq!(head.header("location"), Some("https://e.com/android"));
    assert_eq!(app.clicks_of("ruled"), 7);
    // Rules are replaced whole, and null removes them.
    let edited = patch(
        &app,
        "ruled",
        json!({"rules": [{"url": "https://e.com/d", "device": "desktop"}]}),
    )
    .await;
    assert_eq!(edited["rules"].as_array().unwrap().len(), 1);
    assert_eq!(go(CHROME, None, "").await, "https://e.com/d");
    assert_eq!(
        patch(&app, "ruled", json!({"rules": null})).await["rules"],
        json!([])
    );
    assert_eq!(go(CHROME, None, "").await, "https://e.com/default");
    // A range without rule clicks has none.
    let none = app
        .stats("ruled", "?from=2000-01-01&to=2000-01-02")
        .await
        .json();
    assert_eq!(none["rules"], json!([]));
}

#[tokio::test]
async fn invalid_options_are_refused_with_their_codes_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"max_clicks": 0}), "invalid_max_clicks"),
        (json!({"max_clicks": -1}), "invalid_max_clicks"),
        (json!({"max_clicks": "3"}), "invalid_json"),
        (json!({"valid_from": "tomorrow"}), "invalid_timestamp"),
        (json!({"forward_query": "yes"}), "invalid_json"),
        (
            json!({"rules": [{"url": "https://e.com/"}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "https://e.com/", "device": "tablet"}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "https://e.com/", "language": "de_DE"}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "javascript:alert(1)", "device": "ios"}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "https://sho.rt/abc", "device": "ios"}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "https://e.com/", "query": {"": "x"}}]}),
            "invalid_rule",
        ),
        (
            json!({"rules": [{"url": "https://e.com/", "colour": "red"}]}),
            "invalid_json",
        ),
        (
            json!({"rules": vec![json!({"url": "https://e.com/", "device": "ios"}); 11]}),
            "invalid_rule",
        ),
    ];
    create(&app, json!({"url": "https://e.com/", "slug": "kept"})).await;
    for (fields, code) in cases {
        let mut body = json!({"url": "https://e.com/", "slug": "fresh"});
        let mut edit = json!({});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
            edit[k] = v.clone();
        }
        let r = app.create(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields}: {}", r.text());
        assert_eq!(r.error_code(), code, "{fields}");
        let r = app.api(Method::PATCH, "/api/links/kept", Some(edit)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields}: {}", r.text());
        assert_eq!(r.error_code(), code, "{fields}");
    }
    assert_eq!(app.follow("fresh").await.status, StatusCode::NOT_FOUND);
    let kept = app.link("kept").await;
    assert_eq!(
        (kept["max_clicks"].clone(), kept["rules"].clone()),
        (Value::Null, json!([]))
    );
}

#[tokio::test]
async fn a_patch_leaves_absent_options_as_they_are() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "keep", "max_clicks": 9, "forward_query": false,
               "valid_from": "2000-01-01T00:00:00Z",
               "rules": [{"url": "https://e.com/i", "device": "ios"}]}),
    )
    .await;
    let edited = patch(&app, "keep", json!({"url": "https://f.com/"})).await;
    assert_eq!(edited["url"], "https://f.com/");
    assert_eq!(edited["max_clicks"], 9);
    assert_eq!(edited["forward_query"], false);
    assert_eq!(edited["valid_from"], "2000-01-01T00:00:00Z");
    assert_eq!(edited["rules"][0]["device"], "ios");
}

// ------------------------------------------------------------- orphans

async fn orphans(app: &TestApp, query: &str) -> Value {
    let r = app
        .api(Method::GET, &format!("/api/orphans{query}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn requests_for_no_link_are_counted_as_orphan_visits_by_day_and_path() {
    let app = TestApp::spawn().await;
    app.set_now(datetime!(2030-01-01 12:00 UTC));
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "ended", "expires_at": "2030-01-01T13:00:00Z"}),
    )
    .await;
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "once", "max_clicks": 1}),
    )
    .await;
    create(
        &app,
        json!({"url": "https://e.com/", "slug": "later", "valid_from": "2030-02-01T00:00:00Z"}),
    )
    .await;
    app.follow("nope").await;
    app.follow("nope?x=1").await;
    app.follow("x").await; // no slug
    app.follow("wp-admin/setup.php").await; // no route: a path that is no slug
    app.follow("api/nope").await; // the API's own 404: not an orphan
    app.follow("later").await;
    app.follow("once").await; // served: no orphan
    app.follow("once").await; // exhausted
    app.visit("nope", Visit::default().method(Method::HEAD))
        .await; // HEAD counts nothing
    app.set_now(datetime!(2030-01-02 12:00 UTC));
    app.follow("ended").await;
    let all = orphans(&app, "").await;
    assert_eq!(all["total"], 7);
    assert_eq!(
        all["daily"],
        json!([{"date": "2030-01-01", "visits": 6}, {"date": "2030-01-02", "visits": 1}])
    );
    assert_eq!(all["paths"][0], json!({"path": "/nope", "visits": 2}));
    let paths: Vec<&str> = all["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(!paths.contains(&"/api/nope"), "{paths:?}");
    for p in ["/x", "/wp-admin/setup.php", "/later", "/once", "/ended"] {
        assert!(paths.contains(&p), "{paths:?}");
    }
    let second = orphans(&app, "?from=2030-01-02&to=2030-01-02").await;
    assert_eq!(second["total"], 1);
    assert_eq!(second["paths"], json!([{"path": "/ended", "visits": 1}]));
    assert_eq!(
        app.count("SELECT count(*) FROM clicks WHERE slug = 'once'", vec![]),
        1
    );
}

#[tokio::test]
async fn orphan_visits_are_readable_by_any_key_and_check_their_range() {
    let app = TestApp::spawn().await;
    app.follow("nope").await;
    let viewer = app.key("viewer").await;
    let r = app.api_as(&viewer, Method::GET, "/api/orphans", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["total"], 1);
    let r = app
        .api(
            Method::GET,
            "/api/orphans?from=2030-02-02&to=2030-01-01",
            None,
        )
        .await;
    assert_eq!(r.error_code(), "invalid_date_range");
    let r = app
        .api(Method::GET, "/api/orphans?from=yesterday", None)
        .await;
    assert_eq!(r.error_code(), "invalid_date");
    let anonymous = app
        .send(
            axum::http::Request::get("/api/orphans")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
