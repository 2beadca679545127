use axum::http::{Method, StatusCode};
use serde_json::json;
use shortener::analytics;
use shortener::storage::SqlValue;
use time::macros::datetime;

use crate::helpers::{CHROME, FIREFOX, GOOGLEBOT, TestApp, Visit};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

#[tokio::test]
async fn stats_break_clicks_down_by_day_kind_referrer_browser_and_os() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.visit(&slug, Visit::default().referer("https://news.example/a"))
        .await;
    app.visit(&slug, Visit::default().referer("https://news.example/b"))
        .await;
    app.visit(
        &slug,
        Visit::default().user_agent(GOOGLEBOT).peer("66.249.66.1"),
    )
    .await;
    app.set_now(datetime!(2030-01-16 08:00 UTC));
    app.visit(
        &slug,
        Visit::default().user_agent(FIREFOX).peer("198.51.100.9"),
    )
    .await;

    let s = app.stats(&slug, "").await;
    assert_eq!(s.status, StatusCode::OK);
    let s = s.json();
    assert_eq!(s["slug"], slug);
    assert_eq!(
        (s["total"].clone(), s["humans"].clone(), s["bots"].clone()),
        (json!(4), json!(3), json!(1))
    );
    // Same browser + IP twice on day 1 is one visitor; Googlebot another; Firefox on day 2 a third.
    assert_eq!(s["unique_visitors"], 3);
    assert_eq!(
        s["daily"],
        json!([
            {"date": "2030-01-15", "clicks": 3, "humans": 2, "bots": 1},
            {"date": "2030-01-16", "clicks": 1, "humans": 1, "bots": 0}
        ])
    );
    let referrers = s["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2);
    assert!(referrers.contains(&json!({"host": "news.example", "clicks": 2})));
    assert!(
        referrers.contains(&json!({"host": null, "clicks": 2})),
        "no referrer is `null`"
    );
    assert_eq!(s["browsers"][0], json!({"name": "Chrome", "clicks": 2}));
    assert!(s["operating_systems"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn stats_can_be_limited_to_a_day_range() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    for (day, n) in [(10, 1), (11, 2), (12, 3)] {
        app.set_now(datetime!(2030-02-01 10:00 UTC).replace_day(day).unwrap());
        for _ in 0..n {
            app.follow(&slug).await;
        }
    }
    let s = app
        .stats(&slug, "?from=2030-02-11&to=2030-02-12")
        .await
        .json();
    assert_eq!(s["total"], 5);
    assert_eq!(s["daily"].as_array().unwrap().len(), 2);
    assert_eq!(s["from"], "2030-02-11");
    assert_eq!(
        s["browsers"],
        json!([{"name": "Chrome", "clicks": 5}]),
        "breakdowns follow the range"
    );
    let s = app.stats(&slug, "?to=2030-02-10").await.json();
    assert_eq!(s["total"], 1);
    assert_eq!(s["browsers"], json!([{"name": "Chrome", "clicks": 1}]));
    let whole = app
        .stats(&slug, "?from=2030-02-10&to=2030-02-12")
        .await
        .json();
    assert_eq!(whole["browsers"], json!([{"name": "Chrome", "clicks": 6}]));
    assert_eq!(whole["total"], 6);
}

#[tokio::test]
async fn bad_stats_ranges_are_400_and_unknown_links_404() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    for q in [
        "?from=2030-1-1",
        "?to=tomorrow",
        "?from=2030-02-02&to=2030-02-01",
    ] {
        let r = app.stats(&slug, q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    assert_eq!(app.stats("unknown", "").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signed_or_unpadded_days_are_refused_not_compared_as_text() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.follow(&slug).await;
    // `%2B` is `+`: `+2030-01-15` parses as a date but sorts before every
    // `YYYY-MM-DD` text, so a text comparison would answer a wrong range.
    for q in [
        "?from=%2B2030-01-15",
        "?to=%2B2030-01-15",
        "?from=-2030-01-15",
        "?from=2030-01-15&to=%2B2030-01-16",
    ] {
        let r = app.stats(&slug, q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert_eq!(r.error_code(), "invalid_date", "{q}");
    }
    let day = app
        .stats(&slug, "?from=2030-01-15&to=2030-01-15")
        .await
        .json();
    assert_eq!(day["total"], 1);
}

#[tokio::test]
async fn breakdowns_keep_the_top_100_and_sum_the_rest_into_one_other_row() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.set_now(datetime!(2030-01-14 12:00 UTC));
    app.visit(&slug, Visit::default().referer("https://old.example/"))
        .await;
    app.set_now(datetime!(2030-01-15 12:00 UTC));
    for _ in 0..3 {
        app.visit(&slug, Visit::default().referer("https://top.example/"))
            .await;
    }
    for i in 0..105 {
        let referer = format!("https://r{i:03}.example/");
        app.visit(&slug, Visit::default().referer(&referer)).await;
    }
    // The all-time rollup (no range) and the daily one (a range) both cap.
    // The cap is applied when the clicks are written: the link's first 100
    // hosts (old.example, top.example, r000..r097) are kept by name, the 7
    // after them count under "(other)", on every day; so the range, which
    // lacks old.example, lists 99 hosts by name and the same 7 as other.
    for (query, total, named, other) in [("", 109, 100, 7), ("?from=2030-01-15", 108, 99, 7)] {
        let s = app.stats(&slug, query).await.json();
        assert_eq!(s["total"], total, "{query}");
        let referrers = s["referrers"].as_array().unwrap();
        assert_eq!(referrers.len(), named + 1, "{query}");
        assert_eq!(referrers[0], json!({"host": "top.example", "clicks": 3}));
        assert_eq!(
            referrers[named],
            json!({"host": "(other)", "clicks": other, "other": true}),
            "{query}"
        );
        let sum: i64 = referrers
            .iter()
            .map(|r| r["clicks"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, total, "{query}: the rows add up to the total");
        // Few families: no other row.
        assert_eq!(s["browsers"], json!([{"name": "Chrome", "clicks": total}]));
    }
}

#[tokio::test]
async fn the_link_view_counts_every_click_bots_included() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    app.follow(&slug).await;
    app.visit(&slug, Visit::default().user_agent(GOOGLEBOT))
        .await;
    app.visit(&slug, Visit::default().no_user_agent()).await;
    let link = app
        .api(Method::GET, &format!("/api/links/{slug}"), None)
        .await
        .json();
    assert_eq!(link["clicks"], 3);
}

/// A deterministic mixed workload: several links, days, agents, referrers,
/// HEADs, unknown slugs and a delete; then every rollup must equal what the
/// raw click rows say.
#[tokio::test]
async fn rollups_equal_the_raw_click_rows_after_a_mixed_workload() {
    let app = TestApp::spawn().await;
    let mut slugs = Vec::new();
    for i in 0..5 {
        slugs.push(
            app.create_ok(&format!("https://site{i}.example/"), None)
                .await,
        );
    }
    let agents = [CHROME, FIREFOX, IPHONE, GOOGLEBOT, "curl/8.5.0", ""];
    let referers = [
        None,
        Some("https://a.example/x"),
        Some("https://b.example/"),
        Some("junk"),
    ];
    let peers = ["198.51.100.1", "198.51.100.2", "2001:db8::7"];
    // Seeded: the same workload on every run.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(42);
    let mut next = |m: usize| rand::Rng::random_range(&mut rng, 0..m);
    for step in 0..400 {
        if step % 100 == 0 {
            app.set_now(
                datetime!(2030-03-01 23:30 UTC) + time::Duration::hours((step / 100) as i64 * 13),
            );
        }
        let slug = &slugs[next(slugs.len())];
        let method = if next(10) == 0 {
            Method::HEAD
        } else {
            Method::GET
        };
        let ua = agents[next(agents.len())];
        let visit = Visit {
            method,
            user_agent: (!ua.is_empty()).then_some(ua),
            referer: referers[next(referers.len())],
            peer: peers[next(peers.len())],
            forwarded_for: None,
            raw_headers: Vec::new(),
        };
        app.visit(slug, visit).await;
        if next(20) == 0 {
            app.follow("no-such-link").await;
        }
    }
    app.api(Method::DELETE, &format!("/api/links/{}", slugs[4]), None)
        .await;

    app.fold().await;
    let mismatches = app.query(
        "SELECT r.slug, r.day FROM daily_clicks r LEFT JOIN ( \
            SELECT slug, day, count(*) AS clicks, sum(1 - is_bot) AS humans, sum(is_bot) AS bots, \
                   count(DISTINCT visitor) AS visitors FROM clicks GROUP BY slug, day) c \
         ON c.slug = r.slug AND c.day = r.day \
         WHERE c.clicks IS NULL OR r.clicks <> c.clicks OR r.humans <> c.humans \
            OR r.bots <> c.bots OR r.visitors <> c.visitors",
        vec![],
    );
    assert!(
        mismatches.is_empty(),
        "daily rollups differ from raw rows: {mismatches:?}"
    );
    let dims = app.query(
        "SELECT d.slug FROM daily_dimensions d LEFT JOIN ( \
            SELECT slug, day, 'referrer' AS dimension, coalesce(referrer_host, '') AS value, count(*) AS n FROM clicks GROUP BY 1, 2, 3, 4 \
            UNION ALL SELECT slug, day, 'browser', browser, count(*) FROM clicks GROUP BY 1, 2, 3, 4 \
            UNION ALL SELECT slug, day, 'os', os, count(*) FROM clicks GROUP BY 1, 2, 3, 4) c \
         USING (slug, day, dimension, value) WHERE c.n IS NULL OR c.n <> d.clicks",
        vec![],
    );
    assert!(dims.is_empty(), "dimension rollups differ: {dims:?}");
    let all_time = app.query(
        "SELECT l.slug FROM link_dimensions l LEFT JOIN ( \
            SELECT slug, 'referrer' AS dimension, coalesce(referrer_host, '') AS value, count(*) AS n FROM clicks GROUP BY 1, 2, 3 \
            UNION ALL SELECT slug, 'browser', browser, count(*) FROM clicks GROUP BY 1, 2, 3 \
            UNION ALL SELECT slug, 'os', os, count(*) FROM clicks GROUP BY 1, 2, 3) c \
         USING (slug, dimension, value) WHERE c.n IS NULL OR c.n <> l.clicks",
        vec![],
    );
    assert!(all_time.is_empty(), "all-time rollups differ: {all_time:?}");
    let raw_values = app.count(
        "SELECT count(*) FROM (SELECT DISTINCT slug, coalesce(referrer_host, '') FROM clicks \
         UNION ALL SELECT DISTINCT slug, browser FROM clicks UNION ALL SELECT DISTINCT slug, os FROM clicks)",
        vec![],
    );
    assert_eq!(
        raw_values,
        app.count("SELECT count(*) FROM link_dimensions", vec![])
    );
    let raw_groups = app.count(
        "SELECT count(*) FROM (SELECT DISTINCT slug, day FROM clicks)",
        vec![],
    );
    let rollup_rows = app.count("SELECT count(*) FROM daily_clicks", vec![]);
    assert_eq!(raw_groups, rollup_rows, "every raw group has a rollup");
    assert!(
        app.count("SELECT count(*) FROM clicks", vec![]) > 200,
        "the workload clicked"
    );

    for slug in &slugs[..4] {
        let s = app.stats(slug, "").await.json();
        let raw = app.count(
            "SELECT count(*) FROM clicks WHERE slug = ?1",
            vec![SqlValue::from(slug.as_str())],
        );
        assert_eq!(s["total"], raw);
        let link = app
            .api(Method::GET, &format!("/api/links/{slug}"), None)
            .await
            .json();
        assert_eq!(link["clicks"], raw);
    }
}

#[tokio::test]
async fn referrer_hosts_beyond_the_cap_are_rolled_up_as_other_when_the_clicks_are_folded() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    let cap = analytics::MAX_BREAKDOWN;
    for i in 0..cap + 30 {
        let referer = format!("https://h{i:03}.example/");
        app.visit(&slug, Visit::default().referer(&referer)).await;
    }
    // A host kept before the cap still counts by name; no referrer is never capped.
    app.visit(&slug, Visit::default().referer("https://h000.example/"))
        .await;
    app.visit(&slug, Visit::default()).await;
    app.fold().await;
    let stored = |table: &'static str| {
        app.count(
            match table {
                "link" => "SELECT count(*) FROM link_dimensions WHERE dimension = 'referrer'",
                _ => "SELECT count(*) FROM daily_dimensions WHERE dimension = 'referrer'",
            },
            vec![],
        )
    };
    // cap hosts, "(other)" and "" (none sent): bounded, whatever anyone sends.
    assert_eq!(stored("link"), cap as i64 + 2);
    assert_eq!(stored("daily"), cap as i64 + 2);
    let other = app.count(
        "SELECT clicks FROM link_dimensions WHERE dimension = 'referrer' AND value = '(other)'",
        vec![],
    );
    assert_eq!(other, 30);
    for query in ["", "?from=2030-01-15"] {
        let s = app.stats(&slug, query).await.json();
        let referrers = s["referrers"].as_array().unwrap();
        assert_eq!(referrers.len(), cap + 1, "{query}");
        assert_eq!(referrers[0], json!({"host": "h000.example", "clicks": 2}));
        assert_eq!(
            referrers[cap],
            json!({"host": "(other)", "clicks": 31, "other": true}),
            "{query}: 30 capped hosts, and one named host ranked beyond the top"
        );
        let sum: i64 = referrers
            .iter()
            .map(|r| r["clicks"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, s["total"].as_i64().unwrap(), "{query}");
        assert_eq!(s["total"], cap as i64 + 32);
    }
}

/// The rollups against the raw rows when more distinct referrers arrive than
/// the cap keeps: a value counts by name when it is among the link's first
/// `MAX_BREAKDOWN` distinct hosts (in click order) or is "no referrer", and
/// under "(other)" otherwise; on each day and over all time.
#[tokio::test]
async fn rollups_equal_the_raw_click_rows_with_hosts_beyond_the_cap_counted_as_other() {
    let app = TestApp::spawn().await;
    let slugs = [
        app.create_ok("https://a.example/", None).await,
        app.create_ok("https://b.example/", None).await,
    ];
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let mut next = |m: usize| rand::Rng::random_range(&mut rng, 0..m);
    for step in 0..600 {
        if step % 200 == 0 {
            app.set_now(datetime!(2030-03-01 10:00 UTC) + time::Duration::days(step / 200));
        }
        let slug = &slugs[next(2)];
        let host = format!("https://h{}.example/", next(160));
        let ua = [CHROME, FIREFOX, GOOGLEBOT][next(3)];
        let visit = Visit::default().user_agent(ua);
        let visit = if next(8) == 0 {
            visit
        } else {
            visit.referer(&host)
        };
        app.visit(slug, visit).await;
    }
    // The raw rows with each host mapped as the cap says, against each rollup
    // (both differences must be empty).
    app.fold().await;
    macro_rules! mapped {
        () => {
            "WITH firsts AS (SELECT slug, coalesce(referrer_host, '') AS value, min(id) AS first \
                 FROM clicks GROUP BY 1, 2), \
             kept AS (SELECT slug, value, value = '' OR row_number() OVER \
                 (PARTITION BY slug ORDER BY value = '', first) <= 100 AS by_name FROM firsts), \
             mapped AS (SELECT c.slug, c.day, CASE WHEN k.by_name THEN k.value ELSE '(other)' END AS value \
                 FROM clicks c JOIN kept k ON k.slug = c.slug AND k.value = coalesce(c.referrer_host, '')), "
        };
    }
    let daily = app.query(
        concat!(
            mapped!(),
            "raw AS (SELECT slug, day, value, count(*) FROM mapped GROUP BY 1, 2, 3), \
             rollup AS (SELECT slug, day, value, clicks FROM daily_dimensions WHERE dimension = 'referrer') \
             SELECT * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rollup) \
             UNION ALL SELECT * FROM (SELECT * FROM rollup EXCEPT SELECT * FROM raw)"
        ),
        vec![],
    );
    assert!(daily.is_empty(), "daily referrer rollups differ: {daily:?}");
    let all_time = app.query(
        concat!(
            mapped!(),
            "raw AS (SELECT slug, value, count(*) FROM mapped GROUP BY 1, 2), \
             rollup AS (SELECT slug, value, clicks FROM link_dimensions WHERE dimension = 'referrer') \
             SELECT * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rollup) \
             UNION ALL SELECT * FROM (SELECT * FROM rollup EXCEPT SELECT * FROM raw)"
        ),
        vec![],
    );
    assert!(
        all_time.is_empty(),
        "all-time referrer rollups differ: {all_time:?}"
    );
    for slug in &slugs {
        let other = app.count(
            "SELECT count(*) FROM link_dimensions WHERE slug = ?1 AND value = '(other)'",
            vec![SqlValue::from(slug.as_str())],
        );
        assert_eq!(other, 1, "160 hosts drawn, so {slug} overflowed the cap");
        let s = app.stats(slug, "").await.json();
        let raw = app.count(
            "SELECT count(*) FROM clicks WHERE slug = ?1",
            vec![SqlValue::from(slug.as_str())],
        );
        assert_eq!(s["total"], raw);
        for key in ["referrers", "browsers", "operating_systems"] {
            let sum: i64 = s[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["clicks"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, raw, "{key}");
        }
    }
}
