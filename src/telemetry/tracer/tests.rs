//! The tracer's unit tests: the records it hands the exporter.

use super::*;
use crate::telemetry::wasi_otel::NO_SPAN;
use std::sync::Arc;

#[derive(Debug, PartialEq)]
enum Call {
    Start(wit::SpanContext),
    End(Box<wit::SpanData>),
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Exporter for Recorder {
    fn on_start(&self, context: &wit::SpanContext) {
        self.0.lock().unwrap().push(Call::Start(context.clone()));
    }
    fn on_end(&self, span: wit::SpanData) {
        self.0.lock().unwrap().push(Call::End(Box::new(span)));
    }
}

fn traced(f: impl FnOnce()) -> Vec<Call> {
    let recorder = Recorder::default();
    let tracer = Tracer::new(recorder.clone());
    tracing::subscriber::with_default(tracer, f);
    std::mem::take(&mut *recorder.0.lock().unwrap())
}

fn ends(calls: &[Call]) -> Vec<&wit::SpanData> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::End(span) => Some(&**span),
            Call::Start(_) => None,
        })
        .collect()
}

fn attr<'a>(span: &'a wit::SpanData, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

#[test]
fn every_span_starts_before_it_ends_and_children_nest_under_the_current_span() {
    let calls = traced(|| {
        let parent = tracing::info_span!("parent", otel.kind = "server", k = "v");
        let _entered = parent.enter();
        tracing::info_span!("child", otel.kind = "client").in_scope(|| {});
    });
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
    assert_eq!(child.span_kind, wit::SpanKind::Client);
    assert_eq!(parent.span_kind, wit::SpanKind::Server);
    assert_eq!(child.parent_span_id, parent.span_context.span_id);
    assert_eq!(child.span_context.trace_id, parent.span_context.trace_id);
    assert_eq!(parent.parent_span_id, NO_SPAN);
    assert!(
        parent
            .span_context
            .trace_flags
            .contains(wit::TraceFlags::SAMPLED)
    );
    assert_eq!(parent.span_context.trace_id.len(), 32);
    assert_eq!(parent.span_context.span_id.len(), 16);
    assert_eq!(parent.instrumentation_scope.name, SCOPE);
    assert_eq!(
        parent.attributes,
        vec![KeyValue {
            key: "k".into(),
            value: r#""v""#.into()
        }]
    );
}

#[test]
fn a_span_ends_when_its_last_handle_is_dropped() {
    let recorder = Recorder::default();
    let tracer = Tracer::new(recorder.clone());
    let ended = || ends(&recorder.0.lock().unwrap()).len();
    tracing::subscriber::with_default(tracer, || {
        let span = tracing::info_span!("s", late = tracing::field::Empty);
        let clone = span.clone();
        drop(span);
        assert_eq!(ended(), 0, "a clone still holds it");
        clone.record("late", 1_i64);
        drop(clone);
        assert_eq!(ended(), 1);
    });
    let calls = recorder.0.lock().unwrap();
    assert_eq!(attr(ends(&calls)[0], "late"), Some("1"));
}

#[test]
fn otel_fields_name_kind_and_fail_a_span_and_are_not_attributes() {
    let calls = traced(|| {
        let span = tracing::info_span!(
            "s",
            otel.name = "GET /{slug}",
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            n = 7_u64,
            f = 0.5_f64,
            b = true,
            d = %"shown",
        );
        span.record("otel.status_code", "error");
        span.record("otel.status_description", "db \"down\"");
        span.record("n", 8_u64);
    });
    let span = ends(&calls)[0];
    assert_eq!(span.name, "GET /{slug}");
    assert_eq!(span.span_kind, wit::SpanKind::Server);
    assert_eq!(span.status, wit::Status::Error("db \"down\"".into()));
    let keys: Vec<_> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["n", "f", "b", "d"]);
    assert_eq!(attr(span, "n"), Some("8"), "a second record replaces");
    assert_eq!(attr(span, "f"), Some("0.5"));
    assert_eq!(attr(span, "b"), Some("true"));
    assert_eq!(attr(span, "d"), Some(r#""shown""#));
}

#[test]
fn a_failed_status_without_a_description_is_an_empty_error() {
    let calls = traced(|| {
        let span = tracing::info_span!("s", otel.status_code = tracing::field::Empty);
        span.record("otel.status_code", "error");
    });
    assert_eq!(ends(&calls)[0].status, wit::Status::Error(String::new()));
    let calls = traced(|| drop(tracing::info_span!("s")));
    assert_eq!(ends(&calls)[0].status, wit::Status::Unset);
}

#[test]
fn a_root_span_continues_a_remote_parent_and_its_children_inherit_it() {
    let calls = traced(|| {
        let span = tracing::info_span!(
            "request",
            otel.parent_trace_id = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128,
            otel.parent_span_id = 0x00f0_67aa_0ba9_02b7_u64,
            otel.trace_state = "vendor=v1,other=x-y",
        );
        let _entered = span.enter();
        drop(tracing::info_span!("child"));
    });
    let [child, request] = ends(&calls)[..] else {
        panic!("{calls:#?}");
    };
    assert_eq!(
        request.span_context.trace_id,
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(request.parent_span_id, "00f067aa0ba902b7");
    assert!(!request.span_context.is_remote);
    let state = vec![
        ("vendor".to_owned(), "v1".to_owned()),
        ("other".to_owned(), "x-y".to_owned()),
    ];
    assert_eq!(request.span_context.trace_state, state);
    assert!(request.attributes.is_empty(), "{:?}", request.attributes);
    assert_eq!(child.span_context.trace_id, request.span_context.trace_id);
    assert_eq!(child.parent_span_id, request.span_context.span_id);
    assert_eq!(child.span_context.trace_state, state);
}

#[test]
fn an_invalid_remote_parent_starts_a_new_trace() {
    let (trace, span) = (0x4bf9_2f35_77b3_4da6_u128, 0x00f0_67aa_0ba9_02b7_u64);
    for (trace, span) in [(0, span), (trace, 0), (0, 0)] {
        let parent = (trace, span);
        let calls = traced(|| {
            drop(tracing::info_span!(
                "r",
                otel.parent_trace_id = trace,
                otel.parent_span_id = span
            ))
        });
        let span = ends(&calls)[0];
        assert_eq!(span.parent_span_id, NO_SPAN, "{parent:?}");
        assert_ne!(span.span_context.trace_id, "0".repeat(32));
    }
}

#[test]
fn events_become_span_events_and_leave_the_status_alone() {
    let calls = traced(|| {
        let span = tracing::info_span!("s");
        let _entered = span.enter();
        tracing::warn!(error = %"disk full", "click not recorded");
        tracing::debug!("not recorded: below INFO");
        tracing::error!(error = "boom", "request failed");
    });
    let span = ends(&calls)[0];
    let names: Vec<_> = span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["click not recorded", "request failed"]);
    let warn = &span.events[0];
    let attrs: Vec<_> = warn
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        [
            ("level", r#""WARN""#),
            ("target", r#""shortener::telemetry::tracer::tests""#),
            ("error", r#""disk full""#),
        ]
    );
    assert_eq!(span.status, wit::Status::Unset);
}

#[test]
fn events_outside_spans_and_spans_below_info_are_dropped() {
    let calls = traced(|| {
        tracing::error!("nowhere to go");
        drop(tracing::debug_span!("quiet"));
    });
    assert!(calls.is_empty(), "{calls:#?}");
}

#[test]
fn an_explicit_parent_wins_over_the_current_span() {
    let calls = traced(|| {
        let a = tracing::info_span!("a");
        let b = tracing::info_span!("b");
        let _entered = b.enter();
        drop(tracing::info_span!(parent: &a, "c"));
        drop(tracing::info_span!(parent: None, "root"));
    });
    let spans = ends(&calls);
    let find = |n: &str| *spans.iter().find(|s| s.name == n).unwrap();
    assert_eq!(find("c").parent_span_id, find("a").span_context.span_id);
    assert_eq!(find("root").parent_span_id, NO_SPAN);
    assert_ne!(
        find("root").span_context.trace_id,
        find("b").span_context.trace_id
    );
}

#[test]
fn concurrent_tasks_nest_under_their_own_request() {
    use tracing::Instrument as _;
    // Two requests interleaved on one thread, as in a Spin instance.
    let calls = traced(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let one = async {
                let child = tracing::info_span!("one.child");
                tokio::task::yield_now().instrument(child).await;
            }
            .instrument(tracing::info_span!("one"));
            let two = async {
                let child = tracing::info_span!("two.child");
                tokio::task::yield_now().instrument(child).await;
            }
            .instrument(tracing::info_span!("two"));
            tokio::join!(one, two);
        });
    });
    let spans = ends(&calls);
    let find = |n: &str| *spans.iter().find(|s| s.name == n).unwrap();
    for request in ["one", "two"] {
        assert_eq!(
            find(&format!("{request}.child")).parent_span_id,
            find(request).span_context.span_id
        );
    }
}

fn traced_at(ratio: &str, f: impl FnOnce()) -> Vec<Call> {
    let recorder = Recorder::default();
    let tracer = Tracer::new(recorder.clone());
    tracer
        .sampling()
        .set(SampleRatio::parse(ratio).expect("a ratio"));
    tracing::subscriber::with_default(tracer, f);
    std::mem::take(&mut *recorder.0.lock().unwrap())
}

/// A request: a root span, a client span in it, an event, a record.
fn request() {
    let root = tracing::info_span!(
        "request",
        otel.kind = "server",
        status = tracing::field::Empty
    );
    let _entered = root.enter();
    tracing::info_span!("kv.get", otel.kind = "client").in_scope(|| {
        tracing::warn!("slow");
    });
    root.record("status", 302);
}

#[test]
fn at_ratio_zero_no_span_of_a_request_reaches_the_exporter() {
    let calls = traced_at("0", || {
        for _ in 0..50 {
            request();
        }
    });
    assert!(calls.is_empty(), "{calls:#?}");
}

#[test]
fn a_trace_is_recorded_whole_or_not_at_all_in_about_the_ratio() {
    let calls = traced_at("0.5", || {
        for _ in 0..400 {
            request();
        }
    });
    let ends = ends(&calls);
    let starts = calls.iter().filter(|c| matches!(c, Call::Start(_))).count();
    assert_eq!(starts, ends.len(), "every recorded span starts and ends");
    let roots: Vec<_> = ends.iter().filter(|s| s.name == "request").collect();
    let children: Vec<_> = ends.iter().filter(|s| s.name == "kv.get").collect();
    assert!(
        (120..280).contains(&roots.len()),
        "{} of 400 traces",
        roots.len()
    );
    // Each recorded root has its child, with its event; no child is alone.
    assert_eq!(children.len(), roots.len());
    for child in &children {
        assert!(
            roots
                .iter()
                .any(|r| r.span_context.span_id == child.parent_span_id)
        );
        assert_eq!(child.events.len(), 1);
    }
    assert!(roots.iter().all(|r| attr(r, "status") == Some("302")));
}

#[test]
fn a_continued_trace_is_kept_or_dropped_by_the_remote_parents_trace_id() {
    let keep = |trace_id: u128| {
        let calls = traced_at("0.5", || {
            tracing::info_span!(
                "request",
                otel.parent_trace_id = trace_id,
                otel.parent_span_id = 7_u64,
            )
            .in_scope(|| {});
        });
        !ends(&calls).is_empty()
    };
    // Low bits under half of the range are kept, above it are not.
    assert!(keep(0x0123_0000_0000_0000_0000_0000_0000_0800));
    assert!(!keep(0x0123_0000_0000_0000_ffff_ffff_ffff_f800));
}

#[test]
fn inside_a_trace_not_recorded_and_at_ratio_zero_no_span_is_made_at_all() {
    traced_at("0", || {
        assert!(tracing::info_span!("request").is_disabled());
    });
    let calls = traced_at("0.0000000001", || {
        let root = tracing::info_span!("request", otel.kind = "server");
        assert!(!root.is_disabled(), "a root is made, to decide its trace");
        let _entered = root.enter();
        assert!(tracing::info_span!("kv.get").is_disabled());
    });
    assert!(calls.is_empty(), "{calls:#?}");
}
