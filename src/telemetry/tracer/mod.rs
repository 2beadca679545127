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
//!   non-zero, with its `otel.trace_state`), else starts a new trace.
//! - A trace is recorded or not as a whole: its root decides by its trace
//!   id and the [`Sampling`] ratio (the operator's `trace_sample_ratio`,
//!   all by default; never the remote parent's sampled flag), and every
//!   span under it follows. A span of a trace not recorded costs a map
//!   entry: no fields are read, nothing goes to the exporter.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use super::wasi_otel::{
    InstrumentationScope, KeyValue, bool_json, datetime, f64_json, int_json, span_id_hex,
    string_json, trace_id_hex, wit,
};
use super::{SCOPE, SampleRatio};

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
    sampling: Sampling,
}

/// The share of traces a [`Tracer`] records, which may be set after the
/// tracer is installed (the shell reads it with the Spin variables, after
/// the subscriber must already be in place). All until set.
#[derive(Clone)]
pub struct Sampling(Arc<AtomicU64>);

impl Default for Sampling {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(SampleRatio::ALL.get().to_bits())))
    }
}

impl Sampling {
    /// Records `ratio` of the traces from now on.
    pub fn set(&self, ratio: SampleRatio) {
        self.0.store(ratio.get().to_bits(), Ordering::Relaxed);
    }

    /// The ratio in force.
    pub fn ratio(&self) -> SampleRatio {
        SampleRatio(f64::from_bits(self.0.load(Ordering::Relaxed)))
    }
}

/// A started span: how many `tracing` handles (`Span` clones) still refer
/// to it, and its record so far (`None`: its trace is not recorded).
struct Open {
    handles: usize,
    metadata: &'static Metadata<'static>,
    record: Option<Recorded>,
}

/// What is known of a recorded span.
struct Recorded {
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
            sampling: Sampling::default(),
        }
    }

    /// Where the share of traces this tracer records is set.
    pub fn sampling(&self) -> Sampling {
        self.sampling.clone()
    }

    /// Whether the span `id` is open and recorded.
    fn recorded(&self, id: u64) -> bool {
        self.open().get(&id).is_some_and(|o| o.record.is_some())
    }

    /// Opens an unrecorded span (its trace is not sampled).
    fn open_unrecorded(
        &self,
        open: &mut HashMap<u64, Open>,
        metadata: &'static Metadata<'static>,
    ) -> Id {
        let span_id = Self::new_span_id(open);
        open.insert(
            span_id,
            Open {
                handles: 1,
                metadata,
                record: None,
            },
        );
        Id::from_u64(span_id)
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
        if *metadata.level() <= Level::INFO {
            // Asked again at every hit (`enabled`): whether a span or event
            // is made depends on the trace it would belong to.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    /// Nothing at all is made (no field evaluated, no span opened) at ratio
    /// 0, nor inside a span whose trace is not recorded: only a trace's
    /// root is made to decide it.
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if *metadata.level() > Level::INFO || self.sampling.ratio().get() <= 0.0 {
            return false;
        }
        let open = self.open();
        self.current(&open)
            .and_then(|id| open.get(&id))
            .is_none_or(|span| span.record.is_some())
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        let metadata = attrs.metadata();
        let local_parent = {
            let mut open = self.open();
            let local_parent = match attrs.parent() {
                Some(parent) => Some(parent.into_u64()),
                None if attrs.is_contextual() => self.current(&open),
                None => None,
            };
            match local_parent.and_then(|id| open.get(&id)) {
                // A child of a span whose trace is not recorded is not
                // either: its fields are never read.
                Some(parent) if parent.record.is_none() => {
                    return self.open_unrecorded(&mut open, metadata);
                }
                Some(_) => local_parent,
                None => None,
            }
        };
        // A root decides its trace by the trace id (the remote parent's, or
        // a new one) before any other field is read; with every trace kept
        // there is nothing to decide, and the ids come with the fields.
        let root = match local_parent {
            Some(_) => None,
            None if self.sampling.ratio().get() >= 1.0 => None,
            None => {
                let mut remote = Fields::ids_only();
                attrs.record(&mut remote);
                let (trace_id, parent_span_id) =
                    remote.remote_parent().unwrap_or((new_trace_id(), 0));
                if !self.sampling.ratio().keeps(trace_id) {
                    return self.open_unrecorded(&mut self.open(), metadata);
                }
                Some((trace_id, parent_span_id))
            }
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let now = datetime(SystemTime::now());

        let mut open = self.open();
        // A child takes its parent's trace (ids already in hex); a root the
        // one it decided, else the remote parent's, else a new one (also a
        // child whose parent closed meanwhile).
        let parent = local_parent
            .and_then(|id| open.get(&id))
            .and_then(|parent| parent.record.as_ref());
        let (trace_id, parent_span_id, trace_state) = match parent {
            Some(parent) => (
                parent.data.span_context.trace_id.clone(),
                parent.data.span_context.span_id.clone(),
                parent.data.span_context.trace_state.clone(),
            ),
            None => {
                let (trace_id, parent_span_id) = root
                    .or(fields.remote_parent())
                    .unwrap_or((new_trace_id(), 0));
                (
                    trace_id_hex(trace_id),
                    span_id_hex(parent_span_id),
                    fields.trace_state.take().unwrap_or_default(),
                )
            }
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
                record: Some(Recorded {
                    data,
                    status: fields.status,
                }),
            },
        );
        drop(open);
        self.exporter.on_start(&context);
        Id::from_u64(span_id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        if !self.recorded(span.into_u64()) {
            return;
        }
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut open = self.open();
        let Some(span) = open
            .get_mut(&span.into_u64())
            .and_then(|o| o.record.as_mut())
        else {
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
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        let metadata = event.metadata();
        let target = {
            let open = self.open();
            match event.parent() {
                Some(parent) => Some(parent.into_u64()),
                None if event.is_contextual() => self.current(&open),
                None => None,
            }
        };
        // Events outside any recorded span of ours have nowhere to go.
        let Some(target) = target.filter(|id| self.recorded(*id)) else {
            return;
        };
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut open = self.open();
        let Some(span) = open.get_mut(&target).and_then(|o| o.record.as_mut()) else {
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
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        let id = span.into_u64();
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|e| *e == id) {
                entered.remove(at);
            }
        });
    }

    fn clone_span(&self, span: &Id) -> Id {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        if let Some(open) = self.open().get_mut(&span.into_u64()) {
            open.handles += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
        let id = span.into_u64();
        let mut open = self.open();
        let Some(entry) = open.get_mut(&id) else {
            return false;
        };
        entry.handles -= 1;
        if entry.handles > 0 {
            return false;
        }
        let Some(Recorded { mut data, status }) = open.remove(&id).and_then(|o| o.record) else {
            return true;
        };
        drop(open);
        data.end_time = datetime(SystemTime::now());
        data.status = status.finish();
        self.exporter.on_end(data);
        true
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let _profiled = crate::profile::stage(crate::profile::Stage::Tracer);
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
    /// Only the remote parent's ids are read (a root's sampling decision):
    /// nothing else is formatted.
    ids_only: bool,
    name: Option<String>,
    kind: Option<wit::SpanKind>,
    status: Status,
    parent_trace_id: u128,
    parent_span_id: u64,
    trace_state: Option<Vec<(String, String)>>,
    attributes: Vec<KeyValue>,
}

impl Fields {
    fn ids_only() -> Self {
        Self {
            ids_only: true,
            ..Self::default()
        }
    }

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
        if self.ids_only {
            return;
        }
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
        if !self.ids_only && !self.special(field, value) {
            self.attribute(field, string_json(value));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.ids_only {
            return;
        }
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
