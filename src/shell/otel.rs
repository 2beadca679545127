//! wasm shell of the tracing bridge: sends every span of the `tracing`
//! crate to the host through `wasi:otel/tracing@0.2.0-rc.2`.
//!
//! Compile only for `target_arch = "wasm32"` with the `otel` feature: a
//! component importing `wasi:otel` loads only under
//! `spin up --experimental-wasi-otel`.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::Span as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};

use crate::telemetry::wasi_records::{
    DatetimeRecord, EventRecord, InstrumentationScopeRecord, KeyValueRecord, LinkRecord,
    SpanContextRecord, SpanDataRecord, SpanKindRecord, StatusRecord, span_context_record,
    span_data_record,
};

mod bindings {
    // `path` is relative to the crate root (CARGO_MANIFEST_DIR); the main
    // crate keeps this WIT under "src/shell/wit".
    ::spin_sdk::wit_bindgen::generate!({
        runtime_path: "::spin_sdk::wit_bindgen::rt",
        path: "src/shell/wit",
        world: "otel-bridge",
        generate_all,
    });
}

use bindings::wasi::clocks::wall_clock::Datetime;
use bindings::wasi::otel::tracing as wit;
use bindings::wasi::otel::types::{InstrumentationScope, KeyValue};

/// The provider lives for the whole instance; dropping it would shut it
/// down and silently stop `on_end` calls.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the bridge once per instance (later calls are no-ops): a tracer
/// provider exporting through [`WasiOtelProcessor`] and a global `tracing`
/// subscriber feeding it (INFO and above). The core extracts `traceparent`
/// itself (`telemetry::request_span`), so no global propagator is needed.
pub fn init() {
    PROVIDER.get_or_init(|| {
        let provider = crate::telemetry::provider_builder()
            .with_span_processor(WasiOtelProcessor)
            .build();
        let layer = crate::telemetry::layer(&provider).with_filter(LevelFilter::INFO);
        // Fails only if another global subscriber was installed first.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        provider
    });
}

/// Forwards span starts and ends to the host, synchronously.
///
/// The SDK calls `on_start` for every recording span before its `on_end`,
/// which is exactly the host's contract (an `on-end` without an earlier
/// `on-start` for that span traps the guest). Sampled-out spans get neither.
#[derive(Debug, Default)]
pub struct WasiOtelProcessor;

impl SpanProcessor for WasiOtelProcessor {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        wit::on_start(&span_context_record(span.span_context()).into());
    }

    fn on_end(&self, span: SpanData) {
        wit::on_end(&span_data_record(&span).into());
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

// Mirror records -> generated WIT types, field by field.

impl From<SpanDataRecord> for wit::SpanData {
    fn from(r: SpanDataRecord) -> Self {
        Self {
            span_context: r.span_context.into(),
            parent_span_id: r.parent_span_id,
            span_kind: r.span_kind.into(),
            name: r.name,
            start_time: r.start_time.into(),
            end_time: r.end_time.into(),
            attributes: key_values(r.attributes),
            events: r.events.into_iter().map(Into::into).collect(),
            links: r.links.into_iter().map(Into::into).collect(),
            status: r.status.into(),
            instrumentation_scope: r.instrumentation_scope.into(),
            dropped_attributes: r.dropped_attributes,
            dropped_events: r.dropped_events,
            dropped_links: r.dropped_links,
        }
    }
}

impl From<SpanContextRecord> for wit::SpanContext {
    fn from(r: SpanContextRecord) -> Self {
        Self {
            trace_id: r.trace_id,
            span_id: r.span_id,
            trace_flags: if r.trace_flags.sampled {
                wit::TraceFlags::SAMPLED
            } else {
                wit::TraceFlags::empty()
            },
            is_remote: r.is_remote,
            trace_state: r.trace_state,
        }
    }
}

impl From<SpanKindRecord> for wit::SpanKind {
    fn from(kind: SpanKindRecord) -> Self {
        match kind {
            SpanKindRecord::Client => Self::Client,
            SpanKindRecord::Server => Self::Server,
            SpanKindRecord::Producer => Self::Producer,
            SpanKindRecord::Consumer => Self::Consumer,
            SpanKindRecord::Internal => Self::Internal,
        }
    }
}

impl From<StatusRecord> for wit::Status {
    fn from(status: StatusRecord) -> Self {
        match status {
            StatusRecord::Unset => Self::Unset,
            StatusRecord::Ok => Self::Ok,
            StatusRecord::Error(description) => Self::Error(description),
        }
    }
}

impl From<EventRecord> for wit::Event {
    fn from(r: EventRecord) -> Self {
        Self {
            name: r.name,
            time: r.time.into(),
            attributes: key_values(r.attributes),
        }
    }
}

impl From<LinkRecord> for wit::Link {
    fn from(r: LinkRecord) -> Self {
        Self {
            span_context: r.span_context.into(),
            attributes: key_values(r.attributes),
        }
    }
}

impl From<InstrumentationScopeRecord> for InstrumentationScope {
    fn from(r: InstrumentationScopeRecord) -> Self {
        Self {
            name: r.name,
            version: r.version,
            schema_url: r.schema_url,
            attributes: key_values(r.attributes),
        }
    }
}

impl From<DatetimeRecord> for Datetime {
    fn from(r: DatetimeRecord) -> Self {
        Self {
            seconds: r.seconds,
            nanoseconds: r.nanoseconds,
        }
    }
}

fn key_values(records: Vec<KeyValueRecord>) -> Vec<KeyValue> {
    records
        .into_iter()
        .map(|r| KeyValue {
            key: r.key,
            value: r.value,
        })
        .collect()
}
