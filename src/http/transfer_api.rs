//! The transfer routes: `GET /api/export/links`, `GET /api/links/{slug}/clicks`
//! (viewer; streamed), `POST /api/import` (editor; its own body limit), and
//! `GET /api/whoami` (viewer: the caller's role, for the console).

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::extract::{Editor, Key, SlugPath, ValidQuery, Viewer};
use crate::analytics::DayRange;
use crate::app::App;
use crate::error::AppError;
use crate::keys::Role;
use crate::transfer::export::{self, Format};
use crate::transfer::import::{self, Report, Source};
use crate::transfer::{MAX_IMPORT_BYTES, TransferError};

/// The transfer routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/export/links", get(export_links))
        .route("/api/links/{slug}/clicks", get(export_clicks))
        .route(
            "/api/import",
            post(import_links).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/api/whoami", get(whoami))
}

/// `?format=`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
pub(crate) struct ExportQuery {
    /// `csv` (the default) or `json`.
    #[cfg_attr(not(target_arch = "wasm32"), param(pattern = "^(csv|json)$"))]
    format: Option<String>,
}

/// A streamed export as a download named `name`.
fn download(
    format: Format,
    name: &str,
    chunks: impl futures::Stream<Item = Result<Vec<u8>, crate::links::LinkError>> + Send + 'static,
) -> Response {
    let chunks = chunks.map(|chunk| {
        chunk.map_err(|e| {
            // The status is sent; the answer is cut short. Logged once, here.
            eprintln!("shortener: export failed part-way: {e}");
            e
        })
    });
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!("attachment; filename=\"{name}.{}\"", format.extension());
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/export/links",
    tag = "transfer",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "Every link, streamed in slug order: CSV (RFC 4180, header `slug,url,created_at,expires_at,tags,clicks,forward_query,max_clicks,valid_from,rules`; `rules` as a JSON array) or a JSON array of each link's fields with its all-time `clicks`. A link whose record does not decode is left out.",
            content((String = "text/csv"), (Vec<serde_json::Value> = "application/json"))),
        (status = 400, description = "`invalid_format` or `invalid_query`.", body = crate::error::ErrorBody),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn export_links(
    State(app): State<App>,
    _: Key<Viewer>,
    ValidQuery(q): ValidQuery<ExportQuery>,
) -> Result<Response, AppError> {
    let format = Format::parse(q.format.as_deref())?;
    Ok(download(format, "links", export::links(app, format)))
}

/// `?from=&to=&format=`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
pub(crate) struct ClicksQuery {
    /// First day, `YYYY-MM-DD` (UTC); open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    to: Option<String>,
    /// `csv` (the default) or `json`.
    #[cfg_attr(not(target_arch = "wasm32"), param(pattern = "^(csv|json)$"))]
    format: Option<String>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}/clicks",
    tag = "transfer",
    security(("bearer" = [])),
    params(
        ("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example"),
        ClicksQuery,
    ),
    responses(
        (status = 200, description = "The link's raw clicks in the range, streamed by click id: `id`, `at`, `kind` (`human`/`bot`), `referrer_host`, `browser`, `os`, `device` (woothee's category of the OS; `crawler` for bots), `rule` (the index of the rule that served it; `null` for the link's own URL). Never the visitor hash.",
            content((String = "text/csv"), (Vec<serde_json::Value> = "application/json"))),
        (status = 400, description = "`invalid_format`, `invalid_date`, `invalid_date_range` or `invalid_query`.", body = crate::error::ErrorBody),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`; the cause is logged, not sent), or the link's stored record does not decode (`corrupt_record`).", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn export_clicks(
    State(app): State<App>,
    _: Key<Viewer>,
    SlugPath(slug): SlugPath,
    ValidQuery(q): ValidQuery<ClicksQuery>,
) -> Result<Response, AppError> {
    let format = Format::parse(q.format.as_deref())?;
    let range = DayRange::parse(q.from.as_deref(), q.to.as_deref())?;
    if app.links().get(&slug).await?.is_none() {
        return Err(AppError::NoLink);
    }
    let name = format!("clicks-{slug}");
    Ok(download(
        format,
        &name,
        export::clicks(app, slug, range, format),
    ))
}

/// `?source=&dry_run=`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
pub(crate) struct ImportQuery {
    /// `shlink`, `yourls`, `kutt`, `bitly` or `csv`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        param(required = true, pattern = "^(shlink|yourls|kutt|bitly|csv)$")
    )]
    source: Option<String>,
    /// `true`: report what would happen, write nothing. Default `false`.
    #[cfg_attr(not(target_arch = "wasm32"), param(pattern = "^(true|false)$"))]
    dry_run: Option<String>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    post,
    path = "/api/import",
    tag = "transfer",
    security(("bearer" = [])),
    params(ImportQuery),
    request_body(description = "The file the source's own export or API gives (see the README): Shlink's `GET /rest/v3/short-urls` JSON, YOURLS's `action=stats` JSON, Kutt's `GET /api/v2/links` JSON, Bitly's `GET /v4/groups/{guid}/bitlinks` JSON, or a CSV with a `url` column (our export). At most 10 MiB.",
        content((String = "text/csv"), (serde_json::Value = "application/json"))),
    responses(
        (status = 200, description = "What was created (a dry run: what would be), skipped (the slug exists with the same target), in conflict (another target: never overwritten) and refused per line.", body = Report),
        (status = 400, description = "`invalid_source`, `invalid_query`, or the body is not that source's format (`invalid_import`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is a viewer key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 10 MiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the rows before it were imported, and importing again creates the rest.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn import_links(
    State(app): State<App>,
    _: Key<Editor>,
    ValidQuery(q): ValidQuery<ImportQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Report>, AppError> {
    let source = Source::parse(q.source.as_deref().unwrap_or_default())?;
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(TransferError::InvalidDryRun.into()),
    };
    let body = body?;
    let parsed = import::parse(source, &body)?;
    let report = import::run(&app, parsed, dry_run).await?;
    if !dry_run {
        eprintln!(
            "shortener: import from {}: {} created, {} skipped, {} conflicts, {} errors",
            source.as_str(),
            report.created,
            report.skipped_existing,
            report.conflicts.len(),
            report.errors.len()
        );
    }
    Ok(Json(report))
}

/// Who the caller is.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct WhoAmI {
    /// What the caller may do.
    role: Role,
    /// The key's id; `null` for the `admin_token`.
    #[cfg_attr(not(target_arch = "wasm32"), schema(required = true))]
    id: Option<String>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/whoami",
    tag = "keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's role and key id.", body = WhoAmI),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn whoami(key: Key<Viewer>) -> Json<WhoAmI> {
    let caller = key.0;
    let id = (caller.key_id != super::extract::ADMIN_TOKEN_ID).then_some(caller.key_id);
    Json(WhoAmI {
        role: caller.role,
        id,
    })
}
