//! The key API under `/api/keys` (admin only): make a key (shown once),
//! list keys (never a secret), revoke one.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{Admin, JsonBody, Key};
use crate::app::App;
use crate::error::{AppError, Store};
use crate::keys::{self, KeyInfo, KeyName, Role};
use crate::links;

/// The routes under `/api/keys`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/keys", get(list_keys).post(create_key))
        .route("/api/keys/{id}", delete(revoke_key))
}

/// `POST /api/keys`.
#[derive(Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// What the key is for, e.g. `grafana`: 1 to 64 printable characters.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(min_length = 1, max_length = 64, example = "grafana")
    )]
    name: String,
    /// `viewer`, `editor` or `admin`.
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Role))]
    role: String,
    /// When it stops working (RFC 3339, in the future); never when absent.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime))]
    expires_at: Option<String>,
}

/// A new key: its listing and the key itself, shown this once.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct NewKey {
    #[serde(flatten)]
    info: KeyInfo,
    /// `shk_<id>_<secret>`: send it as `Authorization: Bearer <key>`. Only its
    /// hash is stored; it cannot be shown again.
    key: String,
}

/// Every key.
#[derive(Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub(crate) struct KeyList {
    keys: Vec<KeyInfo>,
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    post,
    path = "/api/keys",
    tag = "keys",
    security(("bearer" = [])),
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; `key` is shown this once.", body = NewKey,
            headers(("location" = String, description = "`/api/keys/{id}`."))),
        (status = 400, description = "A field is invalid: `invalid_json`, `invalid_name`, `invalid_role`, `invalid_timestamp`, `invalid_expiry`.", body = crate::error::ErrorBody),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is not an admin key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 16 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn create_key(
    State(app): State<App>,
    _: Key<Admin>,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<Response, AppError> {
    let now = app.now();
    let name = KeyName::parse(&body.name)?;
    let role = Role::parse(&body.role)?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|raw| links::parse_expiry(raw, now))
        .transpose()?;
    let (info, key) = keys::create(app.sql.as_ref(), &name, role, expires_at, now).await?;
    eprintln!("shortener: key {} ({}) created", info.id, role.as_str());
    let location = format!("/api/keys/{}", info.id);
    let mut response = (StatusCode::CREATED, Json(NewKey { info, key })).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    // The secret must not linger in a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    get,
    path = "/api/keys",
    tag = "keys",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key, oldest first; never a secret.", body = KeyList),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is not an admin key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 500, description = "A store failed (`internal`); the cause is logged, not sent.", body = crate::error::ErrorBody),
        (status = 503, description = "A store did not answer within its bound (`kv_timeout_ms`, `click_db_timeout_ms`): try again (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn list_keys(
    State(app): State<App>,
    _: Key<Admin>,
) -> Result<Json<KeyList>, AppError> {
    Ok(Json(KeyList {
        keys: keys::list(app.sql.as_ref()).await?,
    }))
}

#[cfg_attr(not(target_arch = "wasm32"), utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "keys",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The key's id.")),
    responses(
        (status = 204, description = "Revoked: the key fails from its next request on, on every replica."),
        (status = 401, description = "No, a wrong, an expired or a revoked key (`unauthorized`), or the API is disabled (`api_disabled`).", body = crate::error::ErrorBody),
        (status = 403, description = "The key is not an admin key (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No key has that id (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The key store cannot be reached (`store_unavailable`; `Retry-After`).",
            headers(("retry-after" = String, description = "Seconds.")), body = crate::error::ErrorBody),
    )
))]
pub(crate) async fn revoke_key(
    State(app): State<App>,
    _: Key<Admin>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let revoked = keys::revoke(app.sql.as_ref(), &id)
        .await
        .map_err(|e| AppError::unavailable(Store::Keys, e))?;
    if revoked {
        eprintln!("shortener: key {id} revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoKey)
    }
}
