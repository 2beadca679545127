//! Tracing: attribute names, the request span, trace-context propagation.
//!
//! Spans are made with `tracing` and turned into OpenTelemetry span records
//! by [`tracer::Tracer`], a `tracing` subscriber; `otel.name`, `otel.kind`
//! and `otel.status_code` are the conventions (tracing-opentelemetry's) for
//! the span name, kind and status. Where the records go is the host's
//! business: the Spin shell hands them to Spin over wasi:otel
//! (`crate::shell::otel`), the native tests keep them in memory.

// The wasm component without the `otel` feature must not carry the
// wasi:otel bindings (it would not load on a plain `spin up`).
#[cfg(any(not(target_arch = "wasm32"), feature = "otel"))]
pub mod tracer;
#[cfg(any(not(target_arch = "wasm32"), feature = "otel"))]
pub mod wasi_otel;

#[cfg(any(not(target_arch = "wasm32"), feature = "otel"))]
pub use tracer::{Exporter, Sampling, Tracer};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;

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
    /// Redirect outcome: `hit`, `miss`, `expired` or `exhausted`.
    pub const REDIRECT_OUTCOME: &str = "shortener.redirect.outcome";
    /// Who followed a link: `human` or `bot`.
    pub const VISITOR_KIND: &str = "shortener.visitor.kind";
    /// Whether a served redirect's click was written: `recorded`, or
    /// `unrecorded` (the click store failed; the click was tallied apart).
    pub const CLICK_OUTCOME: &str = "shortener.click.outcome";
    /// The id of the API key that called (`admin_token` for the bootstrap
    /// token); never the key's secret.
    pub const API_KEY_ID: &str = "shortener.api_key.id";
    /// [`CLICK_OUTCOME`] of a click written to the click database.
    pub const CLICK_RECORDED: &str = "recorded";
    /// [`CLICK_OUTCOME`] of a click written to the replica's outbox
    /// (`crate::outbox`), to be shipped to the click database.
    pub const CLICK_OUTBOXED: &str = "outboxed";
    /// [`CLICK_OUTCOME`] of a click the click database refused.
    pub const CLICK_UNRECORDED: &str = "unrecorded";

    /// `db.system.name` of Spin's key-value store (no registered value exists).
    pub const DB_SYSTEM_KV: &str = "spin_key_value";
    /// `db.system.name` of SQLite (registered value).
    pub const DB_SYSTEM_SQLITE: &str = "sqlite";
}

/// Marks `span` as failed with a short `error.type` and, if any, a
/// description. The one way a span fails: events never change a status
/// ([`Tracer`]), and the request span fails through [`record_status`].
pub fn fail(span: &tracing::Span, error_type: &str, description: Option<&str>) {
    span.record(attr::ERROR_TYPE, error_type);
    span.record("otel.status_code", "error");
    if let Some(description) = description {
        span.record("otel.status_description", description);
    }
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
/// `traceparent` in `headers` (from a tracing proxy), or starts a new trace
/// (the [`Tracer`] reads the parent's ids from `otel.parent_trace_id` and
/// `otel.parent_span_id`). Whether it is recorded is the tracer's decision
/// (`trace_sample_ratio`, by trace id), never the parent's sampled flag: the
/// public can reach the app without a proxy, and must not be able to switch
/// its spans off.
/// Without a matched route (`None`) the span is named by the method alone,
/// as the HTTP semantic conventions ask.
pub fn request_span(method: &str, route: Option<&str>, headers: &http::HeaderMap) -> tracing::Span {
    let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
    // No span would be made (no subscriber, or `trace_sample_ratio = 0`):
    // neither its name nor the `traceparent` is worth reading. (The
    // benchmark's ablation removes the span here too.)
    if crate::ablation::skip(crate::ablation::Part::RequestSpan)
        || !tracing::enabled!(tracing::Level::INFO)
    {
        return tracing::Span::none();
    }
    let method = method_label(method);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let (parent, trace_state) = remote_parent(headers).unzip();
    let (parent_trace_id, parent_span_id) = parent.unzip();
    tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.parent_trace_id = parent_trace_id,
        otel.parent_span_id = parent_span_id,
        otel.trace_state = trace_state.filter(|s| !s.is_empty()),
        { attr::HTTP_REQUEST_METHOD } = method,
        { attr::HTTP_ROUTE } = route,
        { attr::HTTP_RESPONSE_STATUS_CODE } = tracing::field::Empty,
        { attr::REDIRECT_OUTCOME } = tracing::field::Empty,
        { attr::VISITOR_KIND } = tracing::field::Empty,
        { attr::CLICK_OUTCOME } = tracing::field::Empty,
        { attr::API_KEY_ID } = tracing::field::Empty,
        { attr::ERROR_TYPE } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

/// The ids of the valid W3C `traceparent` in `headers` (trace id, span id),
/// with its `tracestate` header; `None` without a valid one.
/// (OpenTelemetry's own propagator parses it and decides what is valid.)
fn remote_parent(headers: &http::HeaderMap) -> Option<((u128, u64), String)> {
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let parent = context.span().span_context().clone();
    parent.is_valid().then(|| {
        (
            (
                u128::from_be_bytes(parent.trace_id().to_bytes()),
                u64::from_be_bytes(parent.span_id().to_bytes()),
            ),
            parent.trace_state().header(),
        )
    })
}

/// Records the answered status on the request span; a 5xx marks it failed.
pub fn record_status(span: &tracing::Span, status: http::StatusCode) {
    let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
    span.record(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16()));
    if status.is_server_error() {
        fail(span, status.as_str(), None);
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

/// The share of traces recorded (`trace_sample_ratio`): a number from 0
/// (none) to 1 (all, the default). A trace is kept by its id, as
/// OpenTelemetry's `TraceIdRatioBased` sampler keeps it: the same id gets
/// the same answer in every service that samples by the same ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRatio(f64);

impl SampleRatio {
    /// Every trace.
    pub const ALL: Self = Self(1.0);

    /// `raw` as a ratio: a decimal number from 0 to 1.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(Self(r)),
            _ => Err(format!("`{raw}` is not a number from 0 to 1")),
        }
    }

    /// The ratio.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Whether the trace `trace_id` is recorded: its low 53 bits, read as a
    /// fraction of 1, are under the ratio.
    pub fn keeps(self, trace_id: u128) -> bool {
        if self.0 >= 1.0 {
            return true;
        }
        let low = (trace_id as u64) >> 11;
        (low as f64) / ((1u64 << 53) as f64) < self.0
    }
}

/// The name of our instrumentation scope.
pub const SCOPE: &str = "shortener";

#[cfg(test)]
mod tests {
    use super::SampleRatio;

    #[test]
    fn a_ratio_is_a_number_from_zero_to_one() {
        for raw in ["0", "0.01", " 0.5 ", "1", "1.0"] {
            assert!(SampleRatio::parse(raw).is_ok(), "{raw}");
        }
        for raw in ["", "-0.1", "1.01", "50%", "NaN", "inf", "all"] {
            let e = SampleRatio::parse(raw).unwrap_err();
            assert!(e.contains("from 0 to 1"), "{raw}: {e}");
        }
    }

    #[test]
    fn a_trace_is_kept_by_its_id_all_at_one_none_at_zero() {
        let ratio = |r: &str| SampleRatio::parse(r).unwrap();
        let low = 0x0000_0000_0000_0000_0000_0000_0000_0800_u128;
        let high = 0x0000_0000_0000_0000_ffff_ffff_ffff_f800_u128;
        assert!(ratio("1").keeps(high) && ratio("1").keeps(low));
        assert!(!ratio("0").keeps(low) && !ratio("0").keeps(high));
        assert!(ratio("0.01").keeps(low) && !ratio("0.01").keeps(high));
        // About the ratio of random ids.
        let kept = (0..10_000u128)
            .filter(|i| {
                ratio("0.1").keeps(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            })
            .count();
        assert!((800..1200).contains(&kept), "{kept} of 10,000 at 0.1");
    }
}
