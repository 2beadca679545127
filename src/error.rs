//! The one error type of the app, and its one mapping to HTTP.
//!
//! Every handler returns `Result<_, AppError>`. [`AppError::into_response`]
//! is the only place that picks a status and writes an error body:
//! `{"error": {"code": "<snake_case>", "message": "<human sentence>"}}`.
//! Internal errors are logged once with their cause chain, and the client
//! gets a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::storage::StoreError;

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
        message: String,
    },
    /// Nothing under that name (404).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// The link existed but has expired (410).
    #[error("{0}")]
    Gone(String),
    /// The body is larger than we accept (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
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

    /// The HTTP status and the snake_case code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Validation { code, .. } => (StatusCode::BAD_REQUEST, code),
            AppError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, code),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "slug_taken"),
            AppError::Gone(_) => (StatusCode::GONE, "link_expired"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AppError::StoreUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
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
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
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

    #[test]
    fn internal_errors_never_leak_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("disk /var/secret exploded"));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // The body is generic: checked end to end in tests/api.
    }

    #[test]
    fn each_kind_maps_to_its_status() {
        let cases = [
            (AppError::validation("x", "m"), 400),
            (
                AppError::Unauthorized {
                    code: "unauthorized",
                    message: "m".into(),
                },
                401,
            ),
            (AppError::NotFound("m".into()), 404),
            (AppError::Conflict("m".into()), 409),
            (AppError::Gone("m".into()), 410),
            (AppError::PayloadTooLarge("m".into()), 413),
            (AppError::UnsupportedMediaType("m".into()), 415),
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
}
