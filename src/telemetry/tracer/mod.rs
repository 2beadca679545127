//! The `tracing` subscriber that makes OpenTelemetry spans: each span of the
//! `tracing` crate becomes a `wasi:otel` span record ([`wit::SpanData`]),
//! handed to an [`Exporter`] when it starts and when it ends.
//!
//! It replaces `tracing-subscriber` + `tracing-opentelemetry` + the
//! OpenTelemetry SDK, which built an SDK span per `tracing` span and then
//! converted it into the same record: about 95 KB of component and a share
//! of the guest's CPU per span, for features (sampling, batching, limits,
//! links) the host already has or we do not use. What it keeps of their
//! conventions:
//! - `otel.name`, `otel.kind`, `otel.status_code` and
//!   `otel.status_description` name the span, give its kind and status;
//!   every other field is an attribute (recorded again: replaced).
//! - A span's parent is its explicit parent, else the current span; a span
//!   without one continues the remote parent in `otel.parent_trace_id` and
//!   `otel.parent_span_id` (the `traceparent` ids as numbers, both
//!   non-zero, with its `otel.trace_state`), else starts a new trace. Every
//!   span is sampled.
//! - An event inside a span becomes a span event named by its message, with
//!   `level`, `target` and its fields as attributes. Events never change a
//!   span's status: a span fails only through `otel.status_code`
//!   ([`crate::telemetry::fail`]). Events outside spans are dropped. Only
//!   `INFO` and above is recorded.
//!
//! The state is one map of open spans behind a mutex, and a per-thread
//! stack of entered spans; no lock is held while the exporter runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use super::SCOPE;
use super::wasi_otel::{
    InstrumentationScope, KeyValue, NO_SPAN, bool_json, datetime, f64_json, int_json, span_id_hex,
    string_json, trace_id_hex, wit,
};

/// Where finished spans go: the host over wasi:otel in Spin, memory in tests.
pub trait Exporter: Send + Sync + 'static {
    /// A span has started (the host's contract: before its [`on_end`](Self::on_end)).
    fn on_start(&self, context: &wit::SpanContext);
    /// A span has ended.
    fn on_end(&self, span: wit::SpanData);
}

/// The subscriber; install it with `tracing::subscriber::set_global_default`
/// (or `set_default` in a test).
pub struct Tracer {
    open: Mutex<HashMap<u64, Open>>,
    exporter: Box<dyn Exporter>,
}

/// A started span: its record so far, and how many `tracing` handles
/// (`Span` clones) still refer to it.
struct Open {
    handles: usize,
    metadata: &'static Metadata<'static>,
    data: wit::SpanData,
    status: Status,
}

/// `otel.status_code` and `otel.status_description` as recorded so far.
#[derive(Default)]
struct Status {
    code: Option<wit::Status>,
    description: Option<String>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Tracer {
    /// A subscriber exporting to `exporter`, as our instrumentation scope
    /// ([`SCOPE`]).
    pub fn new(exporter: impl Exporter) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            exporter: Box::new(exporter),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        // A panic elsewhere must not switch tracing off for the instance.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The innermost entered span of this thread that is one of ours.
    fn current(&self, open: &HashMap<u64, Open>) -> Option<u64> {
        ENTERED.with(|entered| {
            entered
                .borrow()
                .iter()
                .rev()
                .copied()
                .find(|id| open.contains_key(id))
        })
    }

    /// A new span id: random, never zero, never one already open.
    fn new_span_id(open: &HashMap<u64, Open>) -> u64 {
        loop {
            let id = rand::random::<u64>();
            if id != 0 && !open.contains_key(&id) {
                return id;
            }
        }
    }
}

/// A random trace id, never zero.
fn new_trace_id() -> u128 {
    loop {
        let id = rand::random::<u128>();
        if id != 0 {
            return id;
        }
    }
}

impl Subscriber for Tracer {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let metadata = attrs.metadata();
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let now = datetime(SystemTime::now());

        let mut open = self.open();
        let local_parent = match attrs.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if attrs.is_contextual() => self.current(&open),
            None => None,
        };
        // A child takes its parent's trace (ids already in hex); a root the
        // remote parent's, or a new one.
        let (trace_id, parent_span_id, trace_state) =
            match local_parent.and_then(|id| open.get(&id)) {
                Some(parent) => (
                    parent.data.span_context.trace_id.clone(),
                    parent.data.span_context.span_id.clone(),
                    parent.data.span_context.trace_state.clone(),
                ),
                None => match fields.remote_parent() {
                    Some((trace_id, span_id)) => (
                        trace_id_hex(trace_id),
                        span_id_hex(span_id),
                        fields.trace_state.take().unwrap_or_default(),
                    ),
                    None => (trace_id_hex(new_trace_id()), NO_SPAN.to_owned(), Vec::new()),
                },
            };
        let span_id = Self::new_span_id(&open);
        let data = wit::SpanData {
            span_context: wit::SpanContext {
                trace_id,
                span_id: span_id_hex(span_id),
                trace_flags: wit::TraceFlags::SAMPLED,
                is_remote: false,
                trace_state,
            },
            parent_span_id,
            span_kind: fields.kind.unwrap_or(wit::SpanKind::Internal),
            name: fields.name.unwrap_or_else(|| metadata.name().to_owned()),
            start_time: now,
            end_time: now,
            attributes: fields.attributes,
            events: Vec::new(),
            links: Vec::new(),
            status: wit::Status::Unset,
            instrumentation_scope: InstrumentationScope {
                name: SCOPE.to_owned(),
                version: None,
                schema_url: None,
                attributes: Vec::new(),
            },
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        };
        let context = data.span_context.clone();
        open.insert(
            span_id,
            Open {
                handles: 1,
                metadata,
                data,
                status: fields.status,
            },
        );
        drop(open);
        self.exporter.on_start(&context);
        Id::from_u64(span_id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut open = self.open();
        let Some(span) = open.get_mut(&span.into_u64()) else {
            return;
        };
        if let Some(name) = fields.name {
            span.data.name = name;
        }
        if let Some(kind) = fields.kind {
            span.data.span_kind = kind;
        }
        fields.status.apply_to(&mut span.status);
        for kv in fields.attributes {
            match span.data.attributes.iter_mut().find(|a| a.key == kv.key) {
                Some(existing) => existing.value = kv.value,
                None => span.data.attributes.push(kv),
            }
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut open = self.open();
        let target = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => self.current(&open),
            None => None,
        };
        // Events outside any span of ours have nowhere to go.
        let Some(span) = target.and_then(|id| open.get_mut(&id)) else {
            return;
        };
        let mut attributes = vec![
            KeyValue {
                key: "level".to_owned(),
                value: string_json(metadata.level().as_str()),
            },
            KeyValue {
                key: "target".to_owned(),
                value: string_json(metadata.target()),
            },
        ];
        attributes.extend(fields.attributes);
        span.data.events.push(wit::Event {
            name: fields.message.unwrap_or_else(|| metadata.name().to_owned()),
            time: datetime(SystemTime::now()),
            attributes,
        });
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|e| *e == id) {
                entered.remove(at);
            }
        });
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(open) = self.open().get_mut(&span.into_u64()) {
            open.handles += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let id = span.into_u64();
        let mut open = self.open();
        let Some(entry) = open.get_mut(&id) else {
            return false;
        };
        entry.handles -= 1;
        if entry.handles > 0 {
            return false;
        }
        let Open {
            mut data, status, ..
        } = open.remove(&id).expect("the entry just found");
        drop(open);
        data.end_time = datetime(SystemTime::now());
        data.status = status.finish();
        self.exporter.on_end(data);
        true
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let open = self.open();
        match self
            .current(&open)
            .and_then(|id| open.get(&id).map(|o| (id, o)))
        {
            Some((id, span)) => tracing_core::span::Current::new(Id::from_u64(id), span.metadata),
            None => tracing_core::span::Current::none(),
        }
    }
}

impl Status {
    /// Takes over what a later record set.
    fn apply_to(self, status: &mut Status) {
        if self.code.is_some() {
            status.code = self.code;
        }
        if self.description.is_some() {
            status.description = self.description;
        }
    }

    /// The span's final status; an error carries the recorded description.
    fn finish(self) -> wit::Status {
        match self.code {
            Some(wit::Status::Error(text)) => wit::Status::Error(self.description.unwrap_or(text)),
            Some(code) => code,
            None => wit::Status::Unset,
        }
    }
}

/// The fields of a span: `otel.*` conventions apart, attributes as JSON.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    kind: Option<wit::SpanKind>,
    status: Status,
    parent_trace_id: u128,
    parent_span_id: u64,
    trace_state: Option<Vec<(String, String)>>,
    attributes: Vec<KeyValue>,
}

impl Fields {
    fn special(&mut self, field: &Field, value: &str) -> bool {
        match field.name() {
            "otel.name" => self.name = Some(value.to_owned()),
            "otel.kind" => self.kind = span_kind(value),
            "otel.status_code" => self.status.code = status_code(value),
            "otel.status_description" => self.status.description = Some(value.to_owned()),
            "otel.trace_state" => self.trace_state = Some(trace_state(value)),
            _ => return false,
        }
        true
    }

    /// The remote parent's ids, when both were recorded and non-zero.
    fn remote_parent(&self) -> Option<(u128, u64)> {
        (self.parent_trace_id != 0 && self.parent_span_id != 0)
            .then_some((self.parent_trace_id, self.parent_span_id))
    }

    fn attribute(&mut self, field: &Field, value: String) {
        self.attributes.push(KeyValue {
            key: field.name().to_owned(),
            value,
        });
    }
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attribute(field, bool_json(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attribute(field, int_json(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "otel.parent_span_id" {
            self.parent_span_id = value;
            return;
        }
        self.attribute(field, int_json(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.attribute(field, int_json(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        if field.name() == "otel.parent_trace_id" {
            self.parent_trace_id = value;
            return;
        }
        match i128::try_from(value) {
            Ok(value) => self.attribute(field, int_json(value)),
            Err(_) => self.attribute(field, string_json(&value.to_string())),
        }
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attribute(field, f64_json(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field, value) {
            self.attribute(field, string_json(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = debug_text(value);
        if !self.special(field, &text) {
            self.attribute(field, string_json(&text));
        }
    }
}

/// The fields of an event: its message apart, attributes as JSON.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attributes.push(KeyValue {
                key: field.name().to_owned(),
                value: string_json(value),
            });
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &debug_text(value));
    }
}

fn debug_text(value: &dyn fmt::Debug) -> String {
    let mut text = String::new();
    let _ = write!(text, "{value:?}");
    text
}

fn span_kind(value: &str) -> Option<wit::SpanKind> {
    Some(match value.to_ascii_lowercase().as_str() {
        "server" => wit::SpanKind::Server,
        "client" => wit::SpanKind::Client,
        "producer" => wit::SpanKind::Producer,
        "consumer" => wit::SpanKind::Consumer,
        "internal" => wit::SpanKind::Internal,
        _ => return None,
    })
}

fn status_code(value: &str) -> Option<wit::Status> {
    Some(match value.to_ascii_lowercase().as_str() {
        "error" => wit::Status::Error(String::new()),
        "ok" => wit::Status::Ok,
        "unset" => wit::Status::Unset,
        _ => return None,
    })
}

/// A W3C `tracestate` header (`k1=v1,k2=v2`) as its pairs.
fn trace_state(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|entry| entry.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests;
