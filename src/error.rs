//! The one error type of the app, and its one mapping to HTTP.
//!
//! Every handler, extractor rejection and fallback returns an [`AppError`];
//! [`AppError::into_response`] is the only place that picks a status and
//! writes an error body:
//! `{"error": {"code": "<snake_case>", "message": "<human sentence>"}}`.
//! Domain errors ([`LinkError`], [`DayRangeError`]) and axum's own
//! rejections (JSON body, query string, path) become an `AppError` through
//! `From`. Internal errors are logged once with their cause chain, and the
//! client gets a generic message.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::analytics::DayRangeError;
use crate::links::LinkError;
use crate::storage::StoreError;

/// Largest JSON body accepted (enforced with axum's `DefaultBodyLimit`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every error answer of the app (written by `AppError::into_response`).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The code and message of an error.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `invalid_url`, `unauthorized`, `not_found`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(pattern = "^[a-z][a-z_]*$", example = "invalid_url")
    )]
    pub code: String,
    /// A human sentence; never a cause chain.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(example = "Only http and https URLs can be shortened.")
    )]
    pub message: String,
}

/// What can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or a field is invalid (400).
    #[error("{message}")]
    Validation {
        /// snake_case code, e.g. `invalid_url`.
        code: &'static str,
        /// A human sentence.
        message: String,
    },
    /// No or a wrong bearer token, or no token configured (401).
    #[error("{message}")]
    Unauthorized {
        /// `unauthorized` or `api_disabled`.
        code: &'static str,
        /// A human sentence.
        message: &'static str,
    },
    /// No link under that slug, or the slug is not one (404).
    #[error("No link has that slug.")]
    NoLink,
    /// No route matches the path (404).
    #[error("No such route.")]
    NoRoute,
    /// The route exists but not for this method (405).
    #[error("This method is not allowed on this route.")]
    MethodNotAllowed,
    /// The name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// The link existed but has expired (410).
    #[error("This link has expired.")]
    Gone,
    /// The body is larger than we accept (413).
    #[error("The body is larger than {} KiB.", MAX_BODY_BYTES / 1024)]
    PayloadTooLarge,
    /// The body is not JSON (415).
    #[error("Send the body as JSON with `Content-Type: application/json`.")]
    UnsupportedMediaType,
    /// The component's variables were refused (500); the message names the
    /// variable and is safe to send.
    #[error("{0}")]
    Misconfigured(String),
    /// The link's stored record does not decode (500). Its first sighting was
    /// logged and counted where it was read (`links::Links::get`); the
    /// decoder's complaint is never sent.
    #[error(
        "The stored record of this link is corrupt; it has been logged. Delete the link and create it again."
    )]
    CorruptRecord,
    /// A required store is not usable (500); the cause is logged, not sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A store the request needs is down (503), e.g. Redis for a redirect:
    /// the message names it; the cause is logged, not sent.
    #[error("The {store} is unavailable; try again shortly.")]
    StoreUnavailable {
        /// What the client is told is down, e.g. `link store (key-value)`.
        store: &'static str,
        /// What the host said.
        #[source]
        source: StoreError,
    },
}

impl AppError {
    /// A 400 with `code` and `message`.
    pub fn validation(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            code,
            message: message.into(),
        }
    }

    /// A 500 whose cause is logged and never sent.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    /// The HTTP status and the snake_case code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Validation { code, .. } => (StatusCode::BAD_REQUEST, code),
            AppError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            AppError::NoLink | AppError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "slug_taken"),
            AppError::Gone => (StatusCode::GONE, "link_expired"),
            AppError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::Misconfigured(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
            AppError::CorruptRecord => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_record"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AppError::StoreUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::internal(e)
    }
}

impl From<LinkError> for AppError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::SlugTaken(_) => AppError::Conflict(e.to_string()),
            LinkError::Store(store) => store.into(),
            LinkError::CorruptRecord { .. } => AppError::CorruptRecord,
            LinkError::NoFreeSlug { .. } => AppError::internal(e),
            invalid => AppError::validation(invalid.code(), invalid.to_string()),
        }
    }
}

impl From<DayRangeError> for AppError {
    fn from(e: DayRangeError) -> Self {
        AppError::validation(e.code(), e.to_string())
    }
}

/// The rejection of the JSON body extractor (`http::JsonBody`).
impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
            JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
                AppError::validation(
                    "invalid_json",
                    format!("The JSON body is not valid: {}.", deepest_cause(&rejection)),
                )
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            other => AppError::validation(
                "invalid_json",
                format!("The body could not be read: {}.", other.body_text()),
            ),
        }
    }
}

/// The rejection of the query-string extractor (`http::ValidQuery`).
impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::validation(
            "invalid_query",
            format!(
                "The query string is not valid: {}.",
                deepest_cause(&rejection)
            ),
        )
    }
}

/// A path parameter that does not decode is no slug, so no link.
impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        AppError::NoLink
    }
}

/// The innermost error of a rejection (serde's own message).
fn deepest_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            AppError::Internal(cause) => {
                // Logged once, here, with the whole chain; never sent. stderr
                // is Spin's log (exported as OTLP logs); the event also lands
                // on the request span.
                let chain = format!("{cause:#}");
                eprintln!("shortener: request failed: {chain}");
                tracing::error!(error = chain, "request failed");
                "Something went wrong on our side; it has been logged.".to_owned()
            }
            AppError::StoreUnavailable { source, .. } => {
                eprintln!("shortener: store unavailable: {source}");
                tracing::error!(error = %source, "store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body_of(err: AppError) -> (StatusCode, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_never_leak_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("disk /var/secret exploded"));
        let (status, body) = body_of(err).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        let text = body.to_string();
        assert!(
            !text.contains("secret") && !text.contains("exploded"),
            "{text}"
        );
        assert_eq!(
            body["error"]["message"],
            "Something went wrong on our side; it has been logged."
        );
    }

    #[tokio::test]
    async fn every_error_body_carries_its_code_and_message() {
        let cases = [
            (AppError::NoLink, 404, "not_found", "No link has that slug."),
            (AppError::NoRoute, 404, "not_found", "No such route."),
            (
                AppError::MethodNotAllowed,
                405,
                "method_not_allowed",
                "This method is not allowed on this route.",
            ),
            (
                AppError::Gone,
                410,
                "link_expired",
                "This link has expired.",
            ),
            (
                AppError::PayloadTooLarge,
                413,
                "payload_too_large",
                "The body is larger than 16 KiB.",
            ),
            (
                LinkError::SlugTaken(crate::links::Slug::parse("abc").unwrap()).into(),
                409,
                "slug_taken",
                "The slug `abc` is already taken.",
            ),
            (
                DayRangeError::Inverted.into(),
                400,
                "invalid_date_range",
                "`from` must not be after `to`.",
            ),
            (
                AppError::Misconfigured("invalid Spin variable `x`: y".into()),
                500,
                "misconfigured",
                "invalid Spin variable `x`: y",
            ),
            (
                LinkError::CorruptRecord {
                    slug: "abc".into(),
                    reason: "expected value at line 1".into(),
                }
                .into(),
                500,
                "corrupt_record",
                "The stored record of this link is corrupt; it has been logged. Delete the link and create it again.",
            ),
        ];
        for (err, status, code, message) in cases {
            let (got_status, body) = body_of(err).await;
            assert_eq!(got_status.as_u16(), status, "{code}");
            assert_eq!(
                body,
                json!({"error": {"code": code, "message": message}}),
                "{code}"
            );
        }
    }

    #[test]
    fn each_kind_maps_to_its_status() {
        let cases = [
            (AppError::validation("x", "m"), 400),
            (
                AppError::Unauthorized {
                    code: "unauthorized",
                    message: "m",
                },
                401,
            ),
            (AppError::NoLink, 404),
            (AppError::NoRoute, 404),
            (AppError::MethodNotAllowed, 405),
            (AppError::Conflict("m".into()), 409),
            (AppError::Gone, 410),
            (AppError::PayloadTooLarge, 413),
            (AppError::UnsupportedMediaType, 415),
            (AppError::Misconfigured("m".into()), 500),
            (AppError::CorruptRecord, 500),
            (AppError::Internal(anyhow::anyhow!("m")), 500),
            (
                AppError::StoreUnavailable {
                    store: "link store",
                    source: StoreError::new("io", "m"),
                },
                503,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status_and_code().0.as_u16(), status);
        }
    }

    #[test]
    fn unauthorized_answers_name_the_bearer_scheme() {
        let response = AppError::Unauthorized {
            code: "unauthorized",
            message: "m",
        }
        .into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
