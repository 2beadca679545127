//! shortener: a self-hosted, instrumented URL shortener for Spin.
//!
//! # Layout
//!
//! The crate is a host-agnostic core and a thin Spin shell. Only
//! [`shell`] (compiled for `wasm32` only) imports `spin_sdk`; everything else
//! runs natively under `cargo test` against an in-memory key-value store and
//! a real SQLite ([`native`]).
//!
//! * [`links`]: `Slug`, `TargetUrl`, `Link`, and link storage (records in
//!   key-value, the slug registry in SQLite).
//! * [`clicks`]: who followed a link (browser, OS, bot, referrer, client IP,
//!   keyed visitor hash) and the one-statement click write.
//! * [`analytics`]: per-link totals and stats from the daily rollups.
//! * [`unrecorded`]: clicks served but not recorded (the click store
//!   failed): their tally in a second database, the busy timeout, the
//!   `/health` write probe.
//! * [`host`]: what Spin says about a request (`spin-*` headers), told apart
//!   from what the client says.
//! * [`metrics`]: the `/metrics` exposition, read from SQLite.
//! * [`qr`]: QR codes of short URLs (SVG and PNG).
//! * [`console`]: the web console under `/console/`, its assets compiled in.
//! * [`gzipped`]: files compiled in gzipped (by `build.rs`) and served
//!   compressed or inflated, as the client accepts.
//! * [`migrations`]: the versioned SQLite schema and its triggers.
//! * [`storage`]: the two ports (`KvStore`, `SqlStore`) and the `Traced`
//!   wrapper that puts every storage call in a client span.
//! * [`telemetry`]: attribute names, the request span, trace context.
//! * [`config`]: typed `Settings` from Spin variables.
//! * [`error`]: `AppError`, mapped to HTTP in one place.
//! * [`http`]: the axum router: every route, extractor and handler.
//! * [`openapi`]: the OpenAPI description of the API (utoipa), served at
//!   `/api/openapi.json`.
//! * [`native`] (not on wasm32): the test host's stores.
//! * [`shell`] (wasm32 only): the Spin component's entry point and adapters.

pub mod analytics;
pub mod clicks;
pub mod config;
pub mod console;
pub mod error;
pub mod gzipped;
pub mod host;
pub mod http;
pub mod links;
pub mod metrics;
pub mod migrations;
pub mod openapi;
pub mod qr;
pub mod storage;
pub mod telemetry;
pub mod unrecorded;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(target_arch = "wasm32")]
pub mod shell;

use std::sync::Arc;

use crate::config::Settings;
use crate::http::{App, Clock};
use crate::storage::{KvStore, SqlStore, StoreError, Traced};

/// The label of the key-value store and of the SQLite database.
pub const STORE_LABEL: &str = "default";

/// Builds the app over its stores (links, clicks, and the tally of clicks
/// that could not be recorded), wrapping each in its tracing layer.
pub fn build_app(
    kv: impl KvStore + 'static,
    sql: impl SqlStore + 'static,
    unrecorded: impl SqlStore + 'static,
    settings: Settings,
    clock: Clock,
) -> App {
    let tally = unrecorded::Tally::new(
        Traced::new(unrecorded, unrecorded::TALLY_LABEL),
        settings.sqlite_busy_timeout_ms,
    );
    App {
        kv: Arc::new(Traced::new(kv, STORE_LABEL)),
        sql: Arc::new(Traced::new(sql, STORE_LABEL)),
        unrecorded: Arc::new(tally),
        settings: Arc::new(settings),
        clock,
        slugs: links::random_slugs(),
    }
}

/// Applies the busy timeout and the schema (pragmas and pending migrations)
/// to the click database through the app's traced store. Called once per
/// instance, on first use; the tally database sets itself up on its own
/// first use ([`unrecorded::Tally`]).
pub async fn migrate(app: &App) -> Result<i64, StoreError> {
    let now = (app.clock)().unix_timestamp();
    let timeout = unrecorded::busy_timeout(app.settings.sqlite_busy_timeout_ms);
    migrations::apply_pragma(app.sql.as_ref(), &timeout).await;
    migrations::run(app.sql.as_ref(), now).await
}

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}
