//! The Spin shell: the only code that imports `spin_sdk`.
//!
//! It adapts, it does not decide: Spin's key-value store and SQLite
//! connections behind the core's ports, Spin variables into `Settings`,
//! Spin's own `spin-*` headers (never a client's: see [`crate::host`]) into a
//! [`ClientAddr`] extension, and each request into the core's [`Handler`].
//!
//! Per instance (Spin reuses an instance for ~128 requests, up to 16 at a
//! time), on first use: open the key-value store and **one** connection to
//! the click database, apply the busy timeout and `synchronous=NORMAL`,
//! check the schema (WAL, migrations: `crate::migrations::run`), and make
//! the core's [`Handler`] (which builds the router only for a request that
//! is no redirect). The instance's concurrent first requests wait on one
//! build. One connection per instance with
//! WAL + NORMAL is ~20x faster than a connection per request in the default
//! rollback mode (docs/spin-platform.md §6). The unrecorded-clicks tally,
//! which a redirect whose click is recorded never touches, is opened and set
//! up on its first statement. The handler is kept for the instance's later
//! requests only when the key-value store and the click database opened and
//! the schema is in place; otherwise the requests are served by this handler
//! (a failed store answers its errors: 503 from `/health`, degraded
//! redirects) and the next request opens the stores again, so a store that
//! comes back is used without a restart.

#[cfg(feature = "otel")]
pub mod otel;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use spin_sdk::http::{IntoResponse, Request};

use crate::config::{Settings, names};
use crate::storage::{KvStore, Rows, SqlStore, SqlValue, Statement, StoreError};
use crate::{ClientAddr, Handler};

/// Holds a value of a host binding type across `.await` in futures that axum
/// requires to be `Send`.
///
/// SAFETY: a wasm32-wasip2 component has exactly one thread; nothing is ever
/// sent to or shared with another thread.
struct Local<T>(T);
unsafe impl<T> Send for Local<T> {}
unsafe impl<T> Sync for Local<T> {}

/// A future asserted `Send` for the same reason as [`Local`].
struct AssertSend<F>(F);
unsafe impl<F> Send for AssertSend<F> {}
impl<F: Future> Future for AssertSend<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field.
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}

/// Spin's key-value store, every call bounded by `kv_timeout_ms`: with Redis
/// down, Spin's Redis client waits in its reconnect back-off for minutes
/// (observed: 473 s) before it fails a call.
struct SpinKv {
    store: Local<spin_sdk::key_value::Store>,
    timeout: Duration,
}

impl SpinKv {
    /// Runs `call`, failing it with a `timeout` error when the host has not
    /// answered within the bound.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, spin_sdk::key_value::Error>>,
    ) -> Result<T, StoreError> {
        if crate::ablation::skip(crate::ablation::Part::KvTimeout) {
            return call.await.map_err(kv_error);
        }
        kv_within(self.timeout, call).await
    }
}

/// A key-value host call bounded by `timeout` (a `timeout` error past it).
async fn kv_within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, spin_sdk::key_value::Error>>,
) -> Result<T, StoreError> {
    match within(timeout, call).await {
        Some(result) => result.map_err(kv_error),
        None => Err(kv_timed_out(timeout)),
    }
}

fn kv_timed_out(timeout: Duration) -> StoreError {
    StoreError::new(
        StoreError::TIMEOUT,
        format!(
            "the key-value store did not answer within {} ms",
            timeout.as_millis()
        ),
    )
}

/// `call`'s output, or `None` when the host has not answered within
/// `timeout`. Both futures are host futures, so the wait never rests on a
/// guest task alone; an abandoned call is dropped (cancelled).
async fn within<T>(timeout: Duration, call: impl Future<Output = T>) -> Option<T> {
    let call = std::pin::pin!(call);
    let sleep = std::pin::pin!(spin_sdk::time::sleep(timeout));
    match AssertSend(futures::future::select(call, sleep)).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(((), _)) => None,
    }
}

fn kv_error(e: spin_sdk::key_value::Error) -> StoreError {
    use spin_sdk::key_value::Error as E;
    let kind = match &e {
        E::StoreTableFull => "store_table_full",
        E::NoSuchStore => "no_such_store",
        E::AccessDenied => "access_denied",
        E::Other(_) => "other",
    };
    StoreError::new(kind, format!("{e:?}"))
}

#[async_trait]
impl KvStore for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bounded(self.store.0.get(key)).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bounded(self.store.0.set(key, value)).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bounded(self.store.0.delete(key)).await
    }
}

/// One Spin SQLite connection, shared by the instance's requests.
///
/// Statements go through the interface's synchronous `execute`, not the
/// `execute-async` that spin-sdk's `Connection::execute` wraps: the async
/// one hands back a row stream and a completion future, and that machinery
/// cost ~170 µs of Spin CPU per statement on the redirect path (c=32, same
/// run; docs/spin-platform.md §6). The synchronous call suspends this
/// instance's other requests until the host answers, which is bounded by
/// the busy timeout and leaves other instances running.
struct SpinSql(Local<spin_sdk::sqlite::wit::sqlite::Connection>);

/// A click database reached over the network (with `click_outbox`: sqld
/// through Spin's `libsql` type), shared by the instance's requests.
///
/// It takes the async call: a remote statement waits a round trip and
/// sqld's write queue, and the synchronous call would hold the instance's
/// other redirects for all of it. Each statement is bounded
/// (`click_db_timeout_ms`): a server that accepts and never answers must
/// not hold a redirect that ships, nor a read. An abandoned call is
/// cancelled (a batch it may still have committed is dropped by its unique
/// origin when it is sent again), and the connection is replaced, since the
/// abandoned one may wait on that server's answer forever.
struct RemoteSql {
    label: &'static str,
    conn: std::sync::Mutex<Arc<Local<spin_sdk::sqlite::wit::sqlite::Connection>>>,
    bound: Duration,
}

impl RemoteSql {
    fn current(&self) -> Arc<Local<spin_sdk::sqlite::wit::sqlite::Connection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A new connection in place of `stale` (unless another request
    /// replaced it already); a failed open keeps the old one.
    async fn replace(&self, stale: &Arc<Local<spin_sdk::sqlite::wit::sqlite::Connection>>) {
        if let Ok(fresh) = connect(self.label).await {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&conn, stale) {
                *conn = Arc::new(fresh.0);
            }
        }
    }
}

#[async_trait]
impl SqlStore for RemoteSql {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        let params: Vec<_> = params.into_iter().map(to_spin).collect();
        let conn = self.current();
        let call = async {
            let call = conn.0.execute_async(statement.sql.to_owned(), params);
            let (_columns, rows, result) = AssertSend(call).await?;
            let rows = AssertSend(rows.collect()).await;
            AssertSend(std::future::IntoFuture::into_future(result)).await?;
            Ok(rows)
        };
        match within(self.bound, call).await {
            Some(result) => Ok(to_rows(result.map_err(sql_error)?)),
            None => {
                self.replace(&conn).await;
                Err(StoreError::new(
                    StoreError::TIMEOUT,
                    format!(
                        "the click database did not answer within {} ms",
                        self.bound.as_millis()
                    ),
                ))
            }
        }
    }
}

fn to_rows(rows: Vec<spin_sdk::sqlite::RowResult>) -> Rows {
    Rows {
        rows: rows
            .into_iter()
            .map(|r| r.values.into_iter().map(from_spin).collect())
            .collect(),
    }
}

fn sql_error(e: spin_sdk::sqlite::Error) -> StoreError {
    use spin_sdk::sqlite::Error as E;
    let kind = match &e {
        E::NoSuchDatabase => "no_such_database",
        E::AccessDenied => "access_denied",
        E::InvalidConnection => "invalid_connection",
        E::DatabaseFull => "database_full",
        E::Io(_) => "io",
    };
    StoreError::new(kind, format!("{e:?}"))
}

fn to_spin(v: SqlValue) -> spin_sdk::sqlite::Value {
    use spin_sdk::sqlite::Value;
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(f) => Value::Real(f),
        SqlValue::Text(s) => Value::Text(s),
        SqlValue::Blob(b) => Value::Blob(b),
    }
}

fn from_spin(v: spin_sdk::sqlite::Value) -> SqlValue {
    use spin_sdk::sqlite::Value;
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

#[async_trait]
impl SqlStore for SpinSql {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        let params: Vec<_> = params.into_iter().map(to_spin).collect();
        let result = self
            .0
            .0
            .execute(statement.sql, &params)
            .map_err(sql_error)?;
        Ok(to_rows(result.rows))
    }
}

/// A store that could not be opened: every call fails with the reason, so
/// `/health` answers 503 naming it. Such a router is never kept, so the next
/// request opens the store again.
struct Unavailable(StoreError);

#[async_trait]
impl KvStore for Unavailable {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(self.0.clone())
    }
    async fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Err(self.0.clone())
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(self.0.clone())
    }
}

#[async_trait]
impl SqlStore for Unavailable {
    async fn execute(&self, _: &Statement, _: Vec<SqlValue>) -> Result<Rows, StoreError> {
        Err(self.0.clone())
    }
}

async fn read_settings() -> Result<Settings, crate::config::ConfigError> {
    let _profiled = crate::profile::stage(crate::profile::Stage::Settings);
    if crate::ablation::skip(crate::ablation::Part::Settings) {
        return Settings::from_lookup(|k| {
            let fixed = [
                (
                    names::ADMIN_TOKEN,
                    "bench-admin-token-0123456789abcdef0123456789",
                ),
                (names::VISITOR_SALT, "bench-visitor-salt-0123456789abcdef"),
                (names::PUBLIC_BASE_URL, "https://sho.rt"),
            ];
            fixed
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        });
    }
    let mut values = Vec::new();
    for name in names::ALL {
        // Undefined or not granted to this component: unset.
        if let Ok(v) = AssertSend(spin_sdk::variables::get(name)).await {
            values.push((name, v));
        }
    }
    Settings::from_lookup(|k| values.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
}

/// Opens the default key-value store, every call bounded by `timeout`;
/// `false` (and a store failing with the reason) when it did not open.
async fn open_kv(timeout: Duration) -> (Arc<dyn KvStore>, bool) {
    match kv_within(timeout, spin_sdk::key_value::Store::open_default()).await {
        Ok(store) => (
            Arc::new(SpinKv {
                store: Local(store),
                timeout,
            }),
            true,
        ),
        Err(error) => {
            eprintln!("shortener: key-value store did not open (will retry): {error}");
            (Arc::new(Unavailable(error)), false)
        }
    }
}

/// Opens the SQLite database `label` (`remote`: a networked one, each
/// statement bounded by it); `false` (and a store failing with the reason)
/// when it did not open.
async fn open_sql(label: &'static str, remote: Option<Duration>) -> (Arc<dyn SqlStore>, bool) {
    match connect(label).await {
        Ok(conn) => match remote {
            None => (Arc::new(conn), true),
            Some(bound) => (
                Arc::new(RemoteSql {
                    label,
                    conn: std::sync::Mutex::new(Arc::new(conn.0)),
                    bound,
                }),
                true,
            ),
        },
        Err(error) => (Arc::new(Unavailable(error)), false),
    }
}

async fn connect(label: &str) -> Result<SpinSql, StoreError> {
    use spin_sdk::sqlite::wit::sqlite::Connection;
    match AssertSend(Connection::open_async(label.to_owned())).await {
        Ok(conn) => Ok(SpinSql(Local(conn))),
        Err(e) => {
            eprintln!("shortener: SQLite `{label}` did not open (will retry): {e:?}");
            Err(sql_error(e))
        }
    }
}

/// A SQLite database opened on its first statement rather than by every
/// instance at start (the unrecorded-clicks tally: see
/// [`crate::unrecorded::Tally`]). A failed open fails that statement and is
/// tried again by the next; concurrent first statements each open, and the
/// first connection kept wins (no statement waits on another).
struct OpenOnUse {
    label: &'static str,
    conn: OnceLock<SpinSql>,
}

#[async_trait]
impl SqlStore for OpenOnUse {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        let conn = match self.conn.get() {
            Some(conn) => conn,
            None => {
                let opened = connect(self.label).await?;
                self.conn.get_or_init(|| opened)
            }
        };
        conn.execute(statement, params).await
    }
}

/// Whether this instance is the `redirect` component's: spin.toml gives
/// that component the literal variable `component = "redirect"`.
async fn redirect_component() -> bool {
    AssertSend(spin_sdk::variables::get("component"))
        .await
        .is_ok_and(|v| v == "redirect")
}

/// Builds the instance's handler; `true` when it may be kept for the
/// instance's later requests (the key-value store and the click database
/// opened, the schema is in place).
async fn build() -> (Handler, bool) {
    let settings = match read_settings().await {
        Ok(s) => s,
        Err(e) => {
            // A clear error, once per instance, in Spin's log and every answer.
            eprintln!("shortener: refusing to serve: {e}");
            return (Handler::misconfigured(e), true);
        }
    };
    #[cfg(feature = "otel")]
    otel::sample(settings.trace_sample_ratio);
    let (kv, kv_opened) = open_kv(Duration::from_millis(u64::from(settings.kv_timeout_ms))).await;
    let remote = settings
        .click_outbox
        .then(|| Duration::from_millis(u64::from(settings.click_db_timeout_ms)));
    let (sql, sql_opened) = open_sql(crate::STORE_LABEL, remote).await;
    let unrecorded = OpenOnUse {
        label: crate::unrecorded::TALLY_LABEL,
        conn: OnceLock::new(),
    };
    let app = if crate::ablation::skip(crate::ablation::Part::Unrecorded) {
        let never = Unavailable(StoreError::new("ablated", "the tally is removed"));
        crate::build_app(kv, sql, never, settings, crate::system_clock())
    } else {
        crate::build_app(kv, sql, unrecorded, settings, crate::system_clock())
    };
    // With an outbox the redirect component needs no click database until
    // it ships: it migrates then (`crate::outbox::ensure_schema`), so that
    // a new instance's first redirects wait on no remote round trip.
    let lazy_schema = app.settings.click_outbox && redirect_component().await;
    if !lazy_schema {
        let _profiled = crate::profile::stage(crate::profile::Stage::Migrate);
        if let Err(e) = crate::migrate(&app).await {
            eprintln!("shortener: schema migration failed (will retry): {e}");
        }
    }
    // With an outbox, redirects do not need the click database: an instance
    // that could not reach it is kept, and migrates before it first ships
    // or reads (`crate::outbox::ensure_schema`).
    let keep = kv_opened && sql_opened && (app.schema_ready() || app.settings.click_outbox);
    (Handler::new(app), keep)
}

/// The instance's handler, once built and kept.
static HANDLER: OnceLock<Handler> = OnceLock::new();

thread_local! {
    /// The build under way: the instance's concurrent first requests wait
    /// for it rather than each building its own (Spin starts an instance
    /// with up to 16 requests at once). Emptied when it ends: a handler that
    /// may not be kept (a store did not open) serves the requests that
    /// waited for it, and the next request builds again.
    static BUILDING: std::cell::RefCell<Option<Building>> = const { std::cell::RefCell::new(None) };
}

/// What the waiting requests receive from the one that builds.
///
/// The build itself runs in its builder's task only. wit-bindgen keeps each
/// task's pending host calls in that task's own table, so a host future
/// polled from two tasks (as a `Shared` build would be, by whichever waiter
/// polls it) leaves a stale entry behind and later trips the runtime's
/// assertion (`waitable.rs`, a trap) when the slot is reused: seen under
/// load on real Spin. The waiters poll only this channel, which is plain
/// Rust; waking them from the builder's task needs wit-bindgen's
/// `inter-task-wakeup` (enabled for this). A builder that is dropped (its
/// client went away) drops its sender, and a waiter builds instead.
type Building = futures::future::Shared<futures::channel::oneshot::Receiver<(Handler, bool)>>;

async fn handler() -> Handler {
    use futures::FutureExt as _;
    loop {
        if let Some(handler) = HANDLER.get() {
            return handler.clone();
        }
        let _profiled = crate::profile::stage(crate::profile::Stage::Build);
        let under_way = BUILDING.with(|b| b.borrow().clone());
        let (handler, keep) = match under_way {
            Some(building) => match building.clone().await {
                Ok(built) => built,
                Err(futures::channel::oneshot::Canceled) => {
                    BUILDING.with(|b| {
                        let mut b = b.borrow_mut();
                        if b.as_ref().is_some_and(|now| now.ptr_eq(&building)) {
                            *b = None;
                        }
                    });
                    continue;
                }
            },
            None => {
                let (built_tx, built_rx) = futures::channel::oneshot::channel();
                BUILDING.with(|b| *b.borrow_mut() = Some(built_rx.shared()));
                let built = build().await;
                BUILDING.with(|b| *b.borrow_mut() = None);
                let _ = built_tx.send(built.clone());
                built
            }
        };
        if keep {
            return HANDLER.get_or_init(|| handler).clone();
        }
        return handler;
    }
}

#[spin_sdk::http_service]
async fn handle(request: Request) -> impl IntoResponse {
    use crate::profile::{self, Stage};
    let response = {
        let _profiled = profile::stage(Stage::Shell);
        #[cfg(feature = "otel")]
        otel::init();
        let handler = handler().await;
        let (mut parts, body) = request.into_parts();
        if !crate::ablation::skip(crate::ablation::Part::HostFilter) {
            let _profiled = profile::stage(Stage::HostFilter);
            // Spin appends its `spin-*` headers after the client's: keep only Spin's.
            crate::host::trust_host_headers(&mut parts.headers);
            if let Some(peer) = crate::host::client_addr(&parts.headers) {
                parts.extensions.insert(ClientAddr(peer));
            }
        }
        let request = http::Request::from_parts(parts, axum::body::Body::new(body));
        handler.handle(request).await
    };
    crate::profile::request_done();
    response
}
