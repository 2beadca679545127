//! `Harness`: the whole app over an in-memory key-value store and a real
//! SQLite file, driven synchronously through the router (one current-thread
//! Tokio runtime), with a settable clock. One harness serves every case of a
//! property; cases use fresh slugs so they do not see each other's rows.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use shortener::Handler;
use shortener::config::names;
use shortener::links::SlugSource;
use shortener::native::{MemoryKv, SqliteStore, TestHost};
use shortener::storage::{SqlValue, Statement};
use shortener::{App, ClientAddr};
use time::OffsetDateTime;
use time::macros::datetime;
use tower::ServiceExt;

pub const TOKEN: &str = "property-admin-token-0123456789abcdef";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
pub const GOOGLEBOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    #[allow(dead_code)] // for properties on headers
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Harness {
    router: Handler,
    rt: tokio::runtime::Runtime,
    now: Arc<Mutex<OffsetDateTime>>,
    pub kv: MemoryKv,
    pub sql: Arc<SqliteStore>,
    next: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The app with a token, a salt, `public_base_url = https://sho.rt` and
    /// the given overrides.
    pub fn new(overrides: &[(&str, &str)]) -> Self {
        Self::build(overrides, None)
    }

    /// As [`Harness::new`], drawing random slugs from `slugs`.
    pub fn with_slugs(overrides: &[(&str, &str)], slugs: SlugSource) -> Self {
        Self::build(overrides, Some(slugs))
    }

    fn build(overrides: &[(&str, &str)], slugs: Option<SlugSource>) -> Self {
        let mut vars = vec![
            (names::ADMIN_TOKEN, TOKEN),
            (names::PUBLIC_BASE_URL, "https://sho.rt"),
            (
                names::VISITOR_SALT,
                "property-visitor-salt-0123456789abcdef",
            ),
        ];
        vars.extend_from_slice(overrides);
        // SQLite on tmpfs where there is one: the properties write hundreds
        // of thousands of clicks, and a disk's fsyncs would dominate.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let host = rt
            .block_on(TestHost::start(
                dir.path(),
                &vars,
                datetime!(2030-01-15 12:00 UTC),
            ))
            .expect("valid settings, migrations run");
        let app = match slugs {
            Some(slugs) => App {
                slugs,
                ..host.app.clone()
            },
            None => host.app.clone(),
        };
        Self {
            router: Handler::new(app),
            rt,
            now: host.now,
            kv: host.kv,
            sql: host.sql,
            next: AtomicU64::new(0),
            _dir: dir,
        }
    }

    /// A slug no earlier case of this harness used.
    pub fn fresh_slug(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn set_now(&self, t: OffsetDateTime) {
        *self.now.lock().unwrap() = t;
    }

    pub fn send(&self, request: Request<Body>) -> Reply {
        self.rt.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Reply {
                status,
                headers,
                body,
            }
        })
    }

    /// An authorised API call; `body` is sent as `application/json`.
    pub fn api(&self, method: Method, path: &str, body: Option<&[u8]>) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let body = Body::from(body.unwrap_or_default().to_vec());
        self.send(builder.body(body).unwrap())
    }

    /// `POST /api/links` with this JSON.
    pub fn create(&self, body: &Value) -> Reply {
        self.api(
            Method::POST,
            "/api/links",
            Some(body.to_string().as_bytes()),
        )
    }

    /// One visit of `/{slug}` from `peer` with these headers.
    pub fn visit(&self, slug: &str, peer: IpAddr, headers: &[(&str, &[u8])]) -> Reply {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(format!("/{slug}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(Body::empty()).unwrap();
        request.extensions_mut().insert(ClientAddr(peer));
        self.send(request)
    }

    /// Raw rows, for the oracles.
    pub fn rows(&self, sql: &'static str, params: Vec<SqlValue>) -> Vec<Vec<SqlValue>> {
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

    /// Links in the SQLite registry and link records in key-value: equal
    /// whenever no request is in flight (nothing half-created).
    pub fn link_counts(&self) -> (usize, usize) {
        let registry = self.rows("SELECT count(*) FROM links", vec![])[0][0]
            .as_i64()
            .unwrap() as usize;
        let records = self
            .kv
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("link:"))
            .count();
        (registry, records)
    }
}

/// Whether `body` is exactly the error schema of the API:
/// `{"error": {"code": "<snake_case>", "message": "<non-empty>"}}`.
pub fn is_error_body(body: &Value) -> bool {
    let Some(outer) = body.as_object() else {
        return false;
    };
    let Some(inner) = outer.get("error").and_then(Value::as_object) else {
        return false;
    };
    let code_ok = inner
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let message_ok = inner
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| !m.trim().is_empty());
    outer.len() == 1 && inner.len() == 2 && code_ok && message_ok
}
