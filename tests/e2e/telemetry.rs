//! Telemetry arrives: Spin started with `OTEL_EXPORTER_OTLP_ENDPOINT` at a
//! receiver inside the test. For a redirect sent with a `traceparent`, the
//! component's request span is in that trace, and under it one client span
//! per key-value and SQLite call, with the semantic-convention attributes.
//! Spin's own `spin.request_count` arrives as a metric, with both builds.

use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use crate::ensure;
use crate::harness::{CHROME, SpinApp, SpinBuilder, no_otel, trial};
use crate::otlp::{Received, Receiver, attr, hex};

pub fn trials() -> Vec<Trial> {
    let mut trials = vec![trial(
        "telemetry::spins_request_count_and_server_span_arrive_over_otlp",
        spins_request_count_and_server_span_arrive_over_otlp,
    )];
    // The guest's spans exist only in the default (otel) build.
    if !no_otel() {
        trials.push(trial(
            "telemetry::a_traced_redirect_has_one_client_span_per_storage_call_under_its_request_span",
            a_traced_redirect_has_one_client_span_per_storage_call_under_its_request_span,
        ));
        trials.push(trial(
            "telemetry::at_trace_sample_ratio_zero_the_component_sends_no_span_and_spins_own_still_arrive",
            at_trace_sample_ratio_zero_the_component_sends_no_span_and_spins_own_still_arrive,
        ));
    }
    trials
}

/// Spin exporting to `receiver` quickly (short batch delay and metric
/// interval).
fn spin_exporting_to(receiver: &Receiver) -> SpinApp {
    exporting_to(receiver).start()
}

fn exporting_to(receiver: &Receiver) -> SpinBuilder {
    SpinBuilder::default()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", "shortener-e2e")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
}

/// `GET path` as a Chrome browser in a new trace: (trace id hex, parent
/// span id hex), once it answered a redirect.
fn follow_in_new_trace(spin: &SpinApp, path: &str) -> Result<(String, String), Failed> {
    let (header, trace, parent) = traceparent();
    let r = spin.request(
        "GET",
        path,
        &[("User-Agent", CHROME), ("traceparent", &header)],
        None,
    );
    ensure!(r.status == 302, "{path}: {}", r.status);
    Ok((trace, parent))
}

/// With `trace_sample_ratio = 0` the component makes no span (neither a
/// request span nor a storage span), while the redirect works and Spin's
/// own spans of the same requests still arrive.
fn at_trace_sample_ratio_zero_the_component_sends_no_span_and_spins_own_still_arrive()
-> Result<(), Failed> {
    let receiver = Receiver::start();
    let spin = exporting_to(&receiver)
        .variable("trace_sample_ratio", "0")
        .start();
    spin.create(json!({"url": "https://e.com/unsampled", "slug": "unsampled"}))?;
    let mut traces = Vec::new();
    for _ in 0..20 {
        traces.push(follow_in_new_trace(&spin, "/unsampled")?.0);
    }
    let last = traces.last().cloned().unwrap_or_default();
    let arrived = receiver.wait_for(Duration::from_secs(90), |got| {
        in_trace(&got.spans, &last)
            .iter()
            .any(|s| s.name.starts_with("GET /..."))
    });
    ensure!(
        arrived,
        "Spin's own span of the last redirect never arrived"
    );
    std::thread::sleep(Duration::from_secs(2));
    let ours = receiver.with(|got| {
        let ours: Vec<&Span> = traces
            .iter()
            .flat_map(|t| in_trace(&got.spans, t))
            .filter(|s| s.name == "GET /{slug}" || s.name == "kv.get" || s.name == "sqlite.execute")
            .collect();
        describe(&ours)
    });
    ensure!(ours.is_empty(), "the component sent spans: {ours}");
    Ok(())
}

/// A fresh W3C trace context: (header, trace id hex, parent span id hex).
fn traceparent() -> (String, String, String) {
    let trace: [u8; 16] = rand::random();
    let parent: [u8; 8] = rand::random();
    let (t, p) = (hex(&trace), hex(&parent));
    (format!("00-{t}-{p}-01"), t, p)
}

fn in_trace<'a>(spans: &'a [(String, Span)], trace: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| hex(&s.trace_id) == trace)
        .collect()
}

fn describe(spans: &[&Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} (id {}, parent {}, kind {})",
                s.name,
                hex(&s.span_id),
                hex(&s.parent_span_id),
                s.kind
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `component_id`s of every `spin.request_count` point (a sum).
fn request_count_components(got: &Received) -> Vec<String> {
    let mut ids = Vec::new();
    for (_, m) in got
        .metrics
        .iter()
        .filter(|(_, m)| m.name == "spin.request_count")
    {
        if let Some(metric::Data::Sum(sum)) = &m.data {
            for p in &sum.data_points {
                if let Some(id) = attr(&p.attributes, "component_id") {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

fn spins_request_count_and_server_span_arrive_over_otlp() -> Result<(), Failed> {
    let receiver = Receiver::start();
    let spin = spin_exporting_to(&receiver);
    spin.create(json!({"url": "https://e.com/", "slug": "counted"}))?;
    let (trace, parent) = follow_in_new_trace(&spin, "/counted")?;

    // Spin exports a point per component that served a request; the
    // redirect's and the API's may come in different exports.
    let arrived = receiver.wait_for(Duration::from_secs(90), |got| {
        let ids = request_count_components(got);
        let server = in_trace(&got.spans, &trace)
            .iter()
            .any(|s| s.name.starts_with("GET /..."));
        ids.iter().any(|c| c == "redirect") && ids.iter().any(|c| c == "api") && server
    });
    let (bad, names, spans) = receiver.with(|got| {
        let mut names: Vec<String> = got.metrics.iter().map(|(_, m)| m.name.clone()).collect();
        names.sort();
        names.dedup();
        (
            got.bad.clone(),
            names,
            describe(&in_trace(&got.spans, &trace)),
        )
    });
    ensure!(bad.is_empty(), "undecodable exports: {bad:?}");
    ensure!(
        arrived,
        "within 90 s: metrics {names:?}; spans of the trace: {spans}"
    );

    // Spin's server span continues the incoming traceparent, with its
    // HTTP attributes.
    let server = receiver.with(|got| {
        in_trace(&got.spans, &trace)
            .into_iter()
            .find(|s| s.name.starts_with("GET /..."))
            .cloned()
    });
    let server = server.ok_or("no server span")?;
    ensure!(
        hex(&server.parent_span_id) == parent,
        "Spin's span does not continue the traceparent: {}",
        describe(&[&server])
    );
    ensure!(
        server.kind == SpanKind::Server as i32,
        "kind {}",
        server.kind
    );
    ensure!(
        attr(&server.attributes, "http.request.method").as_deref() == Some("GET"),
        "{:?}",
        server.attributes
    );
    ensure!(
        attr(&server.attributes, "http.response.status_code").as_deref() == Some("302"),
        "{:?}",
        server.attributes
    );

    // spin.request_count is a sum with a data point for each component hit.
    let components = receiver.with(request_count_components);
    for component in ["redirect", "api"] {
        ensure!(
            components.iter().any(|c| c == component),
            "spin.request_count has no point for {component}: {components:?}"
        );
    }
    Ok(())
}

fn a_traced_redirect_has_one_client_span_per_storage_call_under_its_request_span()
-> Result<(), Failed> {
    let receiver = Receiver::start();
    let spin = spin_exporting_to(&receiver);
    spin.create(json!({"url": "https://e.com/traced", "slug": "traced-link"}))?;
    let (hit_trace, hit_parent) = follow_in_new_trace(&spin, "/traced-link")?;
    let (miss_header, miss_trace, _) = traceparent();
    let r = spin.request(
        "GET",
        "/traced-none",
        &[("traceparent", &miss_header)],
        None,
    );
    ensure!(r.status == 404, "{}", r.status);

    // Our request span and its children (a span ends after its children,
    // so the request span arriving means the children were sent first or
    // in the same batch).
    let request_span = |spans: &[(String, Span)], trace: &str| {
        in_trace(spans, trace)
            .into_iter()
            .find(|s| s.name == "GET /{slug}")
            .cloned()
    };
    let arrived = receiver.wait_for(Duration::from_secs(90), |got| {
        request_span(&got.spans, &hit_trace).is_some()
            && request_span(&got.spans, &miss_trace).is_some()
    });
    let all = receiver.with(|got| describe(&got.spans.iter().map(|(_, s)| s).collect::<Vec<_>>()));
    ensure!(arrived, "the request spans never arrived; got: {all}");
    // Give a late batch a moment, then judge everything that arrived.
    std::thread::sleep(Duration::from_secs(2));

    let (hit, hit_children, miss, miss_children, trace_spans) = receiver.with(|got| {
        let hit = request_span(&got.spans, &hit_trace).unwrap();
        let miss = request_span(&got.spans, &miss_trace).unwrap();
        let children = |of: &Span| -> Vec<Span> {
            got.spans
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.parent_span_id == of.span_id && s.trace_id == of.trace_id)
                .cloned()
                .collect()
        };
        (
            hit.clone(),
            children(&hit),
            miss.clone(),
            children(&miss),
            describe(&in_trace(&got.spans, &hit_trace)),
        )
    });

    // The request span continues the incoming context (Spin's own span is
    // its sibling: Spin gives WASI 0.3 guests no parent).
    ensure!(
        hex(&hit.parent_span_id) == hit_parent,
        "request span's parent: {trace_spans}"
    );
    ensure!(hit.kind == SpanKind::Server as i32, "{trace_spans}");
    for (key, value) in [
        ("http.request.method", "GET"),
        ("http.route", "/{slug}"),
        ("http.response.status_code", "302"),
        ("shortener.redirect.outcome", "hit"),
        ("shortener.visitor.kind", "human"),
    ] {
        ensure!(
            attr(&hit.attributes, key).as_deref() == Some(value),
            "request span {key}: {:?}",
            hit.attributes
        );
    }

    // Exactly one key-value get and one SQLite INSERT under it.
    let names: Vec<&str> = hit_children.iter().map(|s| s.name.as_str()).collect();
    ensure!(
        names.iter().filter(|n| **n == "kv.get").count() == 1
            && names.iter().filter(|n| **n == "sqlite.execute").count() == 1
            && names.len() == 2,
        "children of the redirect's request span: {names:?}; trace: {trace_spans}"
    );
    for child in &hit_children {
        ensure!(
            child.kind == SpanKind::Client as i32,
            "{} kind {}",
            child.name,
            child.kind
        );
        ensure!(
            attr(&child.attributes, "db.namespace").as_deref() == Some("default"),
            "{}: {:?}",
            child.name,
            child.attributes
        );
        // No slug, user agent or URL in any attribute.
        for kv in &child.attributes {
            let text = format!("{:?}", kv.value);
            ensure!(
                !text.contains("traced-link")
                    && !text.contains("Chrome")
                    && !text.contains("e.com"),
                "{} leaks a value in {}: {text}",
                child.name,
                kv.key
            );
        }
    }
    let kv = hit_children.iter().find(|s| s.name == "kv.get").unwrap();
    ensure!(
        attr(&kv.attributes, "db.system.name").as_deref() == Some("spin_key_value")
            && attr(&kv.attributes, "db.operation.name").as_deref() == Some("get"),
        "kv.get attributes: {:?}",
        kv.attributes
    );
    let sql = hit_children
        .iter()
        .find(|s| s.name == "sqlite.execute")
        .unwrap();
    ensure!(
        attr(&sql.attributes, "db.system.name").as_deref() == Some("sqlite")
            && attr(&sql.attributes, "db.operation.name").as_deref() == Some("INSERT")
            && attr(&sql.attributes, "db.collection.name").as_deref() == Some("clicks")
            && attr(&sql.attributes, "db.query.text")
                .is_some_and(|q| q.starts_with("INSERT INTO clicks")),
        "sqlite.execute attributes: {:?}",
        sql.attributes
    );
    // Children nest in time inside their parent.
    for child in &hit_children {
        ensure!(
            child.start_time_unix_nano >= hit.start_time_unix_nano
                && child.end_time_unix_nano <= hit.end_time_unix_nano,
            "{} is outside its parent in time",
            child.name
        );
    }

    // An unknown slug: one key-value get, then the orphan visit's one
    // SQLite upsert (`orphans::COUNT`), outcome miss.
    let miss_names: Vec<&str> = miss_children.iter().map(|s| s.name.as_str()).collect();
    ensure!(
        miss_names == ["kv.get", "sqlite.execute"],
        "children of the miss: {miss_names:?}"
    );
    ensure!(
        attr(&miss.attributes, "shortener.redirect.outcome").as_deref() == Some("miss")
            && attr(&miss.attributes, "http.response.status_code").as_deref() == Some("404"),
        "miss span: {:?}",
        miss.attributes
    );
    Ok(())
}
