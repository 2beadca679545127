//! The floor under any redirect that records its clicks: the tutorial's
//! redirect (one key-value get, 302) plus one SQLite INSERT of the click
//! before answering, on one connection per instance in WAL mode with
//! `synchronous=NORMAL`, through the synchronous `execute` (cheaper than
//! `execute-async`). No classification, no visitor hash, no rollups, no
//! spans. `PUT /{slug}` with the URL as the body seeds a link (the benchmark
//! does it once, before it measures); `GET /` answers the number of clicks.
//!
//! With the `traced` feature it is the traced floor: the same redirect plus
//! the three spans a traced redirect must have, sent over wasi:otel for
//! Spin to export (`spin up --experimental-wasi-otel`): a server span for the
//! request, a client span around the key-value get and one around the
//! INSERT, with the OpenTelemetry attributes the product's spans carry
//! (`traced`).

#[cfg(feature = "traced")]
mod traced;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::key_value::Store;
use spin_sdk::sqlite::wit::sqlite::{Connection, Value};

const SETUP: [&str; 3] = [
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "CREATE TABLE IF NOT EXISTS clicks (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, at INTEGER NOT NULL, user_agent TEXT)",
];

thread_local! {
    // One connection per instance (a component instance has one thread).
    static DB: RefCell<Option<Rc<Connection>>> = const { RefCell::new(None) };
}

async fn db() -> Option<Rc<Connection>> {
    if let Some(db) = DB.with(|db| db.borrow().clone()) {
        return Some(db);
    }
    let conn = Connection::open_async("default".to_owned()).await.ok()?;
    for statement in SETUP {
        conn.execute(statement, &[]).ok()?;
    }
    let conn = Rc::new(conn);
    DB.with(|db| *db.borrow_mut() = Some(conn.clone()));
    Some(conn)
}

/// The response. The explicit `content-length` matters: without it
/// spin-sdk streams the body chunked, and the final chunk, written apart,
/// waits out the client's delayed ACK (a ~40 ms p99 under load).
fn answer(status: u16, location: Option<&str>, body: String) -> http::Response<String> {
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-length", body.len());
    if let Some(location) = location {
        builder = builder.header("location", location);
    }
    builder.body(body).unwrap()
}

const INSERT: &str = "INSERT INTO clicks (slug, at, user_agent) VALUES (?1, ?2, ?3)";

/// The guest's time in the get, the INSERT and the rest, summed per
/// instance and printed every 16 requests in the format of the main
/// crate's `src/profile.rs` (`profile` feature; `benches/spin/run.sh
/// --profile`, valid at `oha -c 1`).
#[cfg(feature = "profile")]
mod profile {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local! {
        /// Requests, then ns of: the rest, the get, the INSERT.
        static TOTALS: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
    }
    /// Adds the time since `t` to stage `i` (2: the get, 3: the INSERT).
    pub fn add(i: usize, t: Instant) {
        let mut totals = TOTALS.get();
        totals[i] += t.elapsed().as_nanos() as u64;
        TOTALS.set(totals);
    }
    pub fn done(started: Instant) {
        let mut t = TOTALS.get();
        let whole = started.elapsed().as_nanos() as u64;
        t[0] += 1;
        t[1] += whole.saturating_sub(t[2] + t[3]);
        if t[0].is_multiple_of(16) {
            eprintln!(
                "shortener-profile n=16 shell={} kv_get={} click_write={}",
                t[1], t[2], t[3]
            );
            t = [t[0], 0, 0, 0];
        }
        TOTALS.set(t);
    }
}

#[spin_sdk::http_service]
async fn handle(request: Request) -> impl IntoResponse {
    #[cfg(feature = "profile")]
    let started = std::time::Instant::now();
    let response = redirect(request).await;
    #[cfg(feature = "profile")]
    profile::done(started);
    response
}

async fn redirect(request: Request) -> http::Response<String> {
    let slug = request.uri().path().trim_start_matches('/').to_owned();
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Ok(store), Some(db)) = (Store::open_default().await, db().await) else {
        return answer(500, None, String::new());
    };
    if request.method() == http::Method::PUT {
        let Ok(url) = request.into_body().bytes().await else {
            return answer(400, None, String::new());
        };
        return match store.set(&slug, &url).await {
            Ok(()) => answer(201, None, String::new()),
            Err(_) => answer(500, None, String::new()),
        };
    }
    if slug.is_empty() {
        return match db.execute("SELECT count(*) FROM clicks", &[]) {
            Ok(result) => match result.rows.first().and_then(|r| r.values.first()) {
                Some(Value::Integer(n)) => answer(200, None, n.to_string()),
                _ => answer(500, None, String::new()),
            },
            Err(_) => answer(500, None, String::new()),
        };
    }
    #[cfg(feature = "traced")]
    let request_span = traced::Span::server("GET /{slug}", &["GET", "/{slug}"]);
    #[cfg(feature = "traced")]
    let kv_span = traced::Span::kv_get(&request_span);
    #[cfg(feature = "profile")]
    let t = std::time::Instant::now();
    let got = store.get(&slug).await;
    #[cfg(feature = "profile")]
    profile::add(2, t);
    #[cfg(feature = "traced")]
    kv_span.end(&[]);
    let url = match got {
        Ok(Some(url)) => url,
        Ok(None) => return answer(404, None, String::new()),
        Err(_) => return answer(500, None, String::new()),
    };
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let params = [
        Value::Text(slug),
        Value::Integer(at),
        user_agent.map_or(Value::Null, Value::Text),
    ];
    #[cfg(feature = "traced")]
    let sql_span = traced::Span::sqlite_insert(&request_span, INSERT);
    #[cfg(feature = "profile")]
    let t = std::time::Instant::now();
    let inserted = db.execute(INSERT, &params);
    #[cfg(feature = "profile")]
    profile::add(3, t);
    #[cfg(feature = "traced")]
    sql_span.end(&[]);
    let response = match inserted {
        Ok(_) => answer(302, std::str::from_utf8(&url).ok(), String::new()),
        Err(_) => answer(500, None, String::new()),
    };
    #[cfg(feature = "traced")]
    request_span.end(&[(
        "http.response.status_code",
        response.status().as_u16().to_string(),
    )]);
    response
}
