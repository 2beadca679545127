//! The web console's routes and assets, and the API routes it added: edit
//! (`PATCH /api/links/{slug}`), QR codes and search.

use shortener::error::ErrorCode;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::config::names;
use shortener::console;
use shortener::qr;
use time::macros::datetime;

use crate::helpers::{BASE, TOKEN, TestApp, TestResponse, slugs_of};

async fn get(app: &TestApp, path: &str) -> TestResponse {
    app.send(Request::get(path).body(Body::empty()).unwrap())
        .await
}

fn assert_security_headers(r: &TestResponse) {
    let csp = r.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

// ------------------------------------------------------------------ console

#[tokio::test]
async fn the_console_page_is_served_without_a_token_with_strict_security_headers() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/console/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_security_headers(&r);
    assert!(r.text().contains("<title>shortener console</title>"));
}

#[tokio::test]
async fn the_bare_prefix_redirects_relatively_to_the_page() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/console").await;
    assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header("location"), Some("console/"));
    assert_security_headers(&r);
}

fn repository_file(file: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

#[tokio::test]
async fn every_console_asset_is_served_with_its_type_bytes_and_headers() {
    let app = TestApp::spawn().await;
    for asset in console::ASSETS {
        let r = get(&app, &format!("/console/{}", asset.path)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", asset.path);
        assert_eq!(r.header("content-type"), Some(asset.content_type));
        assert_eq!(r.header("content-encoding"), None, "{}", asset.path);
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        assert_eq!(r.body, repository_file(asset.file), "{}", asset.path);
        assert_security_headers(&r);
    }
}

#[tokio::test]
async fn a_client_that_accepts_gzip_gets_every_served_file_gzipped() {
    use std::io::Read;
    let app = TestApp::spawn().await;
    let files = console::ASSETS
        .iter()
        .map(|a| (format!("/console/{}", a.path), a.file))
        .chain([("/api/openapi.json".to_owned(), "openapi.json")]);
    for (path, file) in files {
        let request = Request::get(&path)
            .header("accept-encoding", "br, gzip;q=0.8")
            .body(Body::empty())
            .unwrap();
        let r = app.send(request).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(r.header("vary"), Some("accept-encoding"), "{path}");
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(r.body.as_slice())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, repository_file(file), "{path}");
        assert!(r.body.len() < inflated.len(), "{path}");
    }
}

#[tokio::test]
async fn every_file_the_page_links_to_is_served() {
    let app = TestApp::spawn().await;
    let page = get(&app, "/console/").await.text();
    let mut linked = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in page.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            if !target.starts_with('#') {
                linked.push(target.to_owned());
            }
        }
    }
    assert!(linked.iter().any(|l| l == "app.js"), "{linked:?}");
    assert!(linked.iter().any(|l| l.contains("uPlot")), "{linked:?}");
    for target in linked {
        assert!(!target.contains("//"), "no other origin: {target}");
        let r = get(&app, &format!("/console/{target}")).await;
        assert_eq!(r.status, StatusCode::OK, "{target}");
    }
}

#[tokio::test]
async fn an_unknown_console_file_is_a_404_error_body_with_the_security_headers() {
    let app = TestApp::spawn().await;
    let r = get(&app, "/console/nope.js").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    assert_security_headers(&r);
    let r = get(&app, "/console/../api/links").await;
    assert_ne!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn writing_to_the_console_is_a_405_with_the_security_headers() {
    let app = TestApp::spawn().await;
    let r = app
        .send(Request::post("/console/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_security_headers(&r);
}

#[tokio::test]
async fn the_console_script_renders_api_text_as_text_never_as_html() {
    let app = TestApp::spawn().await;
    let js = get(&app, "/console/app.js").await.text();
    for file in ["app.js", "tags.js"] {
        let script = get(&app, &format!("/console/{file}")).await.text();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!script.contains(sink), "{file} uses {sink}");
        }
    }
    assert!(js.contains("textContent"));
    // The token is kept per tab, sent as a header, never in a URL or cookie.
    assert!(js.contains("sessionStorage"));
    assert!(!js.contains("localStorage") && !js.contains("document.cookie"));
    assert!(js.contains("Authorization: `Bearer"));
}

#[tokio::test]
async fn console_is_a_reserved_slug() {
    let app = TestApp::spawn().await;
    for slug in ["console", "Console"] {
        let r = app
            .create(json!({"url": "https://example.com", "slug": slug}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.error_code(), "reserved_slug");
    }
}

// -------------------------------------------------------------------- PATCH

async fn patch(app: &TestApp, slug: &str, body: serde_json::Value) -> TestResponse {
    app.api(Method::PATCH, &format!("/api/links/{slug}"), Some(body))
        .await
}

#[tokio::test]
async fn patching_the_target_changes_what_get_list_and_the_redirect_say() {
    let app = TestApp::spawn().await;
    app.create_ok("https://old.example/a", Some("edit-me"))
        .await;
    let r = patch(&app, "edit-me", json!({"url": "https://new.example/b"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["url"], "https://new.example/b");
    assert_eq!(body["short_url"], format!("{BASE}/edit-me"));
    assert_eq!(body["created_at"], "2030-01-15T12:00:00Z");

    assert_eq!(app.link("edit-me").await["url"], "https://new.example/b");
    let follow = app.follow("edit-me").await;
    assert_eq!(follow.status, StatusCode::FOUND);
    assert_eq!(follow.header("location"), Some("https://new.example/b"));
    let list = app.api(Method::GET, "/api/links", None).await.json();
    assert_eq!(list["links"][0]["url"], "https://new.example/b");
    assert_eq!(list["links"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_patch_keeps_the_links_clicks_and_the_fields_it_does_not_name() {
    let app = TestApp::spawn().await;
    app.create(
        json!({"url": "https://e.com/", "slug": "keep", "expires_at": "2031-01-01T00:00:00Z"}),
    )
    .await;
    app.follow("keep").await;
    app.follow("keep").await;
    let r = patch(&app, "keep", json!({"url": "https://f.com/"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let now = app.link("keep").await;
    assert_eq!(now["expires_at"], "2031-01-01T00:00:00Z");
    assert_eq!(now["clicks"], 2);
    let r = patch(
        &app,
        "keep",
        json!({"expires_at": "2032-06-01T10:00:00+02:00"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let now = app.link("keep").await;
    assert_eq!(now["url"], "https://f.com/");
    assert_eq!(now["expires_at"], "2032-06-01T08:00:00Z");
}

#[tokio::test]
async fn expires_at_null_removes_the_expiry_and_revives_an_expired_link() {
    let app = TestApp::spawn().await;
    app.create(
        json!({"url": "https://e.com/", "slug": "soon", "expires_at": "2030-01-16T00:00:00Z"}),
    )
    .await;
    app.set_now(datetime!(2030-01-17 00:00 UTC));
    assert_eq!(app.follow("soon").await.status, StatusCode::GONE);
    let r = patch(&app, "soon", json!({"expires_at": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["expires_at"].is_null());
    assert!(app.link("soon").await["expires_at"].is_null());
    assert_eq!(app.follow("soon").await.status, StatusCode::FOUND);
}

#[tokio::test]
async fn a_new_expiry_in_the_future_is_set_and_then_enforced() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/", Some("later")).await;
    let r = patch(&app, "later", json!({"expires_at": "2030-02-01T00:00:00Z"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["expires_at"], "2030-02-01T00:00:00Z");
    app.set_now(datetime!(2030-02-01 00:00 UTC));
    assert_eq!(app.follow("later").await.status, StatusCode::GONE);
}

#[tokio::test]
async fn every_invalid_patch_is_refused_like_a_create_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create(
        json!({"url": "https://e.com/x", "slug": "stay", "expires_at": "2031-01-01T00:00:00Z"}),
    )
    .await;
    let before = app.link("stay").await;
    let cases = [
        (json!({"url": "ftp://e.com"}), "invalid_url"),
        (json!({"url": "/relative"}), "invalid_url"),
        (json!({"url": "https://u:p@e.com"}), "invalid_url"),
        (
            json!({"url": format!("https://e.com/{}", "a".repeat(2048))}),
            "invalid_url",
        ),
        (json!({"url": "https://sho.rt/abc"}), "self_referencing_url"),
        (json!({"url": null}), "empty_patch"),
        (json!({"expires_at": "tomorrow"}), "invalid_timestamp"),
        (
            json!({"expires_at": "2030-01-15T12:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"expires_at": "2029-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (json!({}), "empty_patch"),
        (json!({"slug": "other"}), "invalid_json"),
        (json!({"url": 42}), "invalid_json"),
        (json!([1]), "invalid_json"),
        // A valid field does not carry an invalid one through.
        (
            json!({"url": "https://ok.example", "expires_at": "nope"}),
            "invalid_timestamp",
        ),
    ];
    for (body, code) in cases {
        let r = patch(&app, "stay", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        assert_eq!(r.error_code(), code, "{body}");
    }
    assert_eq!(app.link("stay").await, before);
}

#[tokio::test]
async fn a_patch_that_is_not_json_too_large_or_unauthorised_is_refused() {
    let app = TestApp::spawn().await;
    app.create_ok("https://e.com/x", Some("stay")).await;
    let raw = |content_type: &str, body: String, token: &str| {
        Request::patch("/api/links/stay")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let r = app
        .send(raw("text/plain", r#"{"url":"https://a.b"}"#.into(), TOKEN))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = json!({"url": format!("https://e.com/{}", "a".repeat(17_000))}).to_string();
    let r = app.send(raw("application/json", big, TOKEN)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .send(raw(
            "application/json",
            r#"{"url":"https://a.b"}"#.into(),
            "wrong",
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    assert_eq!(app.link("stay").await["url"], "https://e.com/x");
}

#[tokio::test]
async fn patching_an_unknown_or_deleted_link_is_404_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let r = patch(&app, "ghost", json!({"url": "https://e.com"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = patch(&app, "bad%20slug", json!({"url": "https://e.com"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    app.create_ok("https://e.com/", Some("gone")).await;
    assert_eq!(
        app.api(Method::DELETE, "/api/links/gone", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = patch(&app, "gone", json!({"url": "https://e.com/2"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.follow("gone").await.status, StatusCode::NOT_FOUND);
    let keys = app.kv.keys();
    assert!(keys.is_empty(), "no record was written back: {keys:?}");
}

// ----------------------------------------------------------------------- QR

/// The dark modules an SVG from `qrcode`'s renderer draws: one
/// `M{x} {y}h{w}v{h}H{x}V{y}` rectangle per dark module.
fn svg_modules(svg: &str, modules: usize) -> Vec<bool> {
    let px = qr::MODULE_PX as usize;
    let quiet = qr::QUIET_ZONE as usize;
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; modules * modules];
    for rect in path.split('M').filter(|s| !s.is_empty()) {
        let (x, rest) = rect.split_once(' ').unwrap();
        let y = rest.split('h').next().unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        assert!(rect.contains(&format!("h{px}v{px}")), "{rect}");
        dark[(y / px - quiet) * modules + (x / px - quiet)] = true;
    }
    dark
}

#[tokio::test]
async fn the_qr_svg_encodes_the_short_url_at_the_named_size() {
    let app = TestApp::spawn().await;
    app.create_ok("https://example.com/qr", Some("qr-me")).await;
    let r = app.api(Method::GET, "/api/links/qr-me/qr", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let svg = r.text();
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));

    let (expected, modules) = qr::matrix(&format!("{BASE}/qr-me")).unwrap();
    let side = qr::image_side(modules);
    assert!(svg.contains(&format!("width=\"{side}\" height=\"{side}\"")));
    assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
    assert_eq!(svg_modules(&svg, modules), expected);
    // And not the matrix of another text.
    let (other, _) = qr::matrix(&format!("{BASE}/qr-mf")).unwrap();
    assert_ne!(svg_modules(&svg, modules), other);
}

#[tokio::test]
async fn the_qr_code_follows_public_base_url() {
    let app = TestApp::with_vars(&[(names::PUBLIC_BASE_URL, "https://go.example/s/")]).await;
    app.create_ok("https://example.com/", Some("based")).await;
    let svg = app
        .api(Method::GET, "/api/links/based/qr", None)
        .await
        .text();
    let (expected, modules) = qr::matrix("https://go.example/s/based").unwrap();
    assert_eq!(svg_modules(&svg, modules), expected);
}

#[tokio::test]
async fn the_qr_route_refuses_unknown_links_and_missing_tokens() {
    let app = TestApp::spawn().await;
    app.create_ok("https://example.com/", Some("qr-ok")).await;
    let r = app.api(Method::GET, "/api/links/none-such/qr", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = get(&app, "/api/links/qr-ok/qr").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

// ------------------------------------------------------------------- search

async fn list(app: &TestApp, query: &str) -> serde_json::Value {
    let r = app
        .api(Method::GET, &format!("/api/links?{query}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn q_matches_a_slug_or_target_url_substring_ignoring_case() {
    let app = TestApp::spawn().await;
    app.create_ok("https://docs.example/guide", Some("Launch-Day"))
        .await;
    app.create_ok("https://shop.example/LAUNCH", Some("sale"))
        .await;
    app.create_ok("https://blog.example/", Some("blog")).await;
    let page = list(&app, "q=launch").await;
    assert_eq!(slugs_of(&page), ["Launch-Day", "sale"]);
    assert!(page["next_cursor"].is_null());
    assert_eq!(
        slugs_of(&list(&app, "q=EXAMPLE%2Fguide").await),
        ["Launch-Day"]
    );
    assert_eq!(
        slugs_of(&list(&app, "q=nothing-like-it").await),
        Vec::<String>::new()
    );
    // An empty q is no filter.
    assert_eq!(slugs_of(&list(&app, "q=").await).len(), 3);
}

#[tokio::test]
async fn search_pages_return_every_match_once_in_slug_order() {
    let app = TestApp::spawn().await;
    let mut expected = Vec::new();
    for i in 0..40 {
        let (url, slug) = if i % 3 == 0 {
            (format!("https://match.example/{i}"), format!("s{i:03}"))
        } else {
            (format!("https://other.example/{i}"), format!("s{i:03}"))
        };
        if i % 3 == 0 {
            expected.push(slug.clone());
        }
        app.create_ok(&url, Some(&slug)).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = list(&app, &format!("q=match&limit=4&cursor={cursor}")).await;
        let got = slugs_of(&page);
        assert!(got.len() <= 4);
        seen.extend(got);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 4, "14 matches in pages of 4: 4+4+4+2");
}

#[tokio::test]
async fn a_search_over_many_links_finds_matches_at_both_ends_in_one_page() {
    let app = TestApp::spawn().await;
    // More links than the old key-value scan read per call (1,000).
    let total = 1020;
    for i in 0..total {
        let kind = if i < 2 || i >= total - 2 {
            "needle"
        } else {
            "hay"
        };
        app.create_ok(
            &format!("https://{kind}.example/{i}"),
            Some(&format!("k{i:05}")),
        )
        .await;
    }
    let page = list(&app, "q=needle&limit=10").await;
    assert_eq!(
        slugs_of(&page),
        [
            "k00000".to_owned(),
            "k00001".to_owned(),
            format!("k{:05}", total - 2),
            format!("k{:05}", total - 1)
        ]
    );
    assert!(page["next_cursor"].is_null());
}

#[tokio::test]
async fn a_search_that_is_too_long_or_has_a_bad_cursor_is_refused() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(257);
    let r = app
        .api(Method::GET, &format!("/api/links?q={long}"), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_search");
    let r = app
        .api(Method::GET, "/api/links?q=a&cursor=no/such", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_cursor");
}

#[tokio::test]
async fn the_console_has_a_sentence_for_every_error_code_the_api_answers_with() {
    let app = TestApp::spawn().await;
    let js = get(&app, "/console/app.js").await.text();
    for code in ErrorCode::ALL {
        assert!(
            js.contains(&format!("    {code}: \"")),
            "no message for {code}"
        );
    }
}
