//! Spans: one server span per request, exactly the storage spans each route
//! makes, nested under it, with semantic-convention attributes and nothing
//! personal. Each test installs the production tracer as its thread's
//! default subscriber, exporting the very records the component sends to
//! memory.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use shortener::native::{MemoryKv, SqliteStore};
use shortener::storage::{KvStore, SqlStore, Statement, Traced};
use shortener::telemetry::wasi_otel::wit::{self, SpanData, SpanKind, Status};
use shortener::telemetry::{Exporter, Tracer};
use tracing::subscriber::DefaultGuard;

use crate::helpers::{GOOGLEBOT, TOKEN, TestApp, Visit};

const NO_SPAN: &str = "0000000000000000";

/// Keeps the spans that ended; panics on an end without a start (the
/// host's contract: that traps the guest).
#[derive(Clone, Default)]
struct Memory {
    started: Arc<Mutex<HashSet<String>>>,
    ended: Arc<Mutex<Vec<SpanData>>>,
}

impl Exporter for Memory {
    fn on_start(&self, context: &wit::SpanContext) {
        self.started.lock().unwrap().insert(context.span_id.clone());
    }
    fn on_end(&self, span: SpanData) {
        let started = self
            .started
            .lock()
            .unwrap()
            .remove(&span.span_context.span_id);
        assert!(started, "{} ended without a start", span.name);
        self.ended.lock().unwrap().push(span);
    }
}

struct Capture {
    memory: Memory,
    _guard: DefaultGuard,
}

impl Capture {
    fn start() -> Self {
        // tracing caches each callsite's interest process-wide. A global
        // tracer keeps every INFO callsite enabled, so the per-thread
        // capture below sees all spans even while tests without one run in
        // parallel.
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(Tracer::new(Memory::default()));
        });
        let memory = Memory::default();
        let guard = tracing::subscriber::set_default(Tracer::new(memory.clone()));
        Self {
            memory,
            _guard: guard,
        }
    }

    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.memory.ended.lock().unwrap())
    }
}

/// An attribute's value as sent: JSON text.
fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// A string attribute's value (other values as their JSON text).
fn attr_str(span: &SpanData, key: &str) -> Option<String> {
    attr(span, key).map(|json| match serde_json::from_str(json) {
        Ok(serde_json::Value::String(s)) => s,
        _ => json.to_owned(),
    })
}

/// The one server span, and the storage spans in the order they ended,
/// after checking every storage span is a client child of the server span.
fn split(spans: &[SpanData]) -> (&SpanData, Vec<&SpanData>) {
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 1, "one request span: {:?}", names(spans));
    let server = servers[0];
    let storage: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind != SpanKind::Server)
        .collect();
    for s in &storage {
        assert_eq!(s.span_kind, SpanKind::Client, "{}", s.name);
        assert_eq!(
            s.parent_span_id, server.span_context.span_id,
            "{} nests under the request",
            s.name
        );
        assert_eq!(s.span_context.trace_id, server.span_context.trace_id);
    }
    (server, storage)
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

/// `(span name, db.operation.name, db.collection.name)` of each storage span.
fn ops(storage: &[&SpanData]) -> Vec<(String, String, Option<String>)> {
    storage
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                attr_str(s, "db.operation.name").unwrap_or_default(),
                attr_str(s, "db.collection.name"),
            )
        })
        .collect()
}

/// A request, the span name and status it must give, and its storage spans.
type RouteCase = (
    Method,
    String,
    Option<serde_json::Value>,
    &'static str,
    u16,
    Vec<(String, String, Option<String>)>,
);

fn op(name: &str, operation: &str, table: Option<&str>) -> (String, String, Option<String>) {
    (name.into(), operation.into(), table.map(Into::into))
}

#[tokio::test]
async fn a_redirect_hit_is_one_kv_get_and_one_click_insert_under_the_request_span() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    let capture = Capture::start();
    let r = app.follow(&slug).await;
    assert_eq!(r.status, StatusCode::FOUND);

    let spans = capture.take();
    let (server, storage) = split(&spans);
    assert_eq!(server.name, "GET /{slug}");
    assert_eq!(
        attr_str(server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(attr_str(server, "http.route").as_deref(), Some("/{slug}"));
    assert_eq!(attr(server, "http.response.status_code"), Some("302"));
    assert_eq!(
        attr_str(server, "shortener.redirect.outcome").as_deref(),
        Some("hit")
    );
    assert_eq!(
        attr_str(server, "shortener.visitor.kind").as_deref(),
        Some("human")
    );
    assert_eq!(server.status, Status::Unset);
    assert_eq!(
        ops(&storage),
        vec![
            op("kv.get", "get", None),
            op("sqlite.execute", "INSERT", Some("clicks"))
        ]
    );

    let kv = storage[0];
    assert_eq!(
        attr_str(kv, "db.system.name").as_deref(),
        Some("spin_key_value")
    );
    assert_eq!(attr_str(kv, "db.namespace").as_deref(), Some("default"));
    let sql = storage[1];
    assert_eq!(attr_str(sql, "db.system.name").as_deref(), Some("sqlite"));
    assert_eq!(attr_str(sql, "db.namespace").as_deref(), Some("default"));
    assert_eq!(
        attr_str(sql, "db.query.text").as_deref(),
        Some(shortener::clicks::RECORD.sql)
    );
    for s in &spans {
        for key in [
            "code.filepath",
            "code.lineno",
            "thread.id",
            "target",
            "busy_ns",
        ] {
            assert!(attr(s, key).is_none(), "{key} on {}", s.name);
        }
    }
}

#[tokio::test]
async fn each_route_makes_exactly_its_storage_spans() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", Some("routed")).await;
    app.follow(&slug).await;
    app.warm_tally().await;
    let capture = Capture::start();

    let auth = format!("Bearer {TOKEN}");
    let cases: Vec<RouteCase> = vec![
        (
            Method::HEAD,
            "/routed".into(),
            None,
            "HEAD /{slug}",
            302,
            vec![op("kv.get", "get", None)],
        ),
        (
            Method::GET,
            "/missing".into(),
            None,
            "GET /{slug}",
            404,
            // An orphan visit: one upsert (orphans::COUNT).
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "INSERT", Some("orphan_visits")),
            ],
        ),
        (
            Method::POST,
            "/api/links".into(),
            Some(json!({"url": "https://x.example", "slug": "newone"})),
            "POST /api/links",
            201,
            vec![
                // Claim (with the record's copy), write, converge.
                op("sqlite.execute", "INSERT", Some("links")),
                op("kv.set", "set", None),
                op("sqlite.execute", "SELECT", Some("links")),
            ],
        ),
        (
            Method::GET,
            "/api/links?limit=1".into(),
            None,
            "GET /api/links",
            200,
            vec![
                // The pending check and the fold of the clicks made so far
                // (totals count every click; later reads find nothing to
                // fold: the check alone), rows older versions wrote (none:
                // an empty index), then the page: one statement, no
                // key-value read.
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "INSERT", Some("rollup_folds")),
                op("sqlite.execute", "SELECT", Some("links")),
                op("sqlite.execute", "SELECT", Some("links")),
            ],
        ),
        (
            Method::GET,
            "/api/links?sort=clicks&tag=t&q=routed".into(),
            None,
            "GET /api/links",
            200,
            vec![
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("links")),
                op("sqlite.execute", "SELECT", Some("links")),
            ],
        ),
        (
            Method::GET,
            "/api/tags".into(),
            None,
            "GET /api/tags",
            200,
            vec![op("sqlite.execute", "SELECT", Some("link_tags"))],
        ),
        (
            Method::DELETE,
            "/api/tags/none-such".into(),
            None,
            "DELETE /api/tags/{tag}",
            404,
            vec![op("sqlite.execute", "SELECT", Some("link_tags"))],
        ),
        (
            Method::GET,
            "/api/links/routed".into(),
            None,
            "GET /api/links/{slug}",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("daily_clicks")),
                op("sqlite.execute", "SELECT", Some("unrecorded_clicks")),
            ],
        ),
        (
            Method::GET,
            "/api/links/routed/stats".into(),
            None,
            "GET /api/links/{slug}/stats",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("daily_clicks")),
                op("sqlite.execute", "SELECT", Some("link_dimensions")),
                op("sqlite.execute", "SELECT", Some("clicks")),
            ],
        ),
        (
            Method::GET,
            "/api/links/routed/stats?from=2030-01-16".into(),
            None,
            "GET /api/links/{slug}/stats",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("daily_clicks")),
                op("sqlite.execute", "SELECT", Some("daily_dimensions")),
                // The rules' clicks (analytics::rule_clicks).
                op("sqlite.execute", "SELECT", Some("clicks")),
            ],
        ),
        (
            Method::GET,
            "/api/orphans".into(),
            None,
            "GET /api/orphans",
            200,
            vec![
                op("sqlite.execute", "SELECT", Some("orphan_visits")),
                op("sqlite.execute", "SELECT", Some("orphan_visits")),
            ],
        ),
        (
            Method::DELETE,
            "/api/links/newone".into(),
            None,
            "DELETE /api/links/{slug}",
            204,
            vec![
                // The registry row first (the arbiter), then the record,
                // then converge (links::store: no record outlives its row).
                op("sqlite.execute", "DELETE", Some("links")),
                op("kv.get", "get", None),
                op("kv.delete", "delete", None),
                op("sqlite.execute", "SELECT", Some("links")),
            ],
        ),
        // Export and import (transfer): pages of the registry or of the
        // clicks; each imported row is looked up, then created as a POST.
        (
            Method::GET,
            "/api/export/links".into(),
            None,
            "GET /api/export/links",
            200,
            vec![
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("links")),
                op("kv.get", "get", None),
            ],
        ),
        (
            Method::GET,
            "/api/links/routed/clicks?format=json".into(),
            None,
            "GET /api/links/{slug}/clicks",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "SELECT", Some("clicks")),
            ],
        ),
        (
            Method::POST,
            "/api/import?source=shlink&dry_run=true".into(),
            Some(
                json!({"shortUrls": {"data": [{"shortCode": "dryone", "longUrl": "https://e.com/d"}]}}),
            ),
            "POST /api/import",
            200,
            vec![op("kv.get", "get", None)],
        ),
        (
            Method::POST,
            "/api/import?source=shlink".into(),
            Some(
                json!({"shortUrls": {"data": [{"shortCode": "imported", "longUrl": "https://e.com/i"}]}}),
            ),
            "POST /api/import",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "INSERT", Some("links")),
                op("kv.set", "set", None),
                op("sqlite.execute", "SELECT", Some("links")),
            ],
        ),
        (
            Method::GET,
            "/api/whoami".into(),
            None,
            "GET /api/whoami",
            200,
            vec![],
        ),
        (
            Method::GET,
            "/health".into(),
            None,
            "GET /health",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "INSERT", Some("health_probe")),
                op("sqlite.execute", "SELECT", Some("unrecorded_clicks")),
            ],
        ),
        (
            Method::GET,
            "/metrics".into(),
            None,
            "GET /metrics",
            200,
            vec![
                op("kv.get", "get", None),
                op("sqlite.execute", "INSERT", Some("health_probe")),
                op("sqlite.execute", "SELECT", Some("clicks")),
                op("sqlite.execute", "SELECT", Some("daily_clicks")),
                op("sqlite.execute", "SELECT", Some("links")),
                op("sqlite.execute", "SELECT", Some("corrupt_records")),
                op("sqlite.execute", "SELECT", Some("unrecorded_clicks")),
            ],
        ),
    ];
    for (method, path, body, name, status, expected) in cases {
        let mut builder = Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", &auth);
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let r = app.send(builder.body(body).unwrap()).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text());
        let spans = capture.take();
        let (server, storage) = split(&spans);
        assert_eq!(server.name, name, "{path}");
        assert_eq!(
            attr(server, "http.response.status_code"),
            Some(status.to_string().as_str())
        );
        assert_eq!(ops(&storage), expected, "{path}");
    }
}

#[tokio::test]
async fn an_api_call_carries_its_keys_id_on_the_request_span_and_never_the_key() {
    let app = TestApp::spawn().await;
    app.warm_tally().await;
    let key = app.key("viewer").await;
    let id = key.split('_').nth(1).unwrap().to_owned();
    let capture = Capture::start();
    let r = app.api_as(&key, Method::GET, "/api/links", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.api(Method::GET, "/api/links", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let spans = capture.take();
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 2);
    assert_eq!(
        attr_str(servers[0], "shortener.api_key.id").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        attr_str(servers[1], "shortener.api_key.id").as_deref(),
        Some("admin_token")
    );
    let everything = format!("{spans:?}");
    assert!(!everything.contains(&key), "the key is in a span");
    assert!(!everything.contains(TOKEN), "the token is in a span");
}

#[tokio::test]
async fn the_tally_database_is_set_up_by_its_first_statement_only() {
    let app = TestApp::spawn().await;
    let capture = Capture::start();
    let tally_ops = |spans: &[SpanData]| {
        let (_, storage) = split(spans);
        storage
            .into_iter()
            .filter(|s| attr_str(s, "db.namespace").as_deref() == Some("unrecorded"))
            .map(|s| attr_str(s, "db.operation.name").unwrap_or_default())
            .collect::<Vec<_>>()
    };
    // A redirect whose click is recorded never touches the tally.
    let slug = app.create_ok("https://e.com", None).await;
    assert!(tally_ops(&capture.take()).is_empty());
    app.follow(&slug).await;
    assert!(tally_ops(&capture.take()).is_empty());
    app.api(Method::GET, "/health", None).await;
    assert_eq!(
        tally_ops(&capture.take()),
        [
            "PRAGMA", "PRAGMA", "PRAGMA", "CREATE", "CREATE", "CREATE", "INSERT", "SELECT"
        ],
        "busy timeout, WAL, synchronous, the tally's and the outbox's schema, the replica id, then the probe"
    );
    app.api(Method::GET, "/health", None).await;
    assert_eq!(tally_ops(&capture.take()), ["SELECT"]);
}

#[tokio::test]
async fn with_a_click_outbox_a_redirect_makes_one_key_value_get_and_one_insert_into_the_replicas_outbox()
 {
    let app = TestApp::with_vars(&[("click_outbox", "true")]).await;
    app.warm_tally().await;
    let slug = app.create_ok("https://e.com", None).await;
    let capture = Capture::start();
    app.follow(&slug).await;
    let spans = capture.take();
    let (server, storage) = split(&spans);
    assert_eq!(
        attr_str(server, "shortener.click.outcome").as_deref(),
        Some("outboxed")
    );
    let calls: Vec<_> = storage
        .iter()
        .map(|s| {
            (
                attr_str(s, "db.namespace").unwrap_or_default(),
                attr_str(s, "db.operation.name").unwrap_or_default(),
                attr_str(s, "db.collection.name").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("default".to_owned(), "get".to_owned(), String::new()),
            (
                "unrecorded".to_owned(),
                "INSERT".to_owned(),
                "outbox".to_owned()
            )
        ],
        "{calls:?}"
    );
}

#[tokio::test]
async fn an_unmatched_route_is_named_by_its_method_alone() {
    let app = TestApp::spawn().await;
    let capture = Capture::start();
    let r = app.api(Method::GET, "/a/b/c", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let spans = capture.take();
    let (server, storage) = split(&spans);
    assert_eq!(server.name, "GET");
    assert!(attr(server, "http.route").is_none());
    // Its one storage call: the orphan visit (`http::fallback`).
    assert_eq!(
        ops(&storage),
        [op("sqlite.execute", "INSERT", Some("orphan_visits"))]
    );
}

#[tokio::test]
async fn redirect_outcomes_and_visitor_kinds_are_recorded() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    let r = app
        .create(
            json!({"url": "https://e.com", "slug": "old", "expires_at": "2030-01-16T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.set_now(time::macros::datetime!(2030-02-01 00:00 UTC));
    let capture = Capture::start();
    let outcome = |spans: &[SpanData]| {
        let (server, _) = split(spans);
        (
            attr_str(server, "shortener.redirect.outcome"),
            attr_str(server, "shortener.visitor.kind"),
        )
    };
    app.visit(&slug, Visit::default().user_agent(GOOGLEBOT))
        .await;
    assert_eq!(
        outcome(&capture.take()),
        (Some("hit".into()), Some("bot".into()))
    );
    app.follow("missing").await;
    assert_eq!(outcome(&capture.take()), (Some("miss".into()), None));
    app.follow("old").await;
    assert_eq!(outcome(&capture.take()), (Some("expired".into()), None));
}

#[tokio::test]
async fn the_request_span_continues_an_incoming_traceparent() {
    let app = TestApp::spawn().await;
    app.warm_tally().await;
    let capture = Capture::start();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let request = Request::get("/health")
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .body(Body::empty())
        .unwrap();
    app.send(request).await;
    let spans = capture.take();
    let (server, storage) = split(&spans);
    assert_eq!(server.span_context.trace_id, trace);
    assert_eq!(server.parent_span_id, parent);
    assert_eq!(storage.len(), 3);
}

#[tokio::test]
async fn without_a_traceparent_a_new_trace_starts() {
    let app = TestApp::spawn().await;
    let capture = Capture::start();
    for traceparent in [
        None,
        Some("garbage"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ] {
        let mut builder = Request::get("/health");
        if let Some(t) = traceparent {
            builder = builder.header("traceparent", t);
        }
        app.send(builder.body(Body::empty()).unwrap()).await;
        let spans = capture.take();
        let (server, _) = split(&spans);
        assert_ne!(server.span_context.trace_id, "0".repeat(32));
        assert_eq!(server.parent_span_id, NO_SPAN, "{traceparent:?}");
    }
}

#[tokio::test]
async fn an_unsampled_traceparent_from_a_client_does_not_switch_the_spans_off() {
    // The sampled flag is the client's to send; the app stays
    // observable (same spans as without a parent) and keeps the trace id.
    let app = TestApp::spawn().await;
    let capture = Capture::start();
    let slug = app.create_ok("https://e.com", None).await;
    app.warm_tally().await;
    capture.take();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    // /health: three probes; a redirect: the link read and the click write.
    for (path, expected) in [("/health".to_owned(), 4), (format!("/{slug}"), 3)] {
        let request = Request::get(&path)
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-00"))
            .header(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            )
            .body(Body::empty())
            .unwrap();
        app.send(request).await;
        let spans = capture.take();
        assert_eq!(
            spans.len(),
            expected,
            "{path}: request span and storage spans"
        );
        let (server, storage) = split(&spans);
        assert_eq!(server.span_context.trace_id, trace, "{path}");
        assert!(
            server
                .span_context
                .trace_flags
                .contains(wit::TraceFlags::SAMPLED),
            "{path}"
        );
        assert!(
            storage.iter().all(|s| s
                .span_context
                .trace_flags
                .contains(wit::TraceFlags::SAMPLED)),
            "{path}"
        );
    }
    app.send(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(capture.take().len(), 4, "no parent: sampled");
}

#[tokio::test]
async fn unknown_methods_are_named_other_in_span_names_and_attributes() {
    let app = TestApp::spawn().await;
    let capture = Capture::start();
    for (method, path) in [
        ("FOOBAR", "/abc"),
        ("X-ANYTHING-1", "/api/links"),
        ("get", "/x/y/z"),
    ] {
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        app.send(request).await;
        let spans = capture.take();
        let (server, _) = split(&spans);
        assert!(
            server.name == "_OTHER" || server.name.starts_with("_OTHER "),
            "{method}: {}",
            server.name
        );
        assert!(!server.name.contains(method), "{method}");
        assert_eq!(
            attr_str(server, "http.request.method").as_deref(),
            Some("_OTHER"),
            "{method}"
        );
    }
}

#[tokio::test]
async fn a_failed_click_write_is_an_error_span_under_a_served_redirect_marked_unrecorded() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    let capture = Capture::start();
    app.sql.set_failing(true);
    let r = app.follow(&slug).await;
    app.sql.set_failing(false);
    assert_eq!(r.status, StatusCode::FOUND);
    let spans = capture.take();
    let (server, storage) = split(&spans);
    let insert = storage
        .iter()
        .find(|s| s.name == "sqlite.execute")
        .unwrap_or_else(|| panic!("the write has a span: {:?}", names(&spans)));
    assert!(
        matches!(insert.status, Status::Error(_)),
        "{:?}",
        insert.status
    );
    assert_eq!(attr_str(insert, "error.type").as_deref(), Some("io"));
    assert_eq!(
        attr_str(insert, "db.collection.name").as_deref(),
        Some("clicks")
    );
    // The redirect was served: the request succeeded, its click did not.
    assert!(!matches!(server.status, Status::Error(_)));
    assert_eq!(attr(server, "http.response.status_code"), Some("302"));
    assert_eq!(
        attr_str(server, "shortener.click.outcome").as_deref(),
        Some("unrecorded")
    );
    assert!(
        server
            .events
            .iter()
            .any(|e| e.name.contains("click not recorded")),
        "a warning event on the request span: {:?}",
        server.events
    );
    let tally = storage
        .iter()
        .find(|s| attr_str(s, "db.collection.name").as_deref() == Some("unrecorded_clicks"))
        .unwrap_or_else(|| panic!("the tally write has a span: {:?}", names(&spans)));
    assert_eq!(
        attr_str(tally, "db.namespace").as_deref(),
        Some("unrecorded")
    );
}

#[tokio::test]
async fn a_recorded_click_is_marked_recorded_on_the_request_span() {
    let app = TestApp::spawn().await;
    let slug = app.create_ok("https://e.com", None).await;
    let capture = Capture::start();
    assert_eq!(app.follow(&slug).await.status, StatusCode::FOUND);
    let spans = capture.take();
    let (server, _) = split(&spans);
    assert_eq!(
        attr_str(server, "shortener.click.outcome").as_deref(),
        Some("recorded")
    );
}

#[tokio::test]
async fn no_span_attribute_carries_a_slug_ip_user_agent_token_or_referrer() {
    let app = TestApp::with_vars(&[(shortener::config::names::TRUSTED_PROXY_HOPS, "1")]).await;
    let slug = app
        .create_ok("https://target.example/secret-path", Some("privateslug"))
        .await;
    let capture = Capture::start();
    app.visit(
        &slug,
        Visit::default()
            .referer("https://referrer.example/page")
            .forwarded_for("198.51.100.77"),
    )
    .await;
    app.api(Method::GET, "/api/links/privateslug/stats", None)
        .await;
    app.create(json!({"url": "https://body.example/x", "slug": "bodyslug"}))
        .await;
    let spans = capture.take();
    // The redirect (request, kv, click), the stats (request, kv, the
    // pending check and the fold, two rollup reads, the rules' clicks), the
    // create (request, claim, kv set, converge read).
    assert_eq!(spans.len(), 3 + 7 + 4);
    for s in &spans {
        assert!(!s.name.contains("privateslug"));
        for kv in &s.attributes {
            let v = kv.value.as_str();
            for secret in [
                "privateslug",
                "bodyslug",
                "198.51.100.77",
                "203.0.113.7",
                "Mozilla",
                TOKEN,
                "referrer.example",
                "target.example",
                "body.example",
            ] {
                assert!(!v.contains(secret), "{}={v} on {}", kv.key, s.name);
            }
        }
    }
}

#[tokio::test]
async fn every_storage_trait_method_emits_exactly_one_named_span() {
    let dir = tempfile::tempdir().unwrap();
    let kv = Traced::new(MemoryKv::default(), "default");
    let sql = Traced::new(
        SqliteStore::open(dir.path().join("t.db")).unwrap(),
        "default",
    );
    let capture = Capture::start();
    // One call of every method of both ports. A new method must be added to
    // `Traced` (or the crate does not compile) and here.
    kv.get("k").await.unwrap();
    kv.set("k", b"v").await.unwrap();
    kv.delete("k").await.unwrap();
    let select = Statement {
        sql: "SELECT 1",
        operation: "SELECT",
        table: "",
    };
    sql.execute(&select, vec![]).await.unwrap();
    let spans = capture.take();
    assert_eq!(
        names(&spans),
        ["kv.get", "kv.set", "kv.delete", "sqlite.execute"]
    );
    for s in &spans {
        assert_eq!(s.span_kind, SpanKind::Client);
        assert_eq!(s.parent_span_id, NO_SPAN);
    }
}
