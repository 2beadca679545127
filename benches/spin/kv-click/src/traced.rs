//! The traced floor's three spans, handed to Spin over
//! `wasi:otel/tracing@0.2.0-rc.2` (the WIT the product's bridge uses). Each
//! span costs what a span must: an `on-start`, an `on-end` with its
//! attributes as JSON text, and fresh random ids. Nothing else: no
//! subscriber, no `tracing` crate, no per-request allocation beyond the
//! records.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    path: "../../../wit",
    world: "otel-bridge",
    generate_all,
});

use wasi::clocks::wall_clock::Datetime;
use wasi::otel::tracing::{self as otel, SpanContext, SpanData, SpanKind, Status, TraceFlags};
use wasi::otel::types::{InstrumentationScope, KeyValue};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_nanos() as u64) | 1
}

/// xorshift64*: ids need only be unique, not secret.
fn next() -> u64 {
    RNG.with(|rng| {
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

fn now() -> Datetime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Datetime {
        seconds: since.as_secs(),
        nanoseconds: since.subsec_nanos(),
    }
}

fn json(s: &str) -> String {
    format!("\"{s}\"")
}

/// A started span.
pub struct Span {
    context: SpanContext,
    parent: String,
    kind: SpanKind,
    name: &'static str,
    start: Datetime,
    attributes: Vec<KeyValue>,
}

impl Span {
    fn start(
        trace_id: String,
        parent: String,
        kind: SpanKind,
        name: &'static str,
        attributes: &[(&str, &str)],
    ) -> Self {
        let context = SpanContext {
            trace_id,
            span_id: format!("{:016x}", next()),
            trace_flags: TraceFlags::SAMPLED,
            is_remote: false,
            trace_state: Vec::new(),
        };
        otel::on_start(&context);
        Self {
            context,
            parent,
            kind,
            name,
            start: now(),
            attributes: attributes
                .iter()
                .map(|(k, v)| KeyValue {
                    key: (*k).to_owned(),
                    value: json(v),
                })
                .collect(),
        }
    }

    /// The request's server span (a root: the benchmark sends no
    /// `traceparent`), with `http.request.method` and `http.route`.
    pub fn server(name: &'static str, method_route: &[&str; 2]) -> Self {
        let trace_id = format!("{:016x}{:016x}", next(), next());
        let attributes = [
            ("http.request.method", method_route[0]),
            ("http.route", method_route[1]),
        ];
        Self::start(
            trace_id,
            "0000000000000000".to_owned(),
            SpanKind::Server,
            name,
            &attributes,
        )
    }

    fn child(&self, name: &'static str, attributes: &[(&str, &str)]) -> Self {
        let parent = self.context.span_id.clone();
        Self::start(
            self.context.trace_id.clone(),
            parent,
            SpanKind::Client,
            name,
            attributes,
        )
    }

    /// The key-value get's client span.
    pub fn kv_get(parent: &Self) -> Self {
        parent.child(
            "kv.get",
            &[
                ("db.system.name", "spin-key-value"),
                ("db.operation.name", "get"),
                ("db.namespace", "default"),
            ],
        )
    }

    /// The INSERT's client span.
    pub fn sqlite_insert(parent: &Self, sql: &str) -> Self {
        parent.child(
            "INSERT clicks",
            &[
                ("db.system.name", "sqlite"),
                ("db.operation.name", "INSERT"),
                ("db.namespace", "default"),
                ("db.collection.name", "clicks"),
                ("db.query.text", sql),
            ],
        )
    }

    /// Ends the span with `more` attributes (integers, as JSON numbers).
    pub fn end(self, more: &[(&str, String)]) {
        let mut attributes = self.attributes;
        attributes.extend(more.iter().map(|(k, v)| KeyValue {
            key: (*k).to_owned(),
            value: v.clone(),
        }));
        otel::on_end(&SpanData {
            span_context: self.context,
            parent_span_id: self.parent,
            span_kind: self.kind,
            name: self.name.to_owned(),
            start_time: self.start,
            end_time: now(),
            attributes,
            events: Vec::new(),
            links: Vec::new(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope {
                name: "bench-kv-click".to_owned(),
                version: None,
                schema_url: None,
                attributes: Vec::new(),
            },
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        });
    }
}
