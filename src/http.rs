//! The HTTP surface: an axum [`Router`] over an [`App`].
//!
//! The same router serves the Spin component (`crate::shell`) and the native
//! tests, which call it with `tower::ServiceExt::oneshot`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State,
};
use axum::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::analytics::{self, DayRange};
use crate::clicks::{self, Visitor};
use crate::config::{ConfigError, Settings};
use crate::error::AppError;
use crate::links::{self, Link, LinkPatch, Links, NewLink, SearchText, Slug, TargetUrl};
use crate::metrics;
use crate::qr;
use crate::storage::{KvStore, SqlStore, StoreError};
use crate::telemetry::{self, attr};
use crate::unrecorded;

pub use crate::error::MAX_BODY_BYTES;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 20;
/// Largest page.
pub const MAX_PAGE: usize = 100;

/// The key `/health` reads (it never writes).
const HEALTH_PROBE_KEY: &str = "health:probe";

/// A source of the current time (swappable in tests).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The socket peer of a request, put into the request's extensions by the
/// host (Spin's `spin-client-addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Everything a request handler needs.
#[derive(Clone)]
pub struct App {
    /// Links (traced).
    pub kv: Arc<dyn KvStore>,
    /// Clicks and registry (traced).
    pub sql: Arc<dyn SqlStore>,
    /// The tally of clicks served but not recorded (traced; a second
    /// database, see [`crate::unrecorded`]).
    pub unrecorded: Arc<dyn SqlStore>,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Now.
    pub clock: Clock,
    /// Random slug candidates.
    pub slugs: links::SlugSource,
}

impl App {
    fn links(&self) -> Links<'_> {
        Links {
            kv: self.kv.as_ref(),
            sql: self.sql.as_ref(),
            slugs: &self.slugs,
        }
    }
}

/// The full router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/links", get(list_links).post(create_link))
        .route(
            "/links/{slug}",
            get(get_link).delete(delete_link).patch(update_link),
        )
        .route("/links/{slug}/stats", get(link_stats))
        .route("/links/{slug}/qr", get(link_qr))
        .route("/openapi.json", get(crate::openapi::serve));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_endpoint))
        .route("/{slug}", get(redirect))
        .nest("/api", api)
        .merge(crate::console::routes())
        .fallback(async || AppError::NoRoute)
        .method_not_allowed_fallback(async || AppError::MethodNotAllowed)
        .with_state(app)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request_span))
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
        .layer(middleware::from_fn(request_span))
}

async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let span = telemetry::request_span(&method, route.as_deref(), request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    telemetry::record_status(&span, response.status());
    response
}

// ---------------------------------------------------------------- extractors

/// Proof that the request carried the admin bearer token.
pub struct Admin;

impl FromRequestParts<App> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let Some(expected) = app.settings.admin_token.as_deref() else {
            return Err(AppError::Unauthorized {
                code: "api_disabled",
                message: app.settings.api_disabled_reason,
            });
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match presented {
            Some(token) if tokens_match(token, expected) => Ok(Admin),
            Some(_) => Err(AppError::Unauthorized {
                code: "unauthorized",
                message: "The bearer token is wrong.",
            }),
            None => Err(AppError::Unauthorized {
                code: "unauthorized",
                message: "Send `Authorization: Bearer <admin_token>`.",
            }),
        }
    }
}

/// Compares a presented token with the configured one in time that depends
/// on neither's content nor length: both are hashed to 32 bytes first, and
/// the digests are compared in constant time.
fn tokens_match(presented: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(presented), Sha256::digest(expected));
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// A JSON object body (`application/json`, at most [`MAX_BODY_BYTES`] by
/// the router's `DefaultBodyLimit`); axum's rejections become [`AppError`]s.
/// Only an object is a body: serde would also fill a struct from an array
/// (`[null, null]` as a PATCH removed an expiry).
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let Json(object) =
            Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, state).await?;
        T::deserialize(serde_json::Value::Object(object))
            .map(JsonBody)
            .map_err(|e| {
                AppError::validation("invalid_json", format!("The JSON body is not valid: {e}."))
            })
    }
}

/// A query string; a malformed one is a 400 `invalid_query`.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(AppError))]
pub struct ValidQuery<T>(pub T);

/// The `{slug}` of a route, validated. Anything that is no slug cannot name
/// a link, so the rejection is the one "no link" 404.
pub struct SlugPath(pub Slug);

impl<S: Send + Sync> FromRequestParts<S> for SlugPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        Slug::parse(&raw)
            .map(SlugPath)
            .map_err(|_| AppError::NoLink)
    }
}

// ------------------------------------------------------------------ redirect

/// `GET /{slug}`: the redirect, one click. (`HEAD` answers the same and
/// counts none; it is not described, as OpenAPI operations need one id.)
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/{slug}",
    tag = "redirect",
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 302, description = "To the link's URL (the status is `redirect_status`: 301, 302, 307 or 308).",
            headers(("location" = String, description = "The link's URL."))),
        (status = 301, description = "As 302, when `redirect_status` is 301.", headers(("location" = String))),
        (status = 307, description = "As 302, when `redirect_status` is 307.", headers(("location" = String))),
        (status = 308, description = "As 302, when `redirect_status` is 308.", headers(("location" = String))),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 410, description = "The link has expired (`link_expired`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
        (status = 503, description = "The link store (key-value) is down, or neither SQLite database can count the click (`store_unavailable`; `Retry-After`). A click database that fails alone still redirects: the click is counted in `unrecorded_clicks`.",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::openapi::ErrorBody),
    )
))]
async fn redirect(
    State(app): State<App>,
    path: Result<SlugPath, AppError>,
    request: Request,
) -> Result<Response, AppError> {
    // The request's own parts, borrowed: extracting `HeaderMap` would copy
    // every header on the hot path.
    let (parts, _) = request.into_parts();
    let (method, headers) = (&parts.method, &parts.headers);
    let peer = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    let span = tracing::Span::current();
    let outcome = |o: &'static str| span.record(attr::REDIRECT_OUTCOME, o);
    let Ok(SlugPath(slug)) = path else {
        outcome("miss");
        return Err(AppError::NoLink);
    };
    let Some(link) = app.links().get(&slug).await.map_err(link_store_down)? else {
        outcome("miss");
        return Err(AppError::NoLink);
    };
    let now = (app.clock)();
    if link.is_expired(now) {
        outcome("expired");
        return Err(AppError::Gone);
    }
    let answer = redirect_response(app.settings.redirect_status, &link.url);
    if method == Method::HEAD {
        // Link previews and checkers: same answer, no click.
        outcome("hit");
        return Ok(answer);
    }

    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let user_agent = header_str(header::USER_AGENT).unwrap_or_default();
    let visitor = Visitor::classify(user_agent, header_str(header::REFERER));
    span.record(attr::VISITOR_KIND, visitor.kind());
    // Lossy, not `to_str`: a proxy appends its entry to the client's line,
    // so dropping a line with non-ASCII bytes would drop our proxies' entries.
    // Borrowed unless a line really has non-UTF-8 bytes.
    let forwarded: Vec<std::borrow::Cow<'_, str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    let forwarded: Vec<&str> = forwarded.iter().map(AsRef::as_ref).collect();
    let ip = clicks::client_ip(peer, &forwarded, app.settings.trusted_proxy_hops);
    let Some(salt) = app.settings.visitor_salt.as_deref() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "visitor_salt is not set: refusing to record clicks without it"
        )));
    };
    let day = clicks::utc_day(now);
    let click = clicks::Click {
        slug: &slug,
        at: now,
        visitor: &visitor,
        visitor_hash: clicks::visitor_hash(salt, ip, user_agent, &day),
    };
    // Answer only once the click is committed: a redirect served is a click
    // recorded, or (the click store failed) a click counted as unrecorded.
    match clicks::record(app.sql.as_ref(), &click).await {
        Ok(true) => {
            span.record(attr::CLICK_OUTCOME, attr::CLICK_RECORDED);
        }
        Ok(false) => {
            outcome("miss");
            return Err(AppError::NoLink);
        }
        Err(e) => click_unrecorded(&app, &span, &link, visitor.kind(), now, e).await?,
    }
    outcome("hit");
    Ok(answer)
}

/// The click store refused the click: the redirect is served anyway, and the
/// click is counted in the unrecorded tally (`/metrics`, the link's
/// `unrecorded_clicks`), with a warning event on the request span (the
/// failed SQLite span is the error span). `/health` reports the store as failing.
///
/// A redirect is served only when its click is counted somewhere: when the
/// tally fails too (both databases down, e.g. while Spin shuts down: "channel
/// closed"), the answer is 503 naming the click store, so that served =
/// recorded + unrecorded always holds.
async fn click_unrecorded(
    app: &App,
    span: &tracing::Span,
    link: &Link,
    kind: &'static str,
    now: OffsetDateTime,
    error: StoreError,
) -> Result<(), AppError> {
    // A warning, not an error: the request itself succeeded (its span keeps
    // an unset status); the failed SQLite span below it is the error span.
    tracing::warn!(error = %error, "click not recorded: counted as unrecorded");
    let at_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let tallied = unrecorded::tally(
        app.unrecorded.as_ref(),
        link.slug.as_str(),
        &links::rfc3339(link.created_at),
        kind,
        at_ms,
    )
    .await;
    if let Err(e) = tallied {
        // Neither recorded nor counted: refuse the redirect (the error
        // mapping logs the click store's error; this logs the tally's).
        tracing::error!(error = %e, "the unrecorded tally failed too: redirect refused");
        return Err(AppError::StoreUnavailable {
            store: "click store (SQLite)",
            source: StoreError::new(error.kind, format!("{error}; unrecorded tally: {e}")),
        });
    }
    span.record(attr::CLICK_OUTCOME, attr::CLICK_UNRECORDED);
    Ok(())
}

/// A failed link read in a redirect: the link store is down (503, naming it).
fn link_store_down(e: links::LinkError) -> AppError {
    match e {
        links::LinkError::Store(source) => AppError::StoreUnavailable {
            store: "link store (key-value)",
            source,
        },
        other => other.into(),
    }
}

fn redirect_response(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    // Every follow must reach us to be counted.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

// ----------------------------------------------------------------------- API

/// `POST /api/links`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// An absolute http(s) URL, at most 2048 bytes, not one of our own.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(
            pattern = "^[Hh][Tt][Tt][Pp][Ss]?:",
            max_length = 2048,
            example = "https://example.com/page"
        )
    )]
    url: String,
    /// A custom slug; a random one when absent.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(pattern = "^[A-Za-z0-9_-]{3,64}$"))]
    slug: Option<String>,
    /// When it stops redirecting (RFC 3339, in the future).
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime))]
    expires_at: Option<String>,
}

/// A link as the API shows it.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
struct LinkView {
    slug: String,
    /// `public_base_url` + `/` + slug.
    short_url: String,
    /// Where it redirects (normalised).
    url: String,
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime))]
    created_at: String,
    /// `null`: never expires.
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime, required = true))]
    expires_at: Option<String>,
    /// All-time clicks (GET of one link only).
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<i64>,
    /// Redirects served whose click the click database refused, by kind
    /// (GET of one link only; zeros when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    unrecorded_clicks: Option<unrecorded::ByKind>,
}

impl LinkView {
    fn new(link: Link, settings: &Settings, clicks: Option<i64>) -> Self {
        Self {
            short_url: settings.short_url(link.slug.as_str()),
            slug: link.slug.to_string(),
            url: link.url,
            created_at: links::rfc3339(link.created_at),
            expires_at: link.expires_at.map(links::rfc3339),
            clicks,
            unrecorded_clicks: None,
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    post,
    path = "/api/links",
    tag = "links",
    security(("bearer" = [])),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created.", body = LinkView,
            headers(("location" = String, description = "`/api/links/{slug}`."))),
        (status = 400, description = "A field is invalid: `invalid_json`, `invalid_url`, `self_referencing_url`, `invalid_slug`, `reserved_slug`, `invalid_timestamp`, `invalid_expiry`.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 409, description = "The custom slug is taken (`slug_taken`).", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::openapi::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn create_link(
    State(app): State<App>,
    _: Admin,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<Response, AppError> {
    let now = (app.clock)();
    // The whole request is validated before anything is claimed.
    let url = TargetUrl::parse(&body.url, &app.settings.own_origins)?;
    let slug = body.slug.as_deref().map(Slug::parse).transpose()?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|raw| links::parse_expiry(raw, now))
        .transpose()?;
    let link = app
        .links()
        .create(
            NewLink {
                url,
                slug,
                expires_at,
            },
            app.settings.slug_length,
            now,
        )
        .await?;
    let location = format!("/api/links/{}", link.slug);
    let mut response = (
        StatusCode::CREATED,
        Json(LinkView::new(link, &app.settings, None)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[cfg_attr(not(target_arch = "wasm32"), param(value_type = Option<u32>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        param(pattern = "^([A-Za-z0-9_-]{3,64})?$")
    )]
    cursor: Option<String>,
    /// Only links whose slug or URL contains this text (at most 256 bytes).
    #[cfg_attr(not(target_arch = "wasm32"), param(max_length = 256))]
    q: Option<String>,
}

/// One page of links, in slug order.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
struct LinkPage {
    links: Vec<LinkView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[cfg_attr(not(target_arch = "wasm32"), schema(required = true))]
    next_cursor: Option<String>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links",
    tag = "links",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of links.", body = LinkPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_search` or `invalid_query`.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn list_links(
    State(app): State<App>,
    _: Admin,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<LinkPage>, AppError> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(AppError::validation(
                    "invalid_limit",
                    format!("`limit` must be a whole number from 1 to {MAX_PAGE}."),
                ));
            }
        },
    };
    let cursor = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            Slug::parse(c).map_err(|_| {
                AppError::validation("invalid_cursor", "`cursor` is not one this API returned.")
            })
        })
        .transpose()?;
    let needle = q.q.as_deref().map(SearchText::parse).transpose()?.flatten();
    let (page, next) = match &needle {
        Some(needle) => app.links().search(needle, cursor.as_ref(), limit).await?,
        None => app.links().page(cursor.as_ref(), limit).await?,
    };
    let views: Vec<LinkView> = page
        .into_iter()
        .map(|l| LinkView::new(l, &app.settings, None))
        .collect();
    Ok(Json(LinkPage {
        links: views,
        next_cursor: next,
    }))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 200, description = "The link, with its all-time `clicks` and `unrecorded_clicks`.", body = LinkView),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
        (status = 503, description = "The unrecorded-clicks tally cannot be read (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::openapi::ErrorBody),
    )
))]
async fn get_link(
    State(app): State<App>,
    _: Admin,
    SlugPath(slug): SlugPath,
) -> Result<Json<LinkView>, AppError> {
    let link = app.links().get(&slug).await?.ok_or(AppError::NoLink)?;
    let clicks = analytics::link_total(app.sql.as_ref(), &slug).await?;
    let lost = unrecorded::of_link(
        app.unrecorded.as_ref(),
        slug.as_str(),
        &links::rfc3339(link.created_at),
    )
    .await
    .map_err(tally_down)?;
    let mut view = LinkView::new(link, &app.settings, Some(clicks));
    view.unrecorded_clicks = Some(lost);
    Ok(Json(view))
}

fn tally_down(source: StoreError) -> AppError {
    AppError::StoreUnavailable {
        store: "unrecorded-clicks tally (SQLite)",
        source,
    }
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    delete,
    path = "/api/links/{slug}",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 204, description = "Deleted, with its clicks and rollups."),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn delete_link(
    State(app): State<App>,
    _: Admin,
    SlugPath(slug): SlugPath,
) -> Result<StatusCode, AppError> {
    if app.links().delete(&slug).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoLink)
    }
}

/// `PATCH /api/links/{slug}`: `url` and/or `expires_at` (`null` removes the
/// expiry); an absent field is left as it is.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), schema(min_properties = 1))]
struct PatchRequest {
    /// A new target (validated like a create's).
    #[serde(default)]
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?:", max_length = 2048)
    )]
    url: Option<String>,
    /// A new expiry; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<String>, format = DateTime))]
    expires_at: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    patch,
    path = "/api/links/{slug}",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    request_body = PatchRequest,
    responses(
        (status = 200, description = "The changed link.", body = LinkView),
        (status = 400, description = "`empty_patch` or a field is invalid: `invalid_json`, `invalid_url`, `self_referencing_url`, `invalid_timestamp`, `invalid_expiry`.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::openapi::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn update_link(
    State(app): State<App>,
    _: Admin,
    SlugPath(slug): SlugPath,
    JsonBody(body): JsonBody<PatchRequest>,
) -> Result<Json<LinkView>, AppError> {
    if body.url.is_none() && body.expires_at.is_none() {
        return Err(AppError::validation(
            "empty_patch",
            "Send `url`, `expires_at` or both.",
        ));
    }
    let now = (app.clock)();
    // Validated like a create, all of it before anything is written.
    let url = body
        .url
        .as_deref()
        .map(|raw| TargetUrl::parse(raw, &app.settings.own_origins))
        .transpose()?;
    let expires_at = body
        .expires_at
        .map(|e| {
            e.as_deref()
                .map(|raw| links::parse_expiry(raw, now))
                .transpose()
        })
        .transpose()?;
    let link = app
        .links()
        .update(&slug, LinkPatch { url, expires_at })
        .await?
        .ok_or(AppError::NoLink)?;
    Ok(Json(LinkView::new(link, &app.settings, None)))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}/qr",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 200, description = "A QR code of the short URL.", content_type = "image/svg+xml", body = String),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn link_qr(
    State(app): State<App>,
    _: Admin,
    SlugPath(slug): SlugPath,
) -> Result<Response, AppError> {
    if app.links().get(&slug).await?.is_none() {
        return Err(AppError::NoLink);
    }
    let svg = qr::svg(&app.settings.short_url(slug.as_str()))
        .map_err(|e| AppError::internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, qr::SVG_TYPE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        svg,
    )
        .into_response())
}

#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
struct StatsQuery {
    /// First day, `YYYY-MM-DD` (UTC); open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    to: Option<String>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}/stats",
    tag = "links",
    security(("bearer" = [])),
    params(
        ("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example"),
        StatsQuery,
    ),
    responses(
        (status = 200, description = "Clicks over the range.", body = analytics::Stats),
        (status = 400, description = "`invalid_date`, `invalid_date_range` or `invalid_query`.", body = crate::openapi::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::openapi::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::openapi::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn link_stats(
    State(app): State<App>,
    _: Admin,
    SlugPath(slug): SlugPath,
    ValidQuery(q): ValidQuery<StatsQuery>,
) -> Result<Json<analytics::Stats>, AppError> {
    let range = DayRange::parse(q.from.as_deref(), q.to.as_deref())?;
    if app.links().get(&slug).await?.is_none() {
        return Err(AppError::NoLink);
    }
    Ok(Json(
        analytics::stats(app.sql.as_ref(), &slug, &range).await?,
    ))
}

// --------------------------------------------------------- health, metrics

/// Probes every store the way the product uses it: a key-value read, a
/// one-row write to the click database (a lock held elsewhere, a read-only
/// file or a full disk fail it as they fail a click), a read of the tally.
/// 503 names what failed; the causes go to the log, not to the client.
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every store answered.", body = crate::openapi::Health),
        (status = 503, description = "A store did not answer; `checks` says which.", body = crate::openapi::Health),
    )
))]
async fn health(State(app): State<App>) -> Response {
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
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "checks": report,
    });
    (status, Json(body)).into_response()
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The app's own metrics in the OpenMetrics text format.", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::openapi::ErrorBody),
    )
))]
async fn metrics_endpoint(State(app): State<App>) -> Result<Response, AppError> {
    let (human_clicks, bot_clicks) = analytics::all_time(app.sql.as_ref()).await?;
    let links = app.sql.execute(&links::COUNT, vec![]).await?.scalar_i64();
    let unrecorded = unrecorded::all_time(app.unrecorded.as_ref()).await?;
    let text = metrics::render(metrics::Snapshot {
        human_clicks,
        bot_clicks,
        links,
        unrecorded_human_clicks: unrecorded.human,
        unrecorded_bot_clicks: unrecorded.bot,
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        Body::from(text),
    )
        .into_response())
}
