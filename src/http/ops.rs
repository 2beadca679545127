//! Operations: `/health` (every store probed the way the product uses it)
//! and `/metrics` (the app's own series, read from SQLite, with each store's
//! `shortener_store_up`; a failed read leaves its series out, never the scrape).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::analytics;
use crate::app::App;
use crate::config::names;
use crate::error::AppError;
use crate::links;
use crate::metrics;
use crate::unrecorded;

/// The answer of `/health`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` when every store answered and no variable is refused (200);
    /// else `unavailable` when a store failed, `misconfigured` when only a
    /// variable is refused (both with a 503).
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = "ok"))]
    pub status: String,
    /// Per store (`kv`, `sqlite`: the click database, written to by the
    /// probe, `sqlite_unrecorded`: the unrecorded-clicks tally): `ok` or `error`.
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"})))]
    pub checks: std::collections::BTreeMap<String, String>,
    /// Variables the app refuses to run with, each with the reason (absent
    /// when none): `visitor_salt` when it is unset, a placeholder or shorter
    /// than 32 bytes (redirects are served, their clicks counted as
    /// unrecorded). Never the value.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = json!({"visitor_salt": "visitor_salt is a placeholder (it starts with `change-me`): ..."})))]
    pub refused: std::collections::BTreeMap<String, String>,
}

/// `/health` and `/metrics`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_endpoint))
}

/// The key `/health` reads (it never writes).
const HEALTH_PROBE_KEY: &str = "health:probe";

/// Probes every store the way the product uses it: a key-value read, a
/// one-row write to the click database (a lock held elsewhere, a read-only
/// file or a full disk fail it as they fail a click), a read of the tally.
/// 503 names what failed; the causes go to the log, not to the client.
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every store answered.", body = Health),
        (status = 503, description = "A store did not answer (`checks` says which), or a variable is refused (`refused` names it, e.g. a placeholder `visitor_salt`).", body = Health),
    )
))]
pub(crate) async fn health(State(app): State<App>) -> Response {
    let now_ms = i64::try_from((app.clock)().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let checks = [
        ("kv", app.kv.get(HEALTH_PROBE_KEY).await.map(|_| ())),
        (
            "sqlite",
            app.sql
                .execute(&unrecorded::WRITE_PROBE, vec![now_ms.into()])
                .await
                .map(|_| ()),
        ),
        (
            "sqlite_unrecorded",
            app.unrecorded
                .execute(&unrecorded::TALLY_PROBE, vec![])
                .await
                .map(|_| ()),
        ),
    ];
    let mut report = serde_json::Map::new();
    let mut healthy = true;
    for (name, result) in checks {
        if let Err(e) = &result {
            eprintln!("shortener: health: {name} failed: {e}");
            healthy = false;
        }
        report.insert(
            name.into(),
            json!(if result.is_ok() { "ok" } else { "error" }),
        );
    }
    let mut refused = serde_json::Map::new();
    if let Some(reason) = app.settings.visitor_salt_refused {
        eprintln!("shortener: health: {reason}");
        refused.insert(names::VISITOR_SALT.into(), json!(reason));
    }
    let (status, word) = match (healthy, refused.is_empty()) {
        (true, true) => (StatusCode::OK, "ok"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "misconfigured"),
    };
    let mut body = json!({"status": word, "checks": report});
    if !refused.is_empty() {
        body["refused"] = serde_json::Value::Object(refused);
    }
    (status, Json(body)).into_response()
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The app's own metrics in the OpenMetrics text format, also when a store fails: every value that could be read, and `shortener_store_up{store}` 1 or 0 per store (`kv`, `sqlite`, `sqlite_unrecorded`, as in `/health`); a value that could not be read is left out.", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 500, description = "The exposition could not be encoded (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn metrics_endpoint(State(app): State<App>) -> Result<Response, AppError> {
    // Every read is tried; a failed one leaves its series out and marks its
    // store down, so a degraded app is still scraped (and alerted on).
    let failed = |store: &str, e: &crate::storage::StoreError| {
        eprintln!("shortener: metrics: {store} failed: {e}");
    };
    let kv_up = match app.kv.get(HEALTH_PROBE_KEY).await {
        Ok(_) => true,
        Err(e) => {
            failed("kv", &e);
            false
        }
    };
    let mut sqlite_up = true;
    let mut sqlite = |result: Result<i64, crate::storage::StoreError>| match result {
        Ok(v) => Some(v),
        Err(e) => {
            failed("sqlite", &e);
            sqlite_up = false;
            None
        }
    };
    let now_ms = i64::try_from((app.clock)().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    // The write probe of `/health`: a lock held elsewhere fails clicks (and
    // this) while reads still answer.
    let probe = app
        .sql
        .execute(&unrecorded::WRITE_PROBE, vec![now_ms.into()])
        .await
        .map(|_| 0);
    sqlite(probe);
    let clicks = analytics::all_time(app.sql.as_ref()).await;
    let clicks = match clicks {
        Ok(pair) => Some(pair),
        Err(e) => {
            sqlite(Err(e));
            None
        }
    };
    let links = sqlite(
        app.sql
            .execute(&links::COUNT, vec![])
            .await
            .map(|r| r.scalar_i64()),
    );
    let corrupt_records = sqlite(
        app.sql
            .execute(&links::CORRUPT_COUNT, vec![])
            .await
            .map(|r| r.scalar_i64()),
    );
    let unrecorded = match unrecorded::all_time(app.unrecorded.as_ref()).await {
        Ok(tally) => Some((tally.human, tally.bot)),
        Err(e) => {
            failed("sqlite_unrecorded", &e);
            None
        }
    };
    let text = metrics::render(&metrics::Snapshot {
        clicks,
        links,
        unrecorded_clicks: unrecorded,
        corrupt_records,
        stores_up: vec![
            ("kv", kv_up),
            ("sqlite", sqlite_up),
            ("sqlite_unrecorded", unrecorded.is_some()),
        ],
    })
    .map_err(AppError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        Body::from(text),
    )
        .into_response())
}
