//! OpenTelemetry spans converted straight into the generated
//! `wasi:otel/tracing@0.2.0-rc.2` records that the Spin shell hands to the
//! host (`crate::shell::otel`).
//!
//! The bindings are generated here, from the WIT in `wit/`, on every target:
//! wit-bindgen's output compiles natively too (only calling its imports,
//! `wit::on_start` / `wit::on_end`, would be unreachable there), so the
//! conversion is tested natively on the very types the component sends.
//! The one wit-bindgen crate is also the one spin-sdk re-exports, so a single
//! runtime is linked.
//!
//! Encoding rules, matched to Spin's host side (`spin-world`'s
//! `wasi_otel::{trace,common}_conversions`, used by `spin-factor-otel`):
//! - ids: the host parses them with `TraceId::from_hex` / `SpanId::from_hex`
//!   (`u128`/`u64::from_str_radix(_, 16)`), so padded and unpadded hex are
//!   both accepted and anything unparsable becomes the invalid (zero) id. We
//!   send the canonical W3C form: 32 / 16 lowercase hex digits, zero-padded
//!   (a root span's parent is `"0000000000000000"`). The host itself emits
//!   *unpadded* hex (`"0"` for none); we never read ids back from it.
//! - attribute values: the host runs `serde_json::from_str` and **panics** on
//!   failure. It accepts a bool, an integer that fits in i64, a float, a
//!   string, or a *homogeneous* array of those, typed by its first element
//!   (an integer first element makes an i64 array, so floats always keep
//!   their `.0`/exponent). `null` and objects are refused. Non-finite floats,
//!   which JSON cannot express, are therefore sent as strings (`"NaN"`,
//!   `"Infinity"`, `"-Infinity"`), and a float array holding one becomes an
//!   array of strings.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event as OtelEvent, Link as OtelLink, SpanContext as OtelSpanContext, SpanId,
    SpanKind as OtelSpanKind, Status as OtelStatus, TraceId, TraceState,
};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::SpanData as OtelSpanData;

mod bindings {
    wit_bindgen::generate!({
        // Relative to the crate root (CARGO_MANIFEST_DIR).
        path: "wit",
        world: "otel-bridge",
        generate_all,
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::wasi::clocks::wall_clock::Datetime;
/// The `wasi:otel/tracing` records and the host calls (`on_start`, `on_end`).
pub use bindings::wasi::otel::tracing as wit;
pub use bindings::wasi::otel::types::{InstrumentationScope, KeyValue};

use wit::{Event, Link, SpanContext, SpanData, SpanKind, Status, TraceFlags};

/// A finished span as the record passed to `tracing::on-end`.
pub fn span_data(data: &OtelSpanData) -> SpanData {
    SpanData {
        span_context: span_context(&data.span_context),
        parent_span_id: span_id_hex(data.parent_span_id),
        span_kind: span_kind(&data.span_kind),
        name: data.name.to_string(),
        start_time: datetime(data.start_time),
        end_time: datetime(data.end_time),
        attributes: key_values(&data.attributes),
        events: data.events.iter().map(event).collect(),
        links: data.links.iter().map(link).collect(),
        status: status(&data.status),
        instrumentation_scope: instrumentation_scope(&data.instrumentation_scope),
        dropped_attributes: data.dropped_attributes_count,
        dropped_events: data.events.dropped_count,
        dropped_links: data.links.dropped_count,
    }
}

/// A span context as the record passed to `tracing::on-start`.
pub fn span_context(cx: &OtelSpanContext) -> SpanContext {
    SpanContext {
        trace_id: trace_id_hex(cx.trace_id()),
        span_id: span_id_hex(cx.span_id()),
        trace_flags: if cx.is_sampled() {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::empty()
        },
        is_remote: cx.is_remote(),
        trace_state: trace_state(cx.trace_state()),
    }
}

/// A trace id as 32 lowercase hex digits.
pub fn trace_id_hex(id: TraceId) -> String {
    format!("{id:032x}")
}

/// A span id as 16 lowercase hex digits (all zeros for "no span").
pub fn span_id_hex(id: SpanId) -> String {
    format!("{id:016x}")
}

/// A `SystemTime` as seconds + nanoseconds since the epoch (clamped to the
/// epoch for earlier times rather than panicking).
pub fn datetime(time: SystemTime) -> Datetime {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Datetime {
        seconds: since_epoch.as_secs(),
        nanoseconds: since_epoch.subsec_nanos(),
    }
}

/// Attribute value as the JSON text the host expects (see module docs).
pub fn value_json(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::I64(i) => i.to_string(),
        Value::F64(f) => f64_json(*f),
        Value::String(s) => string_json(s.as_str()),
        Value::Array(array) => array_json(array),
        // `Value` is non-exhaustive: anything new goes over as its text.
        other => string_json(&other.to_string()),
    }
}

fn array_json(array: &Array) -> String {
    match array {
        Array::Bool(values) => json_list(values.iter().map(bool::to_string)),
        Array::I64(values) => json_list(values.iter().map(i64::to_string)),
        Array::F64(values) if values.iter().all(|f| f.is_finite()) => {
            json_list(values.iter().map(|f| f64_json(*f)))
        }
        // Arrays must stay homogeneous for the host: all strings then.
        Array::F64(values) => json_list(values.iter().map(|f| string_json(&f64_text(*f)))),
        Array::String(values) => json_list(values.iter().map(|s| string_json(s.as_str()))),
        other => string_json(&other.to_string()),
    }
}

fn json_list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

/// A finite float as a JSON number that always reads back as a float
/// (`1.0`, `1e300`); a non-finite one as a JSON string.
fn f64_json(f: f64) -> String {
    if f.is_finite() {
        serde_json::to_string(&f).expect("finite f64 serializes")
    } else {
        string_json(&f64_text(f))
    }
}

/// Text for a float; non-finite values use the proto3 JSON spellings.
fn f64_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "Infinity".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".to_owned()
    } else {
        f64_json(f)
    }
}

/// A JSON string literal (quoted, with `"`, `\` and control characters escaped).
fn string_json(s: &str) -> String {
    serde_json::to_string(s).expect("str serializes")
}

fn key_values(attributes: &[opentelemetry::KeyValue]) -> Vec<KeyValue> {
    attributes.iter().map(key_value).collect()
}

fn key_value(kv: &opentelemetry::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.as_str().to_owned(),
        value: value_json(&kv.value),
    }
}

fn span_kind(kind: &OtelSpanKind) -> SpanKind {
    match kind {
        OtelSpanKind::Client => SpanKind::Client,
        OtelSpanKind::Server => SpanKind::Server,
        OtelSpanKind::Producer => SpanKind::Producer,
        OtelSpanKind::Consumer => SpanKind::Consumer,
        OtelSpanKind::Internal => SpanKind::Internal,
    }
}

fn status(status: &OtelStatus) -> Status {
    match status {
        OtelStatus::Unset => Status::Unset,
        OtelStatus::Ok => Status::Ok,
        OtelStatus::Error { description } => Status::Error(description.to_string()),
    }
}

fn event(event: &OtelEvent) -> Event {
    Event {
        name: event.name.to_string(),
        time: datetime(event.timestamp),
        attributes: key_values(&event.attributes),
    }
}

fn link(link: &OtelLink) -> Link {
    Link {
        span_context: span_context(&link.span_context),
        attributes: key_values(&link.attributes),
    }
}

fn instrumentation_scope(scope: &opentelemetry::InstrumentationScope) -> InstrumentationScope {
    InstrumentationScope {
        name: scope.name().to_owned(),
        version: scope.version().map(str::to_owned),
        schema_url: scope.schema_url().map(str::to_owned),
        attributes: scope.attributes().map(key_value).collect(),
    }
}

/// `TraceState` has no iterator; its W3C header (`k1=v1,k2=v2`) is split
/// back into pairs. Neither `,` nor `=` may occur in keys or values.
fn trace_state(state: &TraceState) -> Vec<(String, String)> {
    state
        .header()
        .split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{InstrumentationScope as WitScope, KeyValue as WitKeyValue};
    use opentelemetry::trace::{Event, Link, SpanContext, SpanKind, Status, TraceFlags};
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_sdk::trace::SpanData;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::borrow::Cow;
    use std::time::Duration;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn cx(trace: &str, span: &str, sampled: bool, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from_hex(trace).unwrap(),
            SpanId::from_hex(span).unwrap(),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            remote,
            TraceState::default(),
        )
    }

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn json(v: impl Into<Value>) -> String {
        value_json(&v.into())
    }

    /// Mirrors what Spin's host accepts (`OwnedValue` deserializer): a bool,
    /// i64, f64 or string, or an array typed by its first element.
    fn assert_host_accepts(text: &str) {
        use serde_json::Value as J;
        let parsed: J =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"));
        match &parsed {
            J::Bool(_) | J::String(_) => {}
            J::Number(n) => assert!(n.is_i64() || n.is_f64(), "{text}: u64 > i64::MAX"),
            J::Array(items) => {
                let Some(first) = items.first() else { return };
                let same: fn(&J) -> bool = match first {
                    J::Bool(_) => |v| v.is_boolean(),
                    J::Number(n) if n.is_i64() => |v| v.is_i64(),
                    J::Number(n) if n.is_f64() => |v| v.is_f64(),
                    J::String(_) => |v| v.is_string(),
                    _ => panic!("{text}: unsupported array element"),
                };
                assert!(items.iter().all(same), "{text}: mixed array");
            }
            J::Null | J::Object(_) => panic!("{text}: host refuses null/objects"),
        }
    }

    fn sample_span() -> SpanData {
        SpanData {
            span_context: cx(TRACE, SPAN, true, false),
            parent_span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("GET /items"),
            start_time: at(1_700_000_000, 123_456_789),
            end_time: at(1_700_000_001, 5),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", 200_i64),
            ],
            dropped_attributes_count: 3,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("otel-bridge")
                .with_version("0.1.0")
                .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
                .with_attributes([KeyValue::new("scope.attr", true)])
                .build(),
        }
    }

    #[test]
    fn ids_are_padded_lowercase_hex() {
        let record = span_context(&cx(
            "00000000000000000000000000000abc",
            "000000000000000f",
            true,
            false,
        ));
        assert_eq!(record.trace_id, "00000000000000000000000000000abc");
        assert_eq!(record.span_id, "000000000000000f");

        let record = span_context(&cx(&TRACE.to_uppercase(), SPAN, true, false));
        assert_eq!(record.trace_id, TRACE);
        assert_eq!(record.span_id, SPAN);
        assert_eq!(trace_id_hex(TraceId::INVALID), "0".repeat(32));
        assert_eq!(span_id_hex(SpanId::INVALID), "0".repeat(16));
    }

    #[test]
    fn ids_round_trip_through_the_host_parser() {
        // The host reads ids with `from_hex`, so what we send parses back.
        let record = span_context(&cx(TRACE, SPAN, true, false));
        assert_eq!(
            TraceId::from_hex(&record.trace_id).unwrap(),
            TraceId::from_hex(TRACE).unwrap()
        );
        assert_eq!(
            SpanId::from_hex(&record.span_id).unwrap(),
            SpanId::from_hex(SPAN).unwrap()
        );
    }

    #[test]
    fn span_contexts_carry_the_sampled_flag_remoteness_and_trace_state() {
        let state = TraceState::from_key_value([("vendor", "v1"), ("other", "x-y")]).unwrap();
        let context = SpanContext::new(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            true,
            state,
        );
        let record = span_context(&context);
        assert!(record.trace_flags.contains(wit::TraceFlags::SAMPLED));
        assert!(record.is_remote);
        assert_eq!(
            record.trace_state,
            vec![
                ("vendor".into(), "v1".into()),
                ("other".into(), "x-y".into())
            ]
        );

        let unsampled = span_context(&cx(TRACE, SPAN, false, false));
        assert!(!unsampled.trace_flags.contains(wit::TraceFlags::SAMPLED));
        assert!(!unsampled.is_remote);
        assert!(unsampled.trace_state.is_empty());
    }

    #[test]
    fn scalar_values_are_json_the_host_reads_back() {
        assert_eq!(json(true), "true");
        assert_eq!(json(false), "false");
        assert_eq!(json(0_i64), "0");
        assert_eq!(json(-42_i64), "-42");
        assert_eq!(json(i64::MAX), "9223372036854775807");
        assert_eq!(json(i64::MIN), "-9223372036854775808");
        assert_eq!(json(1.5_f64), "1.5");
        assert_eq!(json(1.0_f64), "1.0"); // stays a float for the host
        assert_eq!(json(-0.0_f64), "-0.0");
        // Exponent spelling is serde_json's choice (`1e+300` today): only
        // require a float that reads back exactly.
        let big: serde_json::Value = serde_json::from_str(&json(1e300_f64)).unwrap();
        assert_eq!(big.as_f64(), Some(1e300));
        assert!(big.is_f64());
        assert_eq!(json("plain"), r#""plain""#);
        for text in ["true", "-42", "1.0", "1e+300", r#""plain""#] {
            assert_host_accepts(text);
        }
        let one: serde_json::Value = serde_json::from_str(&json(1.0_f64)).unwrap();
        assert!(one.is_f64());
    }

    #[test]
    fn non_finite_floats_become_strings() {
        assert_eq!(json(f64::NAN), r#""NaN""#);
        assert_eq!(json(f64::INFINITY), r#""Infinity""#);
        assert_eq!(json(f64::NEG_INFINITY), r#""-Infinity""#);
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_host_accepts(&json(f));
        }
    }

    #[test]
    fn strings_are_escaped() {
        let cases = [
            ("say \"hi\"", r#""say \"hi\"""#),
            ("back\\slash", r#""back\\slash""#),
            ("line1\nline2\r\t", r#""line1\nline2\r\t""#),
            ("\u{0}\u{1f}", r#""\u0000\u001f""#),
            ("héllo ✓ 😀", "\"héllo ✓ 😀\""),
            ("</script>", r#""</script>""#),
            ("", r#""""#),
        ];
        for (input, expected) in cases {
            let out = json(input);
            assert_eq!(out, expected, "for {input:?}");
            assert_host_accepts(&out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn arrays_are_homogeneous_json_lists() {
        let cases: Vec<(Array, &str)> = vec![
            (Array::Bool(vec![true, false]), "[true,false]"),
            (Array::I64(vec![1, -2, 3]), "[1,-2,3]"),
            (Array::F64(vec![1.0, 2.5, -0.125]), "[1.0,2.5,-0.125]"),
            (
                Array::String(vec!["a\"b".into(), "c\nd".into()]),
                r#"["a\"b","c\nd"]"#,
            ),
            (Array::I64(vec![]), "[]"),
            (Array::String(vec![]), "[]"),
        ];
        for (array, expected) in cases {
            let out = json(Value::Array(array));
            assert_eq!(out, expected);
            assert_host_accepts(&out);
        }
    }

    #[test]
    fn float_array_with_non_finite_stays_homogeneous() {
        let out = json(Value::Array(Array::F64(vec![
            1.0,
            f64::NAN,
            f64::NEG_INFINITY,
            0.25,
        ])));
        assert_eq!(out, r#"["1.0","NaN","-Infinity","0.25"]"#);
        assert_host_accepts(&out);
    }

    #[test]
    fn every_span_kind_maps_to_its_wit_kind() {
        let pairs = [
            (SpanKind::Client, wit::SpanKind::Client),
            (SpanKind::Server, wit::SpanKind::Server),
            (SpanKind::Producer, wit::SpanKind::Producer),
            (SpanKind::Consumer, wit::SpanKind::Consumer),
            (SpanKind::Internal, wit::SpanKind::Internal),
        ];
        for (kind, expected) in pairs {
            let mut span = sample_span();
            span.span_kind = kind;
            assert_eq!(span_data(&span).span_kind, expected);
        }
    }

    #[test]
    fn statuses_keep_their_error_description() {
        assert_eq!(status(&Status::Unset), wit::Status::Unset);
        assert_eq!(status(&Status::Ok), wit::Status::Ok);
        assert_eq!(
            status(&Status::error("db \"down\"")),
            wit::Status::Error("db \"down\"".into())
        );
    }

    #[test]
    fn timestamps_are_seconds_and_nanos_since_the_epoch_never_before_it() {
        assert_eq!(
            datetime(at(1_700_000_000, 999_999_999)),
            Datetime {
                seconds: 1_700_000_000,
                nanoseconds: 999_999_999
            }
        );
        assert_eq!(
            datetime(UNIX_EPOCH),
            Datetime {
                seconds: 0,
                nanoseconds: 0
            }
        );
        let before_epoch = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            datetime(before_epoch),
            Datetime {
                seconds: 0,
                nanoseconds: 0
            }
        );
    }

    #[test]
    fn every_span_data_field_is_carried_over() {
        let record = span_data(&sample_span());
        assert_eq!(record.span_context.trace_id, TRACE);
        assert_eq!(record.span_context.span_id, SPAN);
        assert_eq!(record.parent_span_id, "b7ad6b7169203331");
        assert_eq!(record.name, "GET /items");
        assert_eq!(record.span_kind, wit::SpanKind::Server);
        assert_eq!(
            record.start_time,
            Datetime {
                seconds: 1_700_000_000,
                nanoseconds: 123_456_789
            }
        );
        assert_eq!(
            record.end_time,
            Datetime {
                seconds: 1_700_000_001,
                nanoseconds: 5
            }
        );
        assert_eq!(
            record.attributes,
            vec![
                WitKeyValue {
                    key: "http.request.method".into(),
                    value: r#""GET""#.into()
                },
                WitKeyValue {
                    key: "http.response.status_code".into(),
                    value: "200".into()
                },
            ]
        );
        assert_eq!(record.status, wit::Status::Unset);
        assert_eq!(
            record.instrumentation_scope,
            WitScope {
                name: "otel-bridge".into(),
                version: Some("0.1.0".into()),
                schema_url: Some("https://opentelemetry.io/schemas/1.26.0".into()),
                attributes: vec![WitKeyValue {
                    key: "scope.attr".into(),
                    value: "true".into()
                }],
            }
        );
        assert!(record.events.is_empty());
        assert!(record.links.is_empty());
    }

    #[test]
    fn root_span_parent_is_zero_id() {
        let mut span = sample_span();
        span.parent_span_id = SpanId::INVALID;
        let record = span_data(&span);
        assert_eq!(record.parent_span_id, "0000000000000000");
        // ... which the host parses back to "no parent".
        assert_eq!(
            SpanId::from_hex(&record.parent_span_id).unwrap(),
            SpanId::INVALID
        );
    }

    #[test]
    fn events_links_and_dropped_counts() {
        let mut span = sample_span();
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "cache miss",
            at(1_700_000_000, 500),
            vec![KeyValue::new("key", "user:1"), KeyValue::new("ratio", 0.5)],
            0,
        ));
        events.dropped_count = 2;
        span.events = events;

        let state = TraceState::from_key_value([("k", "v")]).unwrap();
        let linked = SpanContext::new(
            TraceId::from_hex("1").unwrap(),
            SpanId::from_hex("2").unwrap(),
            TraceFlags::default(),
            true,
            state,
        );
        let mut links = SpanLinks::default();
        links
            .links
            .push(Link::new(linked, vec![KeyValue::new("why", "batch")], 0));
        links.dropped_count = 7;
        span.links = links;
        span.status = Status::Ok;

        let record = span_data(&span);
        assert_eq!(
            record.events,
            vec![wit::Event {
                name: "cache miss".into(),
                time: Datetime {
                    seconds: 1_700_000_000,
                    nanoseconds: 500
                },
                attributes: vec![
                    WitKeyValue {
                        key: "key".into(),
                        value: r#""user:1""#.into()
                    },
                    WitKeyValue {
                        key: "ratio".into(),
                        value: "0.5".into()
                    },
                ],
            }]
        );
        assert_eq!(
            record.links,
            vec![wit::Link {
                span_context: wit::SpanContext {
                    trace_id: format!("{}1", "0".repeat(31)),
                    span_id: format!("{}2", "0".repeat(15)),
                    trace_flags: wit::TraceFlags::empty(),
                    is_remote: true,
                    trace_state: vec![("k".into(), "v".into())],
                },
                attributes: vec![WitKeyValue {
                    key: "why".into(),
                    value: r#""batch""#.into()
                }],
            }]
        );
        assert_eq!(record.status, wit::Status::Ok);
        assert_eq!(record.dropped_attributes, 3);
        assert_eq!(record.dropped_events, 2);
        assert_eq!(record.dropped_links, 7);
    }

    /// Runs real SDK spans through a processor that records what the shell
    /// would send, checking order (start before end) and parent ids.
    #[test]
    fn sdk_pipeline_start_before_end_and_parents() {
        use opentelemetry::trace::{
            Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _,
        };
        use opentelemetry_sdk::error::OTelSdkResult;
        use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanProcessor};
        use std::sync::{Arc, Mutex};

        #[derive(Debug)]
        enum Call {
            Start(wit::SpanContext),
            End(Box<wit::SpanData>),
        }

        #[derive(Debug, Clone, Default)]
        struct Recorder(Arc<Mutex<Vec<Call>>>);

        impl SpanProcessor for Recorder {
            fn on_start(&self, span: &mut Span, _cx: &opentelemetry::Context) {
                let record = span_context(span.span_context());
                self.0.lock().unwrap().push(Call::Start(record));
            }
            fn on_end(&self, span: SpanData) {
                self.0
                    .lock()
                    .unwrap()
                    .push(Call::End(Box::new(span_data(&span))));
            }
            fn force_flush(&self) -> OTelSdkResult {
                Ok(())
            }
            fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
                Ok(())
            }
        }

        let recorder = Recorder::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_span_processor(recorder.clone())
            .build();
        let tracer = provider.tracer("test");

        let mut parent = tracer.start("parent");
        parent.set_attribute(KeyValue::new("k", "v"));
        let parent_cx = opentelemetry::Context::current_with_span(parent);
        tracer.start_with_context("child", &parent_cx).end();
        parent_cx.span().end();

        // A remote, unsampled parent: ParentBased drops the span entirely,
        // so the host sees neither on-start nor on-end.
        let unsampled =
            opentelemetry::Context::new().with_remote_span_context(cx(TRACE, SPAN, false, true));
        tracer.start_with_context("dropped", &unsampled).end();

        let calls = recorder.0.lock().unwrap();
        let [
            Call::Start(p_start),
            Call::Start(c_start),
            Call::End(child),
            Call::End(parent),
        ] = &calls[..]
        else {
            panic!("unexpected call sequence: {calls:#?}");
        };
        assert_eq!(&child.span_context, c_start);
        assert_eq!(&parent.span_context, p_start);
        assert_eq!(child.name, "child");
        assert_eq!(child.parent_span_id, parent.span_context.span_id);
        assert_eq!(child.span_context.trace_id, parent.span_context.trace_id);
        assert_eq!(parent.parent_span_id, "0000000000000000");
        assert!(
            parent
                .span_context
                .trace_flags
                .contains(wit::TraceFlags::SAMPLED)
        );
        assert_eq!(parent.span_context.trace_id.len(), 32);
        assert_eq!(parent.span_context.span_id.len(), 16);
        assert_eq!(parent.instrumentation_scope.name, "test");
        assert_eq!(
            parent.attributes,
            vec![WitKeyValue {
                key: "k".into(),
                value: r#""v""#.into()
            }]
        );
    }

    #[test]
    fn every_attribute_value_is_host_valid_json() {
        let mut span = sample_span();
        span.attributes = vec![
            KeyValue::new("s", "quote\" nl\n uni\u{2028}"),
            KeyValue::new("b", true),
            KeyValue::new("i", i64::MIN),
            KeyValue::new("f", f64::NAN),
            KeyValue::new("a", Value::Array(Array::F64(vec![f64::INFINITY]))),
        ];
        for kv in span_data(&span).attributes {
            assert_host_accepts(&kv.value);
        }
    }
}
