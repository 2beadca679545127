//! shortener: a self-hosted, instrumented URL shortener for Spin.
//!
//! # Layout
//!
//! The crate is a host-agnostic core and a thin Spin shell. Only
//! [`shell`] (compiled for `wasm32` only) imports `spin_sdk`; everything else
//! runs natively under `cargo test` against an in-memory key-value store and
//! a real SQLite ([`native`]).
//!
//! * [`ablation`]: the benchmark's knobs that remove one part of the
//!   redirect at a time (only with the `ablation` feature).
//! * [`app`]: the shared state (`App`, `Clock`, `ClientAddr`) and how a host
//!   assembles it.
//! * [`redirect`]: what `GET`/`HEAD /{slug}` decides (record the click,
//!   then answer; fall back to the tally; HEAD; expiry), as an `Outcome`.
//! * [`keys`]: API keys with roles (viewer, editor, admin).
//! * [`links`]: `Slug`, `TargetUrl`, `Link`, and link storage (records in
//!   key-value, the slug registry in SQLite).
//! * [`clicks`]: who followed a link (browser, OS, bot, referrer, client IP,
//!   keyed visitor hash) and the one-statement click write.
//! * [`analytics`]: per-link totals and stats from the daily rollups.
//! * [`rollups`]: the rollups folded from the raw clicks off the redirect
//!   path (on reads, and by every `FOLD_EVERY`-th redirect).
//! * [`outbox`]: with a click database shared over the network, clicks
//!   written on the replica first and shipped in idempotent batches.
//! * [`profile`]: the benchmark's guest-side profile of the redirect, in
//!   self time per stage (only with the `ablation` feature).
//! * [`transfer`]: the exports (links, a link's clicks; CSV or JSON,
//!   streamed) and the import of other shorteners' exports.
//! * [`unrecorded`]: clicks served but not recorded (the click store
//!   failed): their tally in a second database, the busy timeout, the
//!   `/health` write probe.
//! * [`host`]: what Spin says about a request (`spin-*` headers), told apart
//!   from what the client says.
//! * [`health`]: the store probes and the refused variables, for `/health`
//!   and `shortener_store_up`.
//! * [`metrics`]: the `/metrics` exposition, read from SQLite.
//! * [`qr`]: QR codes of short URLs (SVG).
//! * [`console`]: the web console under `/console/`, its assets compiled in.
//! * [`gzipped`]: files compiled in gzipped (by `build.rs`) and served
//!   compressed or inflated, as the client accepts.
//! * [`migrations`]: the versioned SQLite schema and its triggers.
//! * [`storage`]: the two ports (`KvStore`, `SqlStore`) and the `Traced`
//!   wrapper that puts every storage call in a client span.
//! * [`telemetry`]: attribute names, the request span, trace context.
//! * [`config`]: typed `Settings` from Spin variables.
//! * [`error`]: `AppError`, mapped to HTTP in one place, and the error body.
//! * [`http`]: the routes of the redirect, the link API and operations, their
//!   extractors and handlers, and the request-span middleware.
//! * [`openapi`]: the OpenAPI description of the API (utoipa), served at
//!   `/api/openapi.json`.
//!
//! [`router`] assembles the routes of [`http`], [`console`] and [`openapi`]
//! into one router; [`Handler`], what every host serves, sends a redirect
//! straight to its handler and everything else to that router. The modules import downwards:
//! `http`, `console` and `openapi` use the core, never each other, except
//! that `openapi` names `http`'s handlers, whose description it gathers.
//! * [`native`] (not on wasm32): the test host's stores.
//! * [`shell`] (wasm32 only): the Spin component's entry point and adapters.

pub mod ablation;
pub mod analytics;
pub mod app;
pub mod clicks;
pub mod config;
pub mod console;
pub mod error;
pub mod gzipped;
pub mod health;
pub mod host;
pub mod http;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod migrations;
pub mod openapi;
pub mod orphans;
pub mod outbox;
pub mod profile;
pub mod qr;
pub mod redirect;
pub mod rollups;
pub mod storage;
pub mod telemetry;
pub mod transfer;
pub mod unrecorded;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(target_arch = "wasm32")]
pub mod shell;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

pub use crate::app::{App, ClientAddr, Clock, STORE_LABEL, build_app, migrate, system_clock};
use crate::config::ConfigError;
use crate::error::{AppError, MAX_BODY_BYTES};

/// The full router: the routes of [`http`], [`console`] and [`openapi`],
/// the fallbacks, the body limit, and every request in its span.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(http::routes())
        .merge(console::routes())
        .merge(openapi::routes())
        .fallback(http::fallback)
        .method_not_allowed_fallback(async || AppError::MethodNotAllowed)
        .with_state(app)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(http::request_span))
}

/// What serves an instance's requests, on both hosts: a request of the
/// redirect ([`http::direct_segment`]) goes straight to its handler
/// ([`http::redirect_direct`]), without the router; anything else goes
/// through [`router`], built on its first use. The redirect component most
/// often never builds it: its instances pay neither the router's
/// construction nor its routing and layers per redirect.
#[derive(Clone)]
pub struct Handler(Serves);

#[derive(Clone)]
enum Serves {
    App {
        app: App,
        router: std::sync::Arc<std::sync::OnceLock<Router>>,
    },
    /// A component whose variables were refused: every request gets the
    /// configuration error.
    Misconfigured(Router),
}

impl Handler {
    /// The handler of `app`.
    pub fn new(app: App) -> Self {
        Self(Serves::App {
            app,
            router: Default::default(),
        })
    }

    /// The handler of a component whose variables were refused
    /// ([`misconfigured_router`]).
    pub fn misconfigured(error: ConfigError) -> Self {
        Self(Serves::Misconfigured(misconfigured_router(error)))
    }

    /// The answer to `request`.
    pub async fn handle(&self, request: axum::extract::Request) -> axum::response::Response {
        let _profiled = profile::stage(profile::Stage::Handler);
        let mut router = match &self.0 {
            Serves::App { app, router: built } => {
                if let Some(segment) = http::direct_segment(request.method(), request.uri().path())
                {
                    let slug = links::Slug::parse(segment).ok();
                    return http::redirect_direct(app.clone(), slug, request).await;
                }
                built.get_or_init(|| router(app.clone())).clone()
            }
            Serves::Misconfigured(router) => router.clone(),
        };
        match tower_service::Service::call(&mut router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

impl tower_service::Service<axum::extract::Request> for Handler {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move { Ok(handler.handle(request).await) })
    }
}

/// A router that answers every request with the configuration error, for a
/// component whose variables were refused (logged once by the caller).
pub fn misconfigured_router(error: ConfigError) -> Router {
    let message = error.to_string();
    Router::new()
        .fallback(move || {
            let error = AppError::Misconfigured(message.clone());
            async move { error }
        })
        .layer(middleware::from_fn(http::request_span))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeSet;

    use crate::links::RESERVED_SLUGS;

    /// The first path segment of every route below `/`, other than the
    /// slug itself.
    fn first_segments<'a>(routes: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        routes
            .filter_map(|r| r.trim_start_matches('/').split('/').next())
            .filter(|s| !s.is_empty() && !s.starts_with('{') && *s != "...")
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn the_reserved_slugs_are_exactly_the_first_segments_of_the_routers_and_the_manifests_routes()
     {
        let reserved: BTreeSet<String> = RESERVED_SLUGS.iter().map(|s| s.to_string()).collect();
        let dir = tempfile::tempdir().unwrap();
        let host = crate::native::TestHost::start(dir.path(), &[], time::OffsetDateTime::now_utc())
            .await
            .unwrap();
        // axum shows its route table only through `Debug`: every quoted
        // string that starts with `/`.
        let dump = format!("{:?}", host.router());
        let routed = first_segments(dump.split('"').filter(|s| s.starts_with('/')));
        assert_eq!(routed, reserved, "the router's first segments");
        let manifest = include_str!("../spin.toml");
        let routes = manifest
            .lines()
            .filter_map(|l| l.trim().strip_prefix("route = \""))
            .filter_map(|l| l.strip_suffix('"'));
        assert_eq!(first_segments(routes), reserved, "spin.toml's routes");
    }
}
