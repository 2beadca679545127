//! `GET /api/orphans`: the orphan visits (`crate::orphans`) over a day range.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::extract::{DayRangeQuery, Key, ValidQuery, Viewer};
use crate::app::App;
use crate::error::AppError;
use crate::orphans;

/// The route of orphan visits.
pub fn routes() -> Router<App> {
    Router::new().route("/api/orphans", get(orphan_visits))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/orphans",
    tag = "orphans",
    security(("bearer" = [])),
    params(DayRangeQuery),
    responses(
        (status = 200, description = "GETs that found no link (unknown slug, no slug, not yet valid, expired, exhausted; a path with no route outside the app's own) over the range: per day, and the 100 most visited paths. Per day at most 1,000 paths are counted by name, the rest as `(other)`; paths are cut to 256 bytes.", body = orphans::Report),
        (status = 400, description = "`invalid_date`, `invalid_date_range` or `invalid_query`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn orphan_visits(
    State(app): State<App>,
    _: Key<Viewer>,
    ValidQuery(q): ValidQuery<DayRangeQuery>,
) -> Result<Json<orphans::Report>, AppError> {
    let range = q.range()?;
    Ok(Json(orphans::report(app.sql.as_ref(), &range).await?))
}
