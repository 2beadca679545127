//! wasm shell of the tracing bridge: sends every span of the `tracing`
//! crate to the host through `wasi:otel/tracing@0.2.0-rc.2`. The records are
//! built by the tested, host-agnostic `telemetry::Tracer`; this file only
//! installs it and makes the two host calls.
//!
//! Compile only for `target_arch = "wasm32"` with the `otel` feature: a
//! component importing `wasi:otel` loads only under
//! `spin up --experimental-wasi-otel`.

use std::sync::OnceLock;

use crate::telemetry::wasi_otel::wit;
use crate::telemetry::{Exporter, SampleRatio, Sampling, Tracer};

/// Where the installed tracer's share of traces is set.
static SAMPLING: OnceLock<Sampling> = OnceLock::new();

/// Installs the bridge as the global `tracing` subscriber, once per
/// instance (later calls are no-ops). The core extracts `traceparent`
/// itself (`telemetry::request_span`).
pub fn init() {
    SAMPLING.get_or_init(|| {
        let tracer = Tracer::new(WasiOtel);
        let sampling = tracer.sampling();
        // Fails only if another global subscriber was installed first.
        let _ = tracing::subscriber::set_global_default(tracer);
        sampling
    });
}

/// Records `ratio` of the traces from now on (`trace_sample_ratio`, read
/// with the instance's settings, after the tracer had to be in place).
pub fn sample(ratio: SampleRatio) {
    if let Some(sampling) = SAMPLING.get() {
        sampling.set(ratio);
    }
}

/// Hands span starts and ends to the host, synchronously. The tracer calls
/// `on_start` for every span before its `on_end`, which is exactly the
/// host's contract (an `on-end` without an earlier `on-start` for that span
/// traps the guest).
struct WasiOtel;

impl Exporter for WasiOtel {
    fn on_start(&self, context: &wit::SpanContext) {
        let _profiled = crate::profile::stage(crate::profile::Stage::OtelCalls);
        wit::on_start(context);
    }

    fn on_end(&self, span: wit::SpanData) {
        let _profiled = crate::profile::stage(crate::profile::Stage::OtelCalls);
        wit::on_end(&span);
    }
}
