//! The link API under `/api/links`: create, list and search, read, change
//! and delete links; their stats and QR codes. Each handler reads its
//! request through the extractors ([`super::extract`]), calls the core and
//! writes the answer; errors are [`AppError`]s.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{
    DayRangeQuery, Editor, JsonBody, Key, RegisteredSlugPath, SlugPath, ValidQuery, Viewer,
};
use crate::analytics;
use crate::app::App;
use crate::config::Settings;
use crate::error::{AppError, ErrorCode, Store};
use crate::links::{
    self, Link, LinkPatch, ListQuery as LinkList, Listed, MaxClicks, NewLink, RedirectOptions,
    Slug, Tags, TargetUrl, rules,
};
use crate::qr;
use crate::unrecorded;

/// The routes under `/api/links`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/links", get(list_links).post(create_link))
        .route(
            "/api/links/{slug}",
            get(get_link).delete(delete_link).patch(update_link),
        )
        .route("/api/links/{slug}/stats", get(link_stats))
        .route("/api/links/{slug}/qr", get(link_qr))
}

pub use crate::links::listing::{DEFAULT_PAGE, MAX_PAGE};

/// `POST /api/links`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRequest {
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
    // --- The redirect's options (`links::rules`).
    /// Append the request's query to the target's (default `true`).
    #[serde(default)]
    forward_query: Option<bool>,
    /// After this many recorded clicks the link answers 410 (`null`: no limit).
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(minimum = 1))]
    max_clicks: Option<i64>,
    /// Before this instant (RFC 3339) the link answers 404.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime))]
    valid_from: Option<String>,
    /// Redirect rules, first match wins (at most 10).
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(max_items = 10))]
    rules: Option<Vec<rules::RuleInput>>,
    // --- tags ---
    /// At most 10 tags, each 1 to 32 of `a-z0-9-` (upper case is folded);
    /// repeats are kept once.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<Vec<TagText>>, max_items = 10))]
    tags: Option<serde_json::Value>,
}

/// A tag as a client sends it (folded to lower case).
#[cfg(not(target_arch = "wasm32"))]
#[derive(utoipa::ToSchema)]
#[schema(as = TagText, value_type = String, pattern = "^[A-Za-z0-9-]{1,32}$", example = "launch")]
pub(crate) struct TagText(#[allow(dead_code)] String);

/// A link as the API shows it.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct LinkView {
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
    // --- The redirect's options (`links::rules`).
    /// Whether the request's query is appended to the target's.
    forward_query: bool,
    /// `null`: no click limit.
    #[cfg_attr(not(target_arch = "wasm32"), schema(required = true, minimum = 1))]
    max_clicks: Option<i64>,
    /// `null`: valid from its creation.
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime, required = true))]
    valid_from: Option<String>,
    /// Redirect rules, first match wins.
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Vec<rules::RuleView>))]
    rules: Vec<links::Rule>,
    // --- tags and click totals ---
    /// Its tags (lower case), in the order first given.
    tags: Vec<String>,
    /// All-time clicks (in a `sort=clicks` list: as of the listing's snapshot).
    clicks: i64,
    /// Redirects served whose click the click database refused, by kind
    /// (GET of one link only; zeros when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    unrecorded_clicks: Option<unrecorded::ByKind>,
}

impl LinkView {
    fn new(link: Link, settings: &Settings, clicks: i64) -> Self {
        Self {
            tags: link.tags.to_strings(),
            short_url: settings.short_url(link.slug.as_str()),
            slug: link.slug.to_string(),
            url: link.url,
            created_at: links::rfc3339(link.created_at),
            expires_at: link.expires_at.map(links::rfc3339),
            forward_query: link.forward_query,
            max_clicks: link.max_clicks.map(links::MaxClicks::get),
            valid_from: link.valid_from.map(links::rfc3339),
            rules: link.rules,
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
        (status = 400, description = "A field is invalid: `invalid_json`, `invalid_url`, `self_referencing_url`, `invalid_slug`, `reserved_slug`, `invalid_timestamp`, `invalid_expiry`, `invalid_tag`, `invalid_max_clicks`, `invalid_rule`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 409, description = "The custom slug is taken (`slug_taken`).", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn create_link(
    State(app): State<App>,
    _: Key<Editor>,
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
    let options = RedirectOptions {
        forward_query: body.forward_query.unwrap_or(true),
        max_clicks: body.max_clicks.map(MaxClicks::parse).transpose()?,
        valid_from: body
            .valid_from
            .as_deref()
            .map(|raw| links::parse_timestamp("valid_from", raw))
            .transpose()?,
        rules: body
            .rules
            .as_deref()
            .map(|r| rules::parse_rules(r, &app.settings.own_origins))
            .transpose()?
            .unwrap_or_default(),
    };
    let tags = body
        .tags
        .as_ref()
        .map(Tags::from_json)
        .transpose()?
        .unwrap_or_default();
    let link = app
        .links()
        .create(
            NewLink {
                url,
                slug,
                expires_at,
                options,
                tags,
            },
            app.settings.slug_length,
            now,
        )
        .await?;
    let location = format!("/api/links/{}", link.slug);
    let mut response = (
        StatusCode::CREATED,
        Json(LinkView::new(link, &app.settings, 0)),
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
pub(crate) struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[cfg_attr(not(target_arch = "wasm32"), param(value_type = Option<u32>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// The `next_cursor` of the previous page (of the same `sort` and `order`).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        param(pattern = "^[A-Za-z0-9_.-]{0,320}$")
    )]
    cursor: Option<String>,
    /// Only links whose slug or URL contains this text (at most 256 bytes,
    /// ASCII case ignored).
    #[cfg_attr(not(target_arch = "wasm32"), param(max_length = 256))]
    q: Option<String>,
    // --- tags and sorting ---
    /// Only links with this tag (empty: no filter).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        param(pattern = "^([A-Za-z0-9-]{1,32})?$")
    )]
    tag: Option<String>,
    /// The order: `slug` (default, also when empty), `created` or `clicks`
    /// (the click total).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        param(pattern = "^(created|clicks|slug)?$")
    )]
    sort: Option<String>,
    /// `asc` or `desc`; absent or empty: `asc` for `slug`, `desc` for
    /// `created` and `clicks`.
    #[cfg_attr(not(target_arch = "wasm32"), param(pattern = "^(asc|desc)?$"))]
    order: Option<String>,
}

/// One page of links, in the order asked for.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct LinkPage {
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
        (status = 200, description = "A page of links, each with its click total; ties are broken by slug. Keyset paging is exact in every order: with `sort=clicks` every page of a listing orders and shows the totals as of its first page (the cursor carries that snapshot), so clicks arriving meanwhile never make a link skip or repeat. A link whose stored record does not decode is left out (logged, and counted in `shortener_corrupt_records`), so a page may hold fewer than `limit`.", body = LinkPage),
        (status = 400, description = "`invalid_limit`, `invalid_cursor` (not one returned for this `sort` and `order`), `cursor_expired` (a `sort=clicks` cursor older than the last 2^20 click-total changes: start again), `invalid_sort`, `invalid_order`, `invalid_tag`, `invalid_search` or `invalid_query`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn list_links(
    State(app): State<App>,
    _: Key<Viewer>,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<LinkPage>, AppError> {
    let query = LinkList::parse(
        q.sort.as_deref(),
        q.order.as_deref(),
        q.limit.as_deref(),
        q.cursor.as_deref(),
        q.tag.as_deref(),
        q.q.as_deref(),
    )?;
    // The totals (and a sort by them) count every click committed so far.
    crate::outbox::ship_for_read(&app).await;
    crate::rollups::fold_for_read(app.sql.as_ref()).await;
    let (page, next) = app.links().list(&query).await?;
    let views: Vec<LinkView> = page
        .into_iter()
        .map(|Listed { link, clicks }| LinkView::new(link, &app.settings, clicks))
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
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`; the cause is logged, not sent), or the link's stored record does not decode (`corrupt_record`: delete the link and create it again).", body = crate::error::ErrorBody),
        (status = 503, description = "The unrecorded-clicks tally cannot be read, or a store did not answer within its bound, `kv_timeout_ms` or `click_db_timeout_ms` (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn get_link(
    State(app): State<App>,
    _: Key<Viewer>,
    SlugPath(slug): SlugPath,
) -> Result<Json<LinkView>, AppError> {
    let link = app.links().get(&slug).await?.ok_or(AppError::NoLink)?;
    crate::outbox::ship_for_read(&app).await;
    let clicks = analytics::link_total(app.sql.as_ref(), &slug).await?;
    let lost = unrecorded::of_link(
        app.unrecorded.as_ref(),
        slug.as_str(),
        &links::rfc3339(link.created_at),
    )
    .await
    .map_err(|e| AppError::unavailable(Store::Tally, e))?;
    let mut view = LinkView::new(link, &app.settings, clicks);
    view.unrecorded_clicks = Some(lost);
    Ok(Json(view))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    delete,
    path = "/api/links/{slug}",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug as registered: 1 to 256 bytes, so that a name an older version allowed (e.g. a word now reserved) can be deleted too.", example = "docs-example")),
    responses(
        (status = 204, description = "Deleted, with its clicks and rollups."),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn delete_link(
    State(app): State<App>,
    _: Key<Editor>,
    RegisteredSlugPath(slug): RegisteredSlugPath,
) -> Result<StatusCode, AppError> {
    if app.links().delete(&slug).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoLink)
    }
}

/// `PATCH /api/links/{slug}`: any of the fields of a create but the slug
/// (`null` removes an expiry, the tags, a limit, a start, the rules); an
/// absent field is left as it is.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(target_arch = "wasm32"), schema(min_properties = 1))]
pub(crate) struct PatchRequest {
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
    // --- The redirect's options (`links::rules`); `null` clears.
    /// Query forwarding on or off (`null`: back to the default, on).
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<bool>))]
    forward_query: Option<Option<bool>>,
    /// A new click limit; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<i64>, minimum = 1))]
    max_clicks: Option<Option<i64>>,
    /// A new start (RFC 3339); `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<String>, format = DateTime))]
    valid_from: Option<Option<String>>,
    /// New rules, replacing the old ones; `null` or `[]` removes them.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<Vec<rules::RuleInput>>, max_items = 10))]
    rules: Option<Option<Vec<rules::RuleInput>>>,
    // --- tags ---
    /// The new tags, replacing all of them (at most 10, each 1 to 32 of
    /// `a-z0-9-`, upper case folded); `null` or `[]` clears them.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<Vec<TagText>>, max_items = 10))]
    tags: Option<Option<serde_json::Value>>,
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
        (status = 400, description = "`empty_patch` or a field is invalid: `invalid_json`, `invalid_url`, `self_referencing_url`, `invalid_timestamp`, `invalid_expiry`, `invalid_tag`, `invalid_max_clicks`, `invalid_rule`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`; the cause is logged, not sent), or the link's stored record does not decode (`corrupt_record`: delete the link and create it again).", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn update_link(
    State(app): State<App>,
    _: Key<Editor>,
    SlugPath(slug): SlugPath,
    JsonBody(body): JsonBody<PatchRequest>,
) -> Result<Json<LinkView>, AppError> {
    if body.url.is_none()
        && body.expires_at.is_none()
        && body.tags.is_none()
        && body.forward_query.is_none()
        && body.max_clicks.is_none()
        && body.valid_from.is_none()
        && body.rules.is_none()
    {
        return Err(AppError::validation(
            ErrorCode::EmptyPatch,
            "Send at least one of `url`, `expires_at`, `tags`, `forward_query`, `max_clicks`, `valid_from`, `rules`.",
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
    let max_clicks = body
        .max_clicks
        .map(|m| m.map(MaxClicks::parse).transpose())
        .transpose()?;
    let valid_from = body
        .valid_from
        .map(|v| {
            v.as_deref()
                .map(|raw| links::parse_timestamp("valid_from", raw))
                .transpose()
        })
        .transpose()?;
    let new_rules = body
        .rules
        .map(|r| {
            r.as_deref()
                .map(|r| rules::parse_rules(r, &app.settings.own_origins))
                .transpose()
                .map(Option::unwrap_or_default)
        })
        .transpose()?;
    let tags = body
        .tags
        .map(|t| {
            t.as_ref()
                .map(Tags::from_json)
                .transpose()
                .map(Option::unwrap_or_default)
        })
        .transpose()?;
    let patch = LinkPatch {
        url,
        expires_at,
        tags,
        forward_query: body.forward_query.map(|f| f.unwrap_or(true)),
        max_clicks,
        valid_from,
        rules: new_rules,
    };
    let Listed { link, clicks } = app
        .links()
        .edit(&slug, patch)
        .await?
        .ok_or(AppError::NoLink)?;
    Ok(Json(LinkView::new(link, &app.settings, clicks)))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}/qr",
    tag = "links",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example")),
    responses(
        (status = 200, description = "A QR code of the short URL.", content_type = "image/svg+xml", body = String),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`; the cause is logged, not sent), or the link's stored record does not decode (`corrupt_record`: delete the link and create it again).", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn link_qr(
    State(app): State<App>,
    _: Key<Viewer>,
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

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/links/{slug}/stats",
    tag = "links",
    security(("bearer" = [])),
    params(
        ("slug" = String, Path, description = "The link's slug: 3 to 64 of `A-Za-z0-9_-`.", example = "docs-example"),
        DayRangeQuery,
    ),
    responses(
        (status = 200, description = "Clicks over the range.", body = analytics::Stats),
        (status = 400, description = "`invalid_date`, `invalid_date_range` or `invalid_query`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that slug (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`; the cause is logged, not sent), or the link's stored record does not decode (`corrupt_record`: delete the link and create it again).", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn link_stats(
    State(app): State<App>,
    _: Key<Viewer>,
    SlugPath(slug): SlugPath,
    ValidQuery(q): ValidQuery<DayRangeQuery>,
) -> Result<Json<analytics::Stats>, AppError> {
    let range = q.range()?;
    if app.links().get(&slug).await?.is_none() {
        return Err(AppError::NoLink);
    }
    crate::outbox::ship_for_read(&app).await;
    let mut stats = analytics::stats(app.sql.as_ref(), &slug, &range).await?;
    stats.rules = analytics::rule_clicks(app.sql.as_ref(), &slug, &range).await?;
    stats.lag = crate::outbox::lag(&app).await;
    Ok(Json(stats))
}
