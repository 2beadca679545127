//! The tag API under `/api/tags`: every tag with its number of links
//! (viewer), rename a tag on every link and remove it from every link
//! (editor). Each change edits the affected links one by one like a
//! `PATCH` of their tags (`links::Links::rename_tag`, `delete_tag`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{Editor, JsonBody, Key, Viewer};
use crate::app::App;
use crate::error::AppError;
use crate::links::Tag;

/// The routes under `/api/tags`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/tags", get(list_tags))
        .route("/api/tags/{tag}", patch(rename_tag).delete(delete_tag))
}

/// A tag and how many links carry it.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct TagView {
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(pattern = "^[a-z0-9-]{1,32}$", example = "launch")
    )]
    tag: String,
    /// Links with this tag (at least 1).
    links: i64,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/tags",
    tag = "tags",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every tag on at least one link, by name, with its number of links.", body = Vec<TagView>),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn list_tags(
    State(app): State<App>,
    _: Key<Viewer>,
) -> Result<Json<Vec<TagView>>, AppError> {
    let tags = app.links().tags().await?;
    Ok(Json(
        tags.into_iter()
            .map(|t| TagView {
                tag: t.tag.to_string(),
                links: t.links,
            })
            .collect(),
    ))
}

/// `PATCH /api/tags/{tag}`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameTag {
    /// The new name: 1 to 32 of `a-z0-9-` (upper case is folded).
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(pattern = "^[A-Za-z0-9-]{1,32}$", example = "launch-2030")
    )]
    name: String,
}

/// A path's tag: anything that is no tag is on no link (404).
fn path_tag(raw: &str) -> Result<Tag, AppError> {
    Tag::parse(raw).map_err(|_| AppError::NoTag)
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    patch,
    path = "/api/tags/{tag}",
    tag = "tags",
    security(("bearer" = [])),
    params(("tag" = String, Path, description = "The tag.", example = "launch")),
    request_body = RenameTag,
    responses(
        (status = 204, description = "Renamed on every link that had it."),
        (status = 400, description = "`invalid_tag` (the new name) or `invalid_json`.", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is a viewer key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that tag (`not_found`).", body = crate::error::ErrorBody),
        (status = 409, description = "The new name is a tag on some link already (`tag_taken`); tags are not merged (as in Shlink).", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn rename_tag(
    State(app): State<App>,
    _: Key<Editor>,
    Path(tag): Path<String>,
    JsonBody(body): JsonBody<RenameTag>,
) -> Result<StatusCode, AppError> {
    let to = Tag::parse(&body.name)?;
    let from = path_tag(&tag)?;
    if app.links().rename_tag(&from, &to).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoTag)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    delete,
    path = "/api/tags/{tag}",
    tag = "tags",
    security(("bearer" = [])),
    params(("tag" = String, Path, description = "The tag.", example = "launch")),
    responses(
        (status = 204, description = "Removed from every link that had it (the links stay)."),
        (status = 401, description = "No or a wrong bearer token (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is a viewer key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No link has that tag (`not_found`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn delete_tag(
    State(app): State<App>,
    _: Key<Editor>,
    Path(tag): Path<String>,
) -> Result<StatusCode, AppError> {
    let tag = path_tag(&tag)?;
    if app.links().delete_tag(&tag).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoTag)
    }
}
