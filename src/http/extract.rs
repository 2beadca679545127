//! The extractors of the API: who is asking (`Admin`), and the body, query
//! and path read into typed values. Each rejects with an [`AppError`], so no
//! handler writes an error body itself.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::error::{AppError, ErrorCode};
use crate::links::Slug;

/// Proof that the request carried the admin bearer token.
pub struct Admin;

impl FromRequestParts<App> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let Some(expected) = app.settings.admin_token.as_deref() else {
            return Err(AppError::Unauthorized {
                code: ErrorCode::ApiDisabled,
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
                code: ErrorCode::Unauthorized,
                message: "The bearer token is wrong.",
            }),
            None => Err(AppError::Unauthorized {
                code: ErrorCode::Unauthorized,
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
                AppError::validation(
                    ErrorCode::InvalidJson,
                    format!("The JSON body is not valid: {e}."),
                )
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

/// The `{slug}` of a delete: any name the registry may hold
/// ([`Slug::registered`]), reserved words that an older version allowed
/// included, so that every registered link can be removed.
pub struct RegisteredSlugPath(pub Slug);

impl<S: Send + Sync> FromRequestParts<S> for RegisteredSlugPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        Slug::registered(&raw)
            .map(RegisteredSlugPath)
            .ok_or(AppError::NoLink)
    }
}
