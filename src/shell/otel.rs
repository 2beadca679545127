//! wasm shell of the tracing bridge: sends every span of the `tracing`
//! crate to the host through `wasi:otel/tracing@0.2.0-rc.2`. The records are
//! built by the tested, host-agnostic `telemetry::wasi_otel`; this file only
//! installs the provider and makes the two host calls.
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

use crate::telemetry::wasi_otel::{span_context, span_data, wit};

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
        wit::on_start(&span_context(span.span_context()));
    }

    fn on_end(&self, span: SpanData) {
        wit::on_end(&span_data(&span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
