//! Tags on links, `/api/tags`, and the list's click totals, sort orders,
//! tag filter and exact keyset paging (`sort=clicks` while clicks arrive).

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use shortener::storage::{KvStore, SqlValue};

use crate::helpers::{TestApp, slugs_of};

async fn list(app: &TestApp, query: &str) -> Value {
    let r = app
        .api(Method::GET, &format!("/api/links?{query}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    r.json()
}

async fn create_tagged(app: &TestApp, slug: &str, tags: Value) -> Value {
    let r = app
        .create(json!({"url": format!("https://{slug}.example/"), "slug": slug, "tags": tags}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

async fn clicks(app: &TestApp, slug: &str, n: usize) {
    for _ in 0..n {
        let r = app.follow(slug).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
    }
}

/// Every page of `query` (which must not hold `cursor`), following the
/// cursor, calling `between` after each page.
async fn all_pages(app: &TestApp, query: &str, mut between: impl AsyncFnMut(usize)) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let body = list(app, &q).await;
        out.extend(body["links"].as_array().unwrap().iter().cloned());
        between(page).await;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(page < 100, "paging does not end");
    }
    out
}

#[tokio::test]
async fn tags_are_folded_kept_once_and_returned_wherever_a_link_is() {
    let app = TestApp::spawn().await;
    let created = create_tagged(&app, "tagged", json!(["Launch", "q3-2030", "launch"])).await;
    assert_eq!(created["tags"], json!(["launch", "q3-2030"]));
    assert_eq!(created["clicks"], 0);
    assert_eq!(
        app.link("tagged").await["tags"],
        json!(["launch", "q3-2030"])
    );
    assert_eq!(
        list(&app, "").await["links"][0]["tags"],
        json!(["launch", "q3-2030"])
    );
    // The redirect's copy carries them too.
    let record = app.kv.get("link:tagged").await.unwrap().unwrap();
    let record: Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["tags"], json!(["launch", "q3-2030"]));
    // A link made without tags shows an empty list.
    app.create_ok("https://plain.example/", Some("plain")).await;
    assert_eq!(app.link("plain").await["tags"], json!([]));
}

#[tokio::test]
async fn tags_that_are_not_at_most_ten_short_lowercase_words_are_an_invalid_tag() {
    let app = TestApp::spawn().await;
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    for tags in [
        json!(eleven),
        json!(["has space"]),
        json!(["under_score"]),
        json!([""]),
        json!(["x".repeat(33)]),
        json!("launch"),
        json!([1]),
        json!({"a": 1}),
    ] {
        let r = app
            .create(json!({"url": "https://e.example/", "tags": tags}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{tags}");
        assert_eq!(r.error_code(), "invalid_tag", "{tags}");
    }
    assert_eq!(
        list(&app, "").await["links"],
        json!([]),
        "nothing was stored"
    );
    app.create_ok("https://e.example/", Some("exists")).await;
    let r = app
        .api(
            Method::PATCH,
            "/api/links/exists",
            Some(json!({"tags": ["a b"]})),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_tag");
}

#[tokio::test]
async fn a_patch_without_tags_keeps_them_new_tags_replace_them_and_null_clears_them() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "edit-me", json!(["a", "b"])).await;
    let patch = |body: Value| app.api(Method::PATCH, "/api/links/edit-me", Some(body));
    let r = patch(json!({"url": "https://moved.example/"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["tags"], json!(["a", "b"]));
    let r = patch(json!({"tags": ["C"]})).await;
    assert_eq!(r.json()["tags"], json!(["c"]));
    assert_eq!(r.json()["url"], "https://moved.example/");
    assert_eq!(slugs_of(&list(&app, "tag=c").await), ["edit-me"]);
    assert_eq!(slugs_of(&list(&app, "tag=a").await), Vec::<String>::new());
    let r = patch(json!({"tags": null})).await;
    assert_eq!(r.json()["tags"], json!([]));
    assert_eq!(slugs_of(&list(&app, "tag=c").await), Vec::<String>::new());
    let record = app.kv.get("link:edit-me").await.unwrap().unwrap();
    let record: Value = serde_json::from_slice(&record).unwrap();
    assert!(record.get("tags").is_none(), "{record}");
}

#[tokio::test]
async fn a_list_filters_by_tag_and_combines_it_with_a_search() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "aaa", json!(["news"])).await;
    create_tagged(&app, "bbb", json!(["news", "sale"])).await;
    create_tagged(&app, "ccc", json!(["sale"])).await;
    assert_eq!(slugs_of(&list(&app, "tag=news").await), ["aaa", "bbb"]);
    assert_eq!(slugs_of(&list(&app, "tag=SALE").await), ["bbb", "ccc"]);
    assert_eq!(
        slugs_of(&list(&app, "tag=sale&q=ccc.example").await),
        ["ccc"]
    );
    assert_eq!(
        slugs_of(&list(&app, "tag=none").await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn each_listed_link_carries_its_click_total() {
    let app = TestApp::spawn().await;
    app.create_ok("https://a.example/", Some("one")).await;
    app.create_ok("https://b.example/", Some("two")).await;
    clicks(&app, "one", 3).await;
    let page = list(&app, "").await;
    let totals: Vec<(String, i64)> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["slug"].as_str().unwrap().to_owned(),
                l["clicks"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(totals, [("one".to_owned(), 3), ("two".to_owned(), 0)]);
    assert_eq!(app.link("one").await["clicks"], 3);
}

#[tokio::test]
async fn lists_sort_by_created_clicks_or_slug_in_either_order_ties_by_slug() {
    let app = TestApp::spawn().await;
    let t0 = time::macros::datetime!(2030-01-15 12:00 UTC);
    for (i, slug) in ["ccc", "aaa", "bbb", "ddd"].iter().enumerate() {
        // "ddd" is created in the same second as "bbb".
        app.set_now(t0 + time::Duration::minutes(i.min(2) as i64));
        app.create_ok("https://e.example/", Some(slug)).await;
    }
    clicks(&app, "bbb", 2).await;
    clicks(&app, "ddd", 2).await;
    clicks(&app, "ccc", 1).await;
    let order = async |q: &str| slugs_of(&list(&app, q).await);
    assert_eq!(order("sort=slug").await, ["aaa", "bbb", "ccc", "ddd"]);
    assert_eq!(
        order("sort=slug&order=desc").await,
        ["ddd", "ccc", "bbb", "aaa"]
    );
    assert_eq!(
        order("sort=created&order=asc").await,
        ["ccc", "aaa", "bbb", "ddd"]
    );
    assert_eq!(order("sort=created").await, ["ddd", "bbb", "aaa", "ccc"]);
    assert_eq!(
        order("sort=clicks&order=asc").await,
        ["aaa", "ccc", "bbb", "ddd"]
    );
    assert_eq!(order("sort=clicks").await, ["ddd", "bbb", "ccc", "aaa"]);
    assert_eq!(
        order("sort=clicks&q=e.example&order=asc").await,
        ["aaa", "ccc", "bbb", "ddd"]
    );
}

#[tokio::test]
async fn paging_in_every_order_lists_every_link_once_in_that_order() {
    let app = TestApp::spawn().await;
    let t0 = time::macros::datetime!(2030-01-15 12:00 UTC);
    let mut slugs = Vec::new();
    for i in 0..23 {
        app.set_now(t0 + time::Duration::seconds(i / 3));
        let slug = format!("p{:02}", (i * 7) % 23);
        app.create_ok(&format!("https://match.example/{i}"), Some(&slug))
            .await;
        slugs.push(slug);
    }
    for (i, slug) in slugs.iter().enumerate() {
        clicks(&app, slug, i % 4).await;
    }
    for sort in ["slug", "created", "clicks"] {
        for order in ["asc", "desc"] {
            for q in ["", "&q=match", "&tag="] {
                let query = format!("sort={sort}&order={order}&limit=4{q}");
                let whole =
                    slugs_of(&list(&app, &format!("sort={sort}&order={order}&limit=100{q}")).await);
                let paged: Vec<String> = all_pages(&app, &query, async |_| {})
                    .await
                    .iter()
                    .map(|l| l["slug"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(paged, whole, "{query}");
                assert_eq!(paged.len(), 23, "{query}");
            }
        }
    }
}

#[tokio::test]
async fn paging_by_clicks_skips_and_repeats_no_link_while_clicks_arrive_between_pages() {
    let app = TestApp::spawn().await;
    let slugs: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
    for (i, slug) in slugs.iter().enumerate() {
        app.create_ok("https://e.example/", Some(slug)).await;
        clicks(&app, slug, i).await;
    }
    for order in ["desc", "asc"] {
        // Between pages, the links not yet listed gain many clicks (in
        // `desc` they would jump ahead of the cursor) and the listed ones
        // too (in `asc` they would come again).
        let query = format!("sort=clicks&order={order}&limit=3");
        let seen = all_pages(&app, &query, async |page| {
            let victim = &slugs[(page * 5 + 3) % slugs.len()];
            clicks(&app, victim, 15).await;
            let other = &slugs[(page * 7 + 1) % slugs.len()];
            clicks(&app, other, 15).await;
        })
        .await;
        let listed: Vec<String> = seen
            .iter()
            .map(|l| l["slug"].as_str().unwrap().to_owned())
            .collect();
        let once: HashSet<&String> = listed.iter().collect();
        assert_eq!(listed.len(), slugs.len(), "{order}: {listed:?}");
        assert_eq!(once.len(), slugs.len(), "{order}: {listed:?}");
        // The totals shown are those of the first page's moment, in order.
        let totals: Vec<i64> = seen.iter().map(|l| l["clicks"].as_i64().unwrap()).collect();
        let mut sorted = totals.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
        }
        assert_eq!(totals, sorted, "{order}");
    }
    // A new listing sees the clicks that arrived.
    let now = list(&app, "sort=clicks&limit=100").await;
    let sum: i64 = now["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["clicks"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, (0..12).sum::<i64>() + 2 * 2 * 4 * 15);
}

#[tokio::test]
async fn a_clicks_cursor_older_than_the_click_log_is_refused_as_expired() {
    let app = TestApp::spawn().await;
    for slug in ["aaa", "bbb", "ccc"] {
        app.create_ok("https://e.example/", Some(slug)).await;
        clicks(&app, slug, 1).await;
    }
    let first = list(&app, "sort=clicks&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // As if 2^20 more changes had been logged and the older ones pruned.
    app.query(
        "INSERT INTO link_click_log (seq, slug, delta) VALUES (5000000, 'aaa', 0)",
        vec![],
    );
    app.query("DELETE FROM link_click_log WHERE seq < 4000000", vec![]);
    let r = app
        .api(
            Method::GET,
            &format!("/api/links?sort=clicks&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.error_code(), "cursor_expired");
}

#[tokio::test]
async fn bad_sort_order_limit_tag_or_cursor_values_are_400s_with_their_codes() {
    let app = TestApp::spawn().await;
    for slug in ["aaa", "bbb"] {
        app.create_ok("https://e.example/", Some(slug)).await;
    }
    let by_created = list(&app, "sort=created&limit=1").await;
    let created_cursor = by_created["next_cursor"].as_str().unwrap().to_owned();
    for (query, code) in [
        ("sort=url".to_owned(), "invalid_sort"),
        ("order=up".to_owned(), "invalid_order"),
        ("limit=0".to_owned(), "invalid_limit"),
        ("limit=101".to_owned(), "invalid_limit"),
        ("tag=no%20tag".to_owned(), "invalid_tag"),
        ("cursor=no%2Fsuch".to_owned(), "invalid_cursor"),
        // A cursor of another order.
        (
            format!("sort=clicks&cursor={created_cursor}"),
            "invalid_cursor",
        ),
        (
            format!("sort=created&order=asc&cursor={created_cursor}"),
            "invalid_cursor",
        ),
        (
            "sort=clicks&cursor=clicks.desc.x.1.aaa".to_owned(),
            "invalid_cursor",
        ),
    ] {
        let r = app
            .api(Method::GET, &format!("/api/links?{query}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text());
        assert_eq!(r.error_code(), code, "{query}");
    }
}

#[tokio::test]
async fn links_written_before_tags_are_adopted_by_the_first_list_with_their_clicks() {
    let app = TestApp::spawn().await;
    app.create_ok("https://new.example/", Some("newer")).await;
    // A row as written before the registry held copies (no record, no
    // url), its record in key-value; and one claimed by the previous
    // version (a copy, no url).
    let old = r#"{"slug":"older","url":"https://old.example/","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#;
    app.query(
        "INSERT INTO links (slug, created_at) VALUES ('older', 1893456000)",
        vec![],
    );
    app.kv.set("link:older", old.as_bytes()).await.unwrap();
    let prev = r#"{"slug":"prev","url":"https://prev.example/","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#;
    app.query(
        "INSERT INTO links (slug, created_at, record) VALUES ('prev', 1893456000, ?1)",
        vec![SqlValue::Text(prev.into())],
    );
    app.kv.set("link:prev", prev.as_bytes()).await.unwrap();
    clicks(&app, "older", 2).await;
    clicks(&app, "prev", 1).await;

    let page = list(&app, "sort=clicks").await;
    assert_eq!(slugs_of(&page), ["older", "prev", "newer"]);
    assert_eq!(page["links"][0]["clicks"], 2);
    assert_eq!(slugs_of(&list(&app, "q=old.example").await), ["older"]);
    assert_eq!(slugs_of(&list(&app, "q=prev.example").await), ["prev"]);
    // Adopted: the registry holds the key-value record as its copy.
    let rows = app.query("SELECT record, url FROM links WHERE slug = 'older'", vec![]);
    assert_eq!(rows[0][0], SqlValue::Text(old.into()));
    assert_eq!(rows[0][1], SqlValue::Text("https://old.example/".into()));
    assert_eq!(app.follow("older").await.status, StatusCode::FOUND);
}

// ------------------------------------------------------------- /api/tags

#[tokio::test]
async fn the_tag_list_names_every_tag_with_its_number_of_links_for_a_viewer() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "aaa", json!(["news", "sale"])).await;
    create_tagged(&app, "bbb", json!(["news"])).await;
    app.create_ok("https://e.example/", Some("untagged")).await;
    let viewer = app.key("viewer").await;
    let r = app.api_as(&viewer, Method::GET, "/api/tags", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{"tag": "news", "links": 2}, {"tag": "sale", "links": 1}])
    );
    let r = app
        .api_as(&viewer, Method::DELETE, "/api/tags/news", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn renaming_a_tag_changes_it_on_every_link_and_its_record() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "aaa", json!(["old", "keep"])).await;
    create_tagged(&app, "bbb", json!(["old"])).await;
    create_tagged(&app, "ccc", json!(["keep"])).await;
    let r = app
        .api(Method::PATCH, "/api/tags/old", Some(json!({"name": "New"})))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(slugs_of(&list(&app, "tag=new").await), ["aaa", "bbb"]);
    assert_eq!(slugs_of(&list(&app, "tag=old").await), Vec::<String>::new());
    assert_eq!(app.link("aaa").await["tags"], json!(["new", "keep"]));
    let record = app.kv.get("link:bbb").await.unwrap().unwrap();
    assert!(
        String::from_utf8(record)
            .unwrap()
            .contains(r#""tags":["new"]"#)
    );
    let tags = app.api(Method::GET, "/api/tags", None).await.json();
    assert_eq!(
        tags,
        json!([{"tag": "keep", "links": 2}, {"tag": "new", "links": 2}])
    );
}

#[tokio::test]
async fn renaming_onto_an_existing_tag_is_a_409_and_an_unknown_tag_a_404() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "aaa", json!(["one"])).await;
    create_tagged(&app, "bbb", json!(["two"])).await;
    let r = app
        .api(Method::PATCH, "/api/tags/one", Some(json!({"name": "two"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.error_code(), "tag_taken");
    assert_eq!(
        app.link("aaa").await["tags"],
        json!(["one"]),
        "nothing changed"
    );
    let r = app
        .api(
            Method::PATCH,
            "/api/tags/none",
            Some(json!({"name": "three"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .api(
            Method::PATCH,
            "/api/tags/one",
            Some(json!({"name": "not ok"})),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_tag");
    let r = app.api(Method::DELETE, "/api/tags/none", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
}

#[tokio::test]
async fn deleting_a_tag_removes_it_from_every_link_and_keeps_the_links() {
    let app = TestApp::spawn().await;
    create_tagged(&app, "aaa", json!(["gone", "stay"])).await;
    create_tagged(&app, "bbb", json!(["gone"])).await;
    let r = app.api(Method::DELETE, "/api/tags/gone", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(app.link("aaa").await["tags"], json!(["stay"]));
    assert_eq!(app.link("bbb").await["tags"], json!([]));
    assert_eq!(
        app.api(Method::GET, "/api/tags", None).await.json(),
        json!([{"tag": "stay", "links": 1}])
    );
    assert_eq!(app.follow("bbb").await.status, StatusCode::FOUND);
}
