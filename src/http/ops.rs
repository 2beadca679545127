//! Operations: `/health` (every store probed the way the product uses it)
//! and `/metrics` (the app's own series, read from SQLite, with each store's
//! `shortener_store_up`; a failed read leaves its series out, never the scrape).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::analytics;
use crate::app::App;
use crate::error::AppError;
use crate::health::{self, Health};
use crate::links;
use crate::metrics;
use crate::unrecorded;

/// `/health` and `/metrics`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_endpoint))
}

/// Probes every store the way the product uses it: a key-value read, a
/// one-row write to the click database (a lock held elsewhere, a read-only
/// file or a full disk fail it as they fail a click), a read of the tally.
/// 503 names what failed; the causes go to the log, not to the client.
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every store answered and no variable is refused (`ok`); or, with a click outbox, only the click database failed (`degraded`: the replica still serves redirects, their clicks wait in its outbox, shown in `outbox`).", body = Health),
        (status = 503, description = "A store did not answer (`checks` says which), or a variable is refused (`refused` names it, e.g. a placeholder `visitor_salt`).", body = Health),
    )
))]
pub(crate) async fn health(State(app): State<App>) -> Result<Json<Health>, AppError> {
    // Anything but `ok` is a 503 through the error mapping, with the same
    // report as its body.
    let report = health::check(&app).await;
    if report.status == health::OK || report.status == health::DEGRADED {
        Ok(Json(report))
    } else {
        Err(AppError::Unhealthy(Box::new(report)))
    }
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
    let kv_up = match health::probe_kv(&app).await {
        Ok(()) => true,
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
    // The write probe of `/health`: a lock held elsewhere fails clicks (and
    // this) while reads still answer.
    sqlite(health::probe_clicks(&app).await.map(|()| 0));
    // A scrape ships this replica's outbox: an idle replica's last clicks
    // leave at the next scrape.
    crate::outbox::ship_for_read(&app).await;
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
    let outbox = match app.settings.click_outbox {
        false => None,
        true => match crate::outbox::backlog(app.unrecorded.as_ref()).await {
            Ok(backlog) => Some((backlog.clicks, backlog.age_seconds(app.now_ms()))),
            Err(e) => {
                failed("sqlite_unrecorded", &e);
                None
            }
        },
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
        outbox,
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
