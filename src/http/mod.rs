//! The HTTP surface of the core: the routes of the redirect, the link API
//! and operations, the request-span middleware, and the redirect's adapter.
//! The router itself is assembled in [`crate::router`].
//!
//! * [`extract`]: `Admin`, `JsonBody`, `ValidQuery`, `SlugPath`.
//! * [`links_api`]: the `/api/links` handlers and their wire types.
//! * [`keys_api`]: `/api/keys` (admin only).
//! * [`tags_api`]: the `/api/tags` handlers.
//! * [`ops`]: `/health` and `/metrics`.
//! * [`transfer_api`]: the exports, the import and `/api/whoami`.
//! * [`orphans_api`]: `GET /api/orphans`.
//! * here: `GET`/`HEAD /{slug}`, which reads the request into a
//!   [`redirect::Visit`] and writes the core's [`redirect::Outcome`].

pub mod extract;
pub mod keys_api;
pub mod links_api;
pub mod ops;
pub mod orphans_api;
pub mod tags_api;
pub mod transfer_api;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument;

use crate::app::{App, ClientAddr};
use crate::clicks;
use crate::error::AppError;
use crate::links::Slug;
use crate::redirect::{self, Outcome, Visit};
use crate::telemetry;
use extract::SlugPath;

pub use crate::error::MAX_BODY_BYTES;

/// The routes of the redirect, the link API and operations.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            SLUG_ROUTE,
            // The route's own 405, so that it too passes through the layer.
            get(redirect)
                .fallback(async || AppError::MethodNotAllowed)
                .layer(axum::middleware::map_response(no_store)),
        )
        .merge(links_api::routes())
        .merge(keys_api::routes())
        .merge(tags_api::routes())
        .merge(ops::routes())
        .merge(transfer_api::routes())
        .merge(orphans_api::routes())
}

/// The middleware that runs every request in its server span and records
/// the answered status on it.
pub async fn request_span(request: Request, next: Next) -> Response {
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

// ------------------------------------------------------------------ redirect

/// `GET /{slug}`: the redirect, one click. (`HEAD` answers the same and
/// counts none; it is not described, as OpenAPI operations need one id.)
#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/{slug}",
    tag = "redirect",
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 302, description = "To the first matching rule's URL, else the link's URL, with the request's query appended when `forward_query` (the status is `redirect_status`: 301, 302, 307 or 308).",
            headers(("location" = String, description = "The target URL."))),
        (status = 301, description = "As 302, when `redirect_status` is 301.", headers(("location" = String))),
        (status = 307, description = "As 302, when `redirect_status` is 307.", headers(("location" = String))),
        (status = 308, description = "As 302, when `redirect_status` is 308.", headers(("location" = String))),
        (status = 404, description = "No link has that slug, or the link's `valid_from` is still to come (`not_found`). Counted as an orphan visit.", body = crate::error::ErrorBody),
        (status = 410, description = "The link has expired (`link_expired`) or has had its `max_clicks` (`link_exhausted`). Counted as an orphan visit.", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "The link store (key-value) is down, or neither SQLite database can count the click, or the click of a link with `max_clicks` cannot be recorded (`store_unavailable`; `Retry-After`). A click database that fails alone still redirects links without a limit: the click is counted in `unrecorded_clicks`.",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn redirect(
    State(app): State<App>,
    path: Result<SlugPath, AppError>,
    request: Request,
) -> Result<Response, AppError> {
    // The request's own parts, borrowed: extracting `HeaderMap` would copy
    // every header on the hot path.
    let (parts, _) = request.into_parts();
    let headers = &parts.headers;
    // Lossy, not `to_str`: one non-ASCII byte (a device name in an app's
    // agent, a Latin-1 referrer path) must not turn a browser into "no
    // User-Agent", i.e. a bot. Borrowed unless the value has non-UTF-8 bytes.
    // Only the capped prefix of each is decoded (`clicks::MAX_*_BYTES`).
    let lossy = |name: header::HeaderName, max: usize| {
        headers
            .get(name)
            .map(|v| clicks::header_text(v.as_bytes(), max))
    };
    let user_agent = lossy(header::USER_AGENT, clicks::MAX_USER_AGENT_BYTES);
    let referer = lossy(header::REFERER, clicks::MAX_REFERER_BYTES);
    // Lossy too: a proxy appends its entry to the client's line, so dropping
    // a line with non-ASCII bytes would drop our proxies' entries.
    let forwarded: Vec<std::borrow::Cow<'_, str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    let forwarded: Vec<&str> = forwarded.iter().map(AsRef::as_ref).collect();
    let accept_language = lossy(
        header::ACCEPT_LANGUAGE,
        crate::links::rules::MAX_ACCEPT_LANGUAGE_BYTES,
    );
    let slug = path.ok().map(|SlugPath(slug)| slug);
    let visit = Visit {
        slug: slug.as_ref(),
        counts: parts.method != Method::HEAD,
        user_agent: user_agent.as_deref().unwrap_or_default(),
        referer: referer.as_deref(),
        forwarded_for: &forwarded,
        peer: parts.extensions.get::<ClientAddr>().map(|c| c.0),
        path: parts.uri.path(),
        query: parts.uri.query(),
        accept_language: accept_language.as_deref(),
    };
    match redirect::follow(&app, visit).await? {
        Outcome::Redirect { location } => {
            let _profiled = crate::profile::stage(crate::profile::Stage::Response);
            Ok(redirect_response(app.settings.redirect_status, &location))
        }
        Outcome::Miss => Err(AppError::NoLink),
        Outcome::Expired => Err(AppError::Gone),
        Outcome::Exhausted => Err(AppError::Exhausted),
    }
}

/// The slug of a request the redirect serves without the router
/// ([`redirect_direct`]): a `GET` or `HEAD` of `/{segment}`, the segment
/// spelled in the slug alphabet (`A-Za-z0-9_-`: nothing to percent-decode)
/// and no reserved first segment (`/health`, `/metrics` are routes of
/// their own). The router sends exactly those requests to [`redirect`]
/// with that segment; anything else (`None`) goes through the router.
pub fn direct_segment<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let segment = path.strip_prefix('/')?;
    let spelled = !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let reserved = crate::links::RESERVED_SLUGS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(segment));
    (spelled && !reserved).then_some(segment)
}

/// `GET`/`HEAD /{slug}` without axum's router and layers (the hot path; a
/// request [`direct_segment`] accepts, with the slug its segment parses
/// to): the same handler, request span and `Cache-Control` as the routed
/// one, so the answer is the router's.
pub async fn redirect_direct(app: App, slug: Option<Slug>, request: Request) -> Response {
    let span = telemetry::request_span(
        request.method().as_str(),
        Some(SLUG_ROUTE),
        request.headers(),
    );
    let head = request.method() == Method::HEAD;
    let slug = slug.map(SlugPath).ok_or(AppError::NoLink);
    let response = redirect(State(app), slug, request)
        .instrument(span.clone())
        .await
        .into_response();
    telemetry::record_status(&span, response.status());
    let _profiled = crate::profile::stage(crate::profile::Stage::Response);
    let mut response = no_store(response).await;
    // What axum's routing does to every answer it routes: a length from
    // an exact body size (without it Spin sends the body chunked, and the
    // last chunk waits out the client's delayed ACK: a ~40 ms tail), and
    // no body for `HEAD`.
    let length = axum::body::HttpBody::size_hint(response.body()).exact();
    if let Some(length) =
        length.filter(|_| !response.headers().contains_key(header::CONTENT_LENGTH))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if head {
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// The redirect's route template.
pub const SLUG_ROUTE: &str = "/{slug}";

fn redirect_response(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The router's fallback: no route (404). A `GET` of a path the redirect
/// would serve (not under a reserved first segment such as `api`) counts as
/// an orphan visit, like an unknown slug: `/`, `/wp-admin/setup.php`.
pub(crate) async fn fallback(State(app): State<App>, request: Request) -> AppError {
    let path = request.uri().path();
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let reserved = crate::links::RESERVED_SLUGS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(first));
    if request.method() == Method::GET && !reserved {
        crate::orphans::count(app.sql.as_ref(), path, app.now()).await;
    }
    AppError::NoRoute
}

/// `Cache-Control` of every `/{slug}` answer, the errors included.
pub const SLUG_CACHE_CONTROL: &str = "private, no-store";

/// The `/{slug}` route's response layer: no answer of it may be cached.
/// Every follow must reach us to be counted, and a 404, 410 or 503 must not
/// outlive its cause (a link created, an expiry cleared, a store back up).
/// A layer, not the handler, so that the errors `AppError::into_response`
/// writes and the route's 405 get it too.
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(SLUG_CACHE_CONTROL),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_get_or_head_of_one_slug_spelled_segment_that_no_route_reserves_skips_the_router() {
        for (method, path) in [(Method::GET, "/docs"), (Method::HEAD, "/a-b_C9")] {
            assert_eq!(direct_segment(&method, path), path.strip_prefix('/'));
        }
        for (method, path) in [
            (Method::POST, "/docs"),
            (Method::GET, "/"),
            (Method::GET, "/docs/"),
            (Method::GET, "/a/b"),
            (Method::GET, "/%64ocs"),
            (Method::GET, "/docs.html"),
            (Method::GET, "/health"),
            (Method::GET, "/Metrics"),
            (Method::GET, "/api"),
            (Method::GET, "docs"),
        ] {
            assert_eq!(direct_segment(&method, path), None, "{method} {path}");
        }
    }
}
