//! Tracing: attribute names, the request span, trace-context propagation.
//!
//! Spans are made with `tracing` and turned into OpenTelemetry spans by
//! `tracing-opentelemetry`; `otel.name`, `otel.kind` and `otel.status_code`
//! are its conventions for the span name, kind and status. Where the spans go
//! is the host's business: the Spin shell hands them to Spin over wasi:otel
//! (`crate::shell::otel`, converting with [`wasi_otel`]), the native tests
//! to an in-memory exporter.

// The wasm component without the `otel` feature must not carry the
// wasi:otel bindings (it would not load on a plain `spin up`).
#[cfg(any(not(target_arch = "wasm32"), feature = "otel"))]
pub mod wasi_otel;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Attribute names (OpenTelemetry semantic conventions, plus our own
/// `shortener.*` domain attributes) and fixed values.
pub mod attr {
    /// The database system (`sqlite`, or ours for Spin's key-value store).
    pub const DB_SYSTEM_NAME: &str = "db.system.name";
    /// The operation: `get`, `set`, ... for key-value, the SQL verb for SQLite.
    pub const DB_OPERATION_NAME: &str = "db.operation.name";
    /// The store / database label (`default`).
    pub const DB_NAMESPACE: &str = "db.namespace";
    /// The table a statement works on.
    pub const DB_COLLECTION_NAME: &str = "db.collection.name";
    /// The SQL text, with `?N` placeholders (never parameter values).
    pub const DB_QUERY_TEXT: &str = "db.query.text";
    /// A short error type on failure.
    pub const ERROR_TYPE: &str = "error.type";
    /// `GET`, `POST`, ...
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// The route template (`/{slug}`), never the concrete path.
    pub const HTTP_ROUTE: &str = "http.route";
    /// The status code answered.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// Redirect outcome: `hit`, `miss` or `expired`.
    pub const REDIRECT_OUTCOME: &str = "shortener.redirect.outcome";
    /// Who followed a link: `human` or `bot`.
    pub const VISITOR_KIND: &str = "shortener.visitor.kind";

    /// `db.system.name` of Spin's key-value store (no registered value exists).
    pub const DB_SYSTEM_KV: &str = "spin_key_value";
    /// `db.system.name` of SQLite (registered value).
    pub const DB_SYSTEM_SQLITE: &str = "sqlite";
}

/// Marks `span` as failed with a short `error.type` and a description.
pub fn record_error(span: &tracing::Span, error_type: &str, description: &str) {
    span.record(attr::ERROR_TYPE, error_type);
    span.record("otel.status_code", "error");
    span.record("otel.status_description", description);
}

/// The HTTP methods a span name or label may carry (the semantic
/// conventions' list); any other is [`OTHER_METHOD`].
pub const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// What an unknown method is recorded as (semantic conventions' `_OTHER`).
pub const OTHER_METHOD: &str = "_OTHER";

/// `method` if it is one of [`KNOWN_METHODS`], else `_OTHER`: a client can
/// send any token as a method, and each would be a new span name and a new
/// metrics series.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or(OTHER_METHOD)
}

/// The server span for one request, named `METHOD route-template` (the
/// method as [`method_label`] records it).
///
/// Trace context: the span continues the trace id of a valid W3C
/// `traceparent` in `headers` (from a tracing proxy), or starts a new trace.
/// It is always recorded, whatever the parent's sampled flag says (see
/// [`provider_builder`]): the public can reach the app without a proxy, and
/// must not be able to switch its spans off. Without a matched route
/// (`None`) the span is named by the method alone, as the HTTP semantic
/// conventions ask.
pub fn request_span(method: &str, route: Option<&str>, headers: &http::HeaderMap) -> tracing::Span {
    let method = method_label(method);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        { attr::HTTP_REQUEST_METHOD } = method,
        { attr::HTTP_ROUTE } = route,
        { attr::HTTP_RESPONSE_STATUS_CODE } = tracing::field::Empty,
        { attr::REDIRECT_OUTCOME } = tracing::field::Empty,
        { attr::VISITOR_KIND } = tracing::field::Empty,
        { attr::ERROR_TYPE } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Without a valid remote parent the span keeps its own new root context.
    let _ = span.set_parent(parent);
    span
}

/// Records the answered status on the request span; a 5xx marks it failed.
pub fn record_status(span: &tracing::Span, status: http::StatusCode) {
    span.record(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record(attr::ERROR_TYPE, status.as_str());
        span.record("otel.status_code", "error");
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The tracer provider builder every host uses. It samples every span
/// (`AlwaysOn`), ignoring a remote parent's sampled flag: the flag arrives
/// in a `traceparent` header that any client can send, and an unsampled one
/// would otherwise switch off the request span and all its storage spans
/// (and, with them, the span-derived click metrics). Volume is bounded by
/// the exporter's queue (`OTEL_BSP_MAX_QUEUE_SIZE`), not by the public.
/// The host adds its span processor (wasi:otel in Spin, in-memory in tests).
pub fn provider_builder() -> opentelemetry_sdk::trace::TracerProviderBuilder {
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    SdkTracerProvider::builder().with_sampler(Sampler::AlwaysOn)
}

/// The name of our instrumentation scope.
pub const SCOPE: &str = "shortener";

/// The `tracing` → OpenTelemetry layer, without the `code.*`, `thread.*`
/// and `target` attributes tracing-opentelemetry adds by default.
pub fn layer<S>(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use opentelemetry::trace::TracerProvider as _;
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
}
