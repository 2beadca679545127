//! `TestApp`: the whole app over an in-memory key-value store and a real
//! SQLite file, with typed request helpers.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use shortener::config::names;
use shortener::native::{MemoryKv, SqliteStore, TestHost};
use shortener::storage::{SqlValue, Statement};
use shortener::{ClientAddr, Handler};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const BASE: &str = "https://sho.rt";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One visit of a short link; build it from `Visit::default()` (a human
/// Chrome from 203.0.113.7 with no referrer) with the setters below.
#[derive(Debug, Clone)]
pub struct Visit<'a> {
    pub method: Method,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub peer: &'a str,
    pub forwarded_for: Option<&'a str>,
    /// Header lines sent as raw bytes (not necessarily text), after the others.
    pub raw_headers: Vec<(&'a str, &'a [u8])>,
}

impl Default for Visit<'_> {
    fn default() -> Self {
        Self {
            method: Method::GET,
            user_agent: Some(CHROME),
            referer: None,
            peer: "203.0.113.7",
            forwarded_for: None,
            raw_headers: Vec::new(),
        }
    }
}

impl<'a> Visit<'a> {
    pub fn method(self, method: Method) -> Self {
        Self { method, ..self }
    }
    pub fn user_agent(self, ua: &'a str) -> Self {
        Self {
            user_agent: Some(ua),
            ..self
        }
    }
    pub fn no_user_agent(self) -> Self {
        Self {
            user_agent: None,
            ..self
        }
    }
    pub fn referer(self, referer: &'a str) -> Self {
        Self {
            referer: Some(referer),
            ..self
        }
    }
    pub fn peer(self, peer: &'a str) -> Self {
        Self { peer, ..self }
    }
    /// Sends `name: value` with `value`'s bytes as they are (e.g. non-UTF-8);
    /// pair it with `no_user_agent` to send a raw `User-Agent` alone.
    pub fn raw_header(mut self, name: &'a str, value: &'a [u8]) -> Self {
        self.raw_headers.push((name, value));
        self
    }
    pub fn forwarded_for(self, xff: &'a str) -> Self {
        Self {
            forwarded_for: Some(xff),
            ..self
        }
    }
}

pub struct TestApp {
    /// The app as each Spin instance serves it (the redirect's hot path,
    /// then the router).
    pub router: Handler,
    /// The app behind it.
    pub app: shortener::App,
    /// Slugs the next random-slug draws return, in order, before random ones.
    slug_queue: Arc<Mutex<Vec<String>>>,
    pub kv: MemoryKv,
    pub sql: Arc<SqliteStore>,
    /// The unrecorded-clicks tally (the second database).
    pub unrecorded: Arc<SqliteStore>,
    pub now: Arc<Mutex<OffsetDateTime>>,
    pub db_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The app with a configured token, salt and base URL.
    pub async fn spawn() -> Self {
        Self::with_vars(&[]).await
    }

    /// The app with extra (or overriding) Spin variables.
    pub async fn with_vars(overrides: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            (names::ADMIN_TOKEN, TOKEN),
            (names::PUBLIC_BASE_URL, BASE),
            (names::VISITOR_SALT, "test-visitor-salt-0123456789abcdef"),
        ];
        vars.extend_from_slice(overrides);
        let dir = tempfile::tempdir().unwrap();
        let host = TestHost::start(dir.path(), &vars, datetime!(2030-01-15 12:00 UTC))
            .await
            .expect("valid settings, migrations run");
        let app = host.app.clone();
        let slug_queue: Arc<Mutex<Vec<String>>> = Arc::default();
        let queued = slug_queue.clone();
        let random = app.slugs.clone();
        let app = shortener::App {
            // Queued candidates first (to force collisions), then random ones.
            slugs: Arc::new(move |len| queued.lock().unwrap().pop().unwrap_or_else(|| random(len))),
            ..app
        };
        Self {
            router: Handler::new(app.clone()),
            app,
            slug_queue,
            kv: host.kv,
            sql: host.sql,
            unrecorded: host.unrecorded,
            now: host.now,
            db_path: host.db_path,
            _dir: dir,
        }
    }

    /// Runs `/health` once, so that the tally database has set itself up
    /// (its first statement applies pragmas and schema, as in each Spin
    /// instance) and later requests show only their own storage spans.
    pub async fn warm_tally(&self) {
        let r = self.api(Method::GET, "/health", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }

    /// Makes the next random-slug draws return `slugs`, in order.
    pub fn queue_random_slugs(&self, slugs: &[&str]) {
        let mut queue = self.slug_queue.lock().unwrap();
        queue.clear();
        queue.extend(slugs.iter().rev().map(|s| (*s).to_owned()));
    }

    pub fn set_now(&self, t: OffsetDateTime) {
        *self.now.lock().unwrap() = t;
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// An authorised API call with an optional JSON body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.api_as(TOKEN, method, path, body).await
    }

    /// An API call with `Authorization: Bearer <bearer>` (an API key or a
    /// token) and an optional JSON body.
    pub async fn api_as(
        &self,
        bearer: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {bearer}"));
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// Makes an API key with `role` (through the admin token) and returns it.
    pub async fn key(&self, role: &str) -> String {
        let r = self
            .api(
                Method::POST,
                "/api/keys",
                Some(json!({"name": format!("{role} key"), "role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["key"].as_str().unwrap().to_owned()
    }

    pub async fn create(&self, body: Value) -> TestResponse {
        self.api(Method::POST, "/api/links", Some(body)).await
    }

    /// Creates a link and returns its slug.
    pub async fn create_ok(&self, url: &str, slug: Option<&str>) -> String {
        let mut body = json!({"url": url});
        if let Some(s) = slug {
            body["slug"] = json!(s);
        }
        let r = self.create(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["slug"].as_str().unwrap().to_owned()
    }

    pub async fn visit(&self, slug: &str, visit: Visit<'_>) -> TestResponse {
        let mut builder = Request::builder()
            .method(visit.method)
            .uri(format!("/{slug}"));
        if let Some(ua) = visit.user_agent {
            builder = builder.header("user-agent", ua);
        }
        if let Some(r) = visit.referer {
            builder = builder.header("referer", r);
        }
        if let Some(x) = visit.forwarded_for {
            builder = builder.header("x-forwarded-for", x);
        }
        for (name, value) in &visit.raw_headers {
            let value = axum::http::HeaderValue::from_bytes(value).expect("a header's bytes");
            builder = builder.header(*name, value);
        }
        let mut request = builder.body(Body::empty()).unwrap();
        let peer: IpAddr = visit.peer.parse().unwrap();
        request.extensions_mut().insert(ClientAddr(peer));
        self.send(request).await
    }

    /// A plain GET from a human browser.
    pub async fn follow(&self, slug: &str) -> TestResponse {
        self.visit(slug, Visit::default()).await
    }

    pub async fn stats(&self, slug: &str, query: &str) -> TestResponse {
        self.api(
            Method::GET,
            &format!("/api/links/{slug}/stats{query}"),
            None,
        )
        .await
    }

    /// Runs raw SQL against the database (for assertions).
    pub fn query(&self, sql: &'static str, params: Vec<SqlValue>) -> Vec<Vec<SqlValue>> {
        self.sql
            .execute_blocking(
                &Statement {
                    sql,
                    operation: "SELECT",
                    table: "",
                },
                params,
            )
            .unwrap()
            .rows
    }

    /// Raw click rows of a slug in SQLite.
    pub fn clicks_of(&self, slug: &str) -> i64 {
        self.count(
            "SELECT count(*) FROM clicks WHERE slug = ?1",
            vec![slug.into()],
        )
    }

    /// `GET /api/links/{slug}` (must be 200), as JSON.
    pub async fn link(&self, slug: &str) -> Value {
        let r = self
            .api(Method::GET, &format!("/api/links/{slug}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    /// Folds every click recorded so far into the rollups, as a read does
    /// before it reads them (for assertions on the rollup tables).
    pub async fn fold(&self) {
        shortener::rollups::fold(&self.sql).await.unwrap();
    }

    pub fn count(&self, sql: &'static str, params: Vec<SqlValue>) -> i64 {
        self.query(sql, params)[0][0].as_i64().unwrap()
    }

    /// Clicks waiting in the replica's outbox (the local database).
    pub fn outboxed(&self) -> i64 {
        let statement = Statement {
            sql: "SELECT count(*) FROM outbox",
            operation: "SELECT",
            table: "outbox",
        };
        self.unrecorded
            .execute_blocking(&statement, vec![])
            .unwrap()
            .rows[0][0]
            .as_i64()
            .unwrap()
    }
}

/// The slugs of a `GET /api/links` page, in order.
pub fn slugs_of(page: &Value) -> Vec<String> {
    page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["slug"].as_str().unwrap().to_owned())
        .collect()
}
