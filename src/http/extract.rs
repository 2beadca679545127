//! The extractors of the API: who is asking (`Key<Viewer>`, `Key<Editor>`,
//! `Key<Admin>`), and the body, query and path read into typed values. Each rejects with an [`AppError`], so no
//! handler writes an error body itself.

use std::marker::PhantomData;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request};
use axum::http::{Method, header, request::Parts};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::analytics::DayRange;
use crate::app::App;
use crate::error::{AppError, ErrorCode, Store};
use crate::keys::{self, Caller, Refusal, Role};
use crate::links::Slug;
use crate::telemetry::attr;

/// A role a route needs: [`Viewer`], [`Editor`] or [`Admin`].
pub trait Needs {
    /// The lowest role that may call the route.
    const ROLE: Role;
}

/// Reads: every `GET` under `/api`.
pub struct Viewer;
/// Writes to links (and imports).
pub struct Editor;
/// Keys.
pub struct Admin;

impl Needs for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Needs for Editor {
    const ROLE: Role = Role::Editor;
}
impl Needs for Admin {
    const ROLE: Role = Role::Admin;
}

/// Proof that the request carried a key (or the `admin_token`) whose role
/// can call a route that needs `R`: a 401 without one, a 403 naming the
/// role when it is not enough. The key's id goes on the request span
/// (`shortener.api_key.id`) and, for a write, in the log.
pub struct Key<R: Needs>(pub Caller, PhantomData<R>);

impl<R: Needs> FromRequestParts<App> for Key<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let caller = caller(parts, app).await?;
        tracing::Span::current().record(attr::API_KEY_ID, caller.key_id.as_str());
        if caller.role < R::ROLE {
            return Err(AppError::Forbidden {
                needed: R::ROLE,
                has: caller.role,
            });
        }
        if parts.method != Method::GET {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map_or("", MatchedPath::as_str);
            eprintln!(
                "shortener: {} {route} by key {}",
                parts.method, caller.key_id
            );
        }
        Ok(Key(caller, PhantomData))
    }
}

/// Who the bearer token is: an API key (`shk_...`), looked up on every
/// request, or the `admin_token`.
async fn caller(parts: &Parts, app: &App) -> Result<Caller, AppError> {
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if let Some(token) = presented.filter(|t| keys::is_key(t)) {
        return match keys::authenticate(app.sql.as_ref(), token, app.now()).await {
            Ok(Ok(caller)) => Ok(caller),
            Ok(Err(Refusal::Unknown)) => Err(AppError::Unauthorized {
                code: ErrorCode::Unauthorized,
                message: "The key is unknown or revoked.",
            }),
            Ok(Err(Refusal::Expired)) => Err(AppError::Unauthorized {
                code: ErrorCode::Unauthorized,
                message: "The key has expired.",
            }),
            Err(e) => Err(AppError::unavailable(Store::Keys, e)),
        };
    }
    let Some(expected) = app.settings.admin_token.as_deref() else {
        return Err(AppError::Unauthorized {
            code: ErrorCode::ApiDisabled,
            message: app.settings.api_disabled_reason,
        });
    };
    match presented {
        Some(token) if tokens_match(token, expected) => Ok(Caller {
            key_id: ADMIN_TOKEN_ID.to_owned(),
            role: Role::Admin,
        }),
        Some(_) => Err(AppError::Unauthorized {
            code: ErrorCode::Unauthorized,
            message: "The bearer token is wrong.",
        }),
        None => Err(AppError::Unauthorized {
            code: ErrorCode::Unauthorized,
            message: "Send `Authorization: Bearer <key>` (an API key or the admin_token).",
        }),
    }
}

/// The key id recorded for the bootstrap `admin_token`.
pub const ADMIN_TOKEN_ID: &str = "admin_token";

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

/// `?from=&to=`: a range of UTC days (stats, orphan visits).
#[derive(serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::IntoParams))]
#[cfg_attr(not(target_arch = "wasm32"), into_params(parameter_in = Query))]
pub(crate) struct DayRangeQuery {
    /// First day, `YYYY-MM-DD` (UTC); open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; open when absent.
    #[cfg_attr(not(target_arch = "wasm32"), param(format = Date))]
    to: Option<String>,
}

impl DayRangeQuery {
    /// The range, validated.
    pub(crate) fn range(&self) -> Result<DayRange, AppError> {
        Ok(DayRange::parse(self.from.as_deref(), self.to.as_deref())?)
    }
}
