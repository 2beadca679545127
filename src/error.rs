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
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::analytics::DayRangeError;
use crate::links::LinkError;
use crate::storage::StoreError;
use crate::transfer::{MAX_IMPORT_BYTES, TransferError};

/// Largest JSON body accepted (enforced with axum's `DefaultBodyLimit`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Declares [`ErrorCode`]: each variant with its wire text.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// Every `error.code` the API answers with: the one list, so that
        /// clients (the console's sentences among them) can be checked
        /// against it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire text: a stable snake_case word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

error_codes! {
    /// 400: a target that is no absolute http(s) URL, or too long.
    InvalidUrl => "invalid_url",
    /// 400: a target that points back at this shortener.
    SelfReferencingUrl => "self_referencing_url",
    /// 400: a slug outside `[A-Za-z0-9_-]{3,64}`.
    InvalidSlug => "invalid_slug",
    /// 400: a slug that is a reserved word.
    ReservedSlug => "reserved_slug",
    /// 400: a timestamp that is not RFC 3339.
    InvalidTimestamp => "invalid_timestamp",
    /// 400: an expiry that is not in the future.
    InvalidExpiry => "invalid_expiry",
    /// 400: a body that is no JSON object of the right shape.
    InvalidJson => "invalid_json",
    /// 400: a query string that does not parse.
    InvalidQuery => "invalid_query",
    /// 400: a page size out of range.
    InvalidLimit => "invalid_limit",
    /// 400: a cursor this API did not return.
    InvalidCursor => "invalid_cursor",
    /// 400: a search text that is too long.
    InvalidSearch => "invalid_search",
    /// 400: a day that is not `YYYY-MM-DD`.
    InvalidDate => "invalid_date",
    /// 400: `from` after `to`.
    InvalidDateRange => "invalid_date_range",
    /// 400: a PATCH that changes nothing.
    EmptyPatch => "empty_patch",
    /// 400: a key name that is empty, too long or not printable.
    InvalidName => "invalid_name",
    /// 400: a role other than `viewer`, `editor`, `admin`.
    InvalidRole => "invalid_role",
    // Export and import (`transfer`).
    /// 400: an export `format` other than `csv`, `json`.
    InvalidFormat => "invalid_format",
    /// 400: an import `source` we do not read.
    InvalidSource => "invalid_source",
    /// 400: an import body that is not its source's format.
    InvalidImport => "invalid_import",
    /// 400: a redirect rule that is not valid.
    InvalidRule => "invalid_rule",
    /// 400: a `max_clicks` below 1.
    InvalidMaxClicks => "invalid_max_clicks",
    /// 401: no or a wrong bearer token.
    Unauthorized => "unauthorized",
    /// 401: the API is disabled (no usable `admin_token`).
    ApiDisabled => "api_disabled",
    /// 403: the key's role cannot do this.
    Forbidden => "forbidden",
    /// 404: no such link or route.
    NotFound => "not_found",
    /// 405: the route does not answer this method.
    MethodNotAllowed => "method_not_allowed",
    /// 409: the custom slug is taken.
    SlugTaken => "slug_taken",
    /// 410: the link has expired.
    LinkExpired => "link_expired",
    /// 410: the link has had its `max_clicks`.
    LinkExhausted => "link_exhausted",
    /// 413: the body is too large.
    PayloadTooLarge => "payload_too_large",
    /// 415: the body is not JSON.
    UnsupportedMediaType => "unsupported_media_type",
    /// 500: the component's variables were refused.
    Misconfigured => "misconfigured",
    /// 500: a stored link record does not decode (logged and counted).
    CorruptRecord => "corrupt_record",
    /// 500: something failed on our side (logged, not sent).
    Internal => "internal",
    /// 503: a store the request needs is down.
    StoreUnavailable => "store_unavailable",
    // --- tags and sorted lists ---
    /// 400: tags that are not an array of at most 10 `[a-z0-9-]{1,32}`.
    InvalidTag => "invalid_tag",
    /// 400: a list `sort` other than `created`, `clicks`, `slug`.
    InvalidSort => "invalid_sort",
    /// 400: a list `order` other than `asc`, `desc`.
    InvalidOrder => "invalid_order",
    /// 400: a `sort=clicks` cursor older than the click log keeps.
    CursorExpired => "cursor_expired",
    /// 409: a tag rename onto a tag that exists.
    TagTaken => "tag_taken",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

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

/// A store a request can find down, as a 503 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The key-value store of link records.
    Links,
    /// The SQLite click database.
    Clicks,
    /// The SQLite tally of unrecorded clicks.
    Tally,
    /// The API keys (in the click database).
    Keys,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Links => "link store (key-value)",
            Store::Clicks => "click store (SQLite)",
            Store::Tally => "unrecorded-clicks tally (SQLite)",
            Store::Keys => "key store (SQLite)",
        })
    }
}

/// What can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or a field is invalid (400).
    #[error("{message}")]
    Validation {
        /// e.g. [`ErrorCode::InvalidUrl`].
        code: ErrorCode,
        /// A human sentence.
        message: String,
    },
    /// No or a wrong bearer token, or no token configured (401).
    #[error("{message}")]
    Unauthorized {
        /// [`ErrorCode::Unauthorized`] or [`ErrorCode::ApiDisabled`].
        code: ErrorCode,
        /// A human sentence.
        message: &'static str,
    },
    /// The key's role cannot do this (403).
    #[error("This needs the {} role; this key is {}.", .needed.as_str(), .has.as_str())]
    Forbidden {
        /// The lowest role that may.
        needed: crate::keys::Role,
        /// The caller's.
        has: crate::keys::Role,
    },
    /// No link under that slug, or the slug is not one (404).
    #[error("No link has that slug.")]
    NoLink,
    /// No API key with that id (404).
    #[error("No key has that id.")]
    NoKey,
    /// No route matches the path (404).
    #[error("No such route.")]
    NoRoute,
    /// The route exists but not for this method (405).
    #[error("This method is not allowed on this route.")]
    MethodNotAllowed,
    /// The name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// No link has that tag (404).
    #[error("No link has that tag.")]
    NoTag,
    /// A tag rename onto a tag that exists (409).
    #[error("{0}")]
    TagTaken(String),
    /// The link existed but has expired (410).
    #[error("This link has expired.")]
    Gone,
    /// The link has had all the clicks its `max_clicks` allows (410).
    #[error("This link has reached its click limit.")]
    Exhausted,
    /// The body is larger than we accept (413).
    #[error("The body is larger than {} KiB.", MAX_BODY_BYTES / 1024)]
    PayloadTooLarge,
    /// An import body over [`MAX_IMPORT_BYTES`] (413).
    #[error("The import is larger than {} MiB.", MAX_IMPORT_BYTES / (1024 * 1024))]
    ImportTooLarge,
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
    /// `/health` found a store down or a variable refused (503); the body is
    /// the health report itself, not an error body.
    #[error("unhealthy: {}", .0.status)]
    Unhealthy(Box<crate::health::Health>),
    /// A store the request needs is down (503), e.g. Redis for a redirect:
    /// the message names it; the cause is logged, not sent.
    #[error("The {store} is unavailable; try again shortly.")]
    StoreUnavailable {
        /// What the client is told is down.
        store: Store,
        /// What the host said.
        #[source]
        source: StoreError,
    },
    /// A store did not answer within its bound (`kv_timeout_ms`,
    /// `click_db_timeout_ms`): 503, try again; the cause is logged, not sent.
    #[error("A store did not answer in time; try again shortly.")]
    StoreTimedOut(#[source] StoreError),
}

impl AppError {
    /// A 400 with `code` and `message`.
    pub fn validation(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Validation {
            code,
            message: message.into(),
        }
    }

    /// A 503 naming `store`; `source` is logged, never sent.
    pub fn unavailable(store: Store, source: StoreError) -> Self {
        AppError::StoreUnavailable { store, source }
    }

    /// A 500 whose cause is logged and never sent.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    /// The HTTP status and the code of this error.
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        use ErrorCode as C;
        match self {
            AppError::Validation { code, .. } => (StatusCode::BAD_REQUEST, *code),
            AppError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, *code),
            AppError::Forbidden { .. } => (StatusCode::FORBIDDEN, C::Forbidden),
            AppError::NoLink | AppError::NoKey | AppError::NoRoute => {
                (StatusCode::NOT_FOUND, C::NotFound)
            }
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, C::MethodNotAllowed),
            AppError::Conflict(_) => (StatusCode::CONFLICT, C::SlugTaken),
            AppError::NoTag => (StatusCode::NOT_FOUND, C::NotFound),
            AppError::TagTaken(_) => (StatusCode::CONFLICT, C::TagTaken),
            AppError::Gone => (StatusCode::GONE, C::LinkExpired),
            AppError::Exhausted => (StatusCode::GONE, C::LinkExhausted),
            AppError::PayloadTooLarge | AppError::ImportTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, C::PayloadTooLarge)
            }
            AppError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, C::UnsupportedMediaType)
            }
            AppError::Misconfigured(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::Misconfigured),
            AppError::CorruptRecord => (StatusCode::INTERNAL_SERVER_ERROR, C::CorruptRecord),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::Internal),
            AppError::StoreUnavailable { .. }
            | AppError::StoreTimedOut(_)
            | AppError::Unhealthy(_) => (StatusCode::SERVICE_UNAVAILABLE, C::StoreUnavailable),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if e.timed_out() {
            AppError::StoreTimedOut(e)
        } else {
            AppError::internal(e)
        }
    }
}

impl From<LinkError> for AppError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::SlugTaken(_) => AppError::Conflict(e.to_string()),
            LinkError::TagTaken(_) => AppError::TagTaken(e.to_string()),
            LinkError::Store(store) => store.into(),
            LinkError::CorruptRecord { .. } => AppError::CorruptRecord,
            LinkError::NoFreeSlug { .. } => AppError::internal(e),
            invalid => AppError::validation(invalid.code(), invalid.to_string()),
        }
    }
}

impl From<crate::keys::KeyError> for AppError {
    fn from(e: crate::keys::KeyError) -> Self {
        use crate::keys::KeyError;
        match e {
            KeyError::Store(store) => store.into(),
            KeyError::Expiry(link) => link.into(),
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
                    ErrorCode::InvalidJson,
                    format!("The JSON body is not valid: {}.", deepest_cause(&rejection)),
                )
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            other => AppError::validation(
                ErrorCode::InvalidJson,
                format!("The body could not be read: {}.", other.body_text()),
            ),
        }
    }
}

impl From<TransferError> for AppError {
    fn from(e: TransferError) -> Self {
        AppError::validation(e.code(), e.to_string())
    }
}

/// The rejection of the raw body extractor, which only the import reads
/// (under its own `DefaultBodyLimit` of [`MAX_IMPORT_BYTES`]).
impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::ImportTooLarge
        } else {
            AppError::validation(
                ErrorCode::InvalidImport,
                format!("The body could not be read: {}.", rejection.body_text()),
            )
        }
    }
}

/// The rejection of the query-string extractor (`http::ValidQuery`).
impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::validation(
            ErrorCode::InvalidQuery,
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
        if let AppError::Unhealthy(report) = self {
            // The causes were logged by the probes; the report names what
            // failed and never carries a cause.
            return (status, Json(*report)).into_response();
        }
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
            AppError::StoreUnavailable { source, .. } | AppError::StoreTimedOut(source) => {
                eprintln!("shortener: store unavailable: {source}");
                tracing::error!(error = %source, "store unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.as_str().to_owned(),
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
    async fn a_store_that_did_not_answer_in_time_is_a_503_to_retry_without_its_cause() {
        let timed_out = StoreError::new(
            StoreError::TIMEOUT,
            "the click database did not answer within 300 ms at 10.0.0.7",
        );
        let response = AppError::from(timed_out).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "store_unavailable");
        assert!(!body.to_string().contains("10.0.0.7"), "{body}");
        let other = StoreError::new("io", "no such table: clicks");
        let (status, body) = body_of(AppError::from(other)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
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
            (AppError::validation(ErrorCode::InvalidUrl, "m"), 400),
            (
                AppError::Unauthorized {
                    code: ErrorCode::Unauthorized,
                    message: "m",
                },
                401,
            ),
            (
                AppError::Forbidden {
                    needed: crate::keys::Role::Editor,
                    has: crate::keys::Role::Viewer,
                },
                403,
            ),
            (AppError::NoLink, 404),
            (AppError::NoKey, 404),
            (AppError::NoRoute, 404),
            (AppError::MethodNotAllowed, 405),
            (AppError::Conflict("m".into()), 409),
            (AppError::NoTag, 404),
            (AppError::TagTaken("m".into()), 409),
            (AppError::Gone, 410),
            (AppError::PayloadTooLarge, 413),
            (AppError::UnsupportedMediaType, 415),
            (AppError::Misconfigured("m".into()), 500),
            (AppError::CorruptRecord, 500),
            (AppError::Internal(anyhow::anyhow!("m")), 500),
            (
                AppError::unavailable(Store::Links, StoreError::new("io", "m")),
                503,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status_and_code().0.as_u16(), status);
        }
    }

    #[test]
    fn every_error_code_is_a_distinct_snake_case_word() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.starts_with(|c: char| c.is_ascii_lowercase())
                    && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
        }
    }

    #[test]
    fn unauthorized_answers_name_the_bearer_scheme() {
        let response = AppError::Unauthorized {
            code: ErrorCode::Unauthorized,
            message: "m",
        }
        .into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
