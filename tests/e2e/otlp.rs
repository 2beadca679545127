//! A small OTLP/HTTP receiver (protobuf, `opentelemetry-proto` messages
//! decoded with prost, served by `tiny_http`) on a loopback port, for Spin's
//! `OTEL_EXPORTER_OTLP_ENDPOINT`. It keeps every span and metric it got.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// What arrived so far.
#[derive(Default)]
pub struct Received {
    /// Every span, with its scope name.
    pub spans: Vec<(String, Span)>,
    /// Every metric, with its scope name.
    pub metrics: Vec<(String, Metric)>,
    /// Export requests that did not decode (path, error).
    pub bad: Vec<(String, String)>,
}

/// The receiver; stops with the test process (its thread only blocks on
/// `recv`).
pub struct Receiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Received>>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("binds"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let received = Arc::new(Mutex::new(Received::default()));
        let (srv, store) = (server.clone(), received.clone());
        std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let path = request.url().to_owned();
                let mut got = store.lock().unwrap();
                let decoded = match path.as_str() {
                    "/v1/traces" => ExportTraceServiceRequest::decode(body.as_slice()).map(|r| {
                        for rs in r.resource_spans {
                            for ss in rs.scope_spans {
                                let scope = ss.scope.map(|s| s.name).unwrap_or_default();
                                for span in ss.spans {
                                    got.spans.push((scope.clone(), span));
                                }
                            }
                        }
                    }),
                    "/v1/metrics" => {
                        ExportMetricsServiceRequest::decode(body.as_slice()).map(|r| {
                            for rm in r.resource_metrics {
                                for sm in rm.scope_metrics {
                                    let scope = sm.scope.map(|s| s.name).unwrap_or_default();
                                    for metric in sm.metrics {
                                        got.metrics.push((scope.clone(), metric));
                                    }
                                }
                            }
                        })
                    }
                    _ => Ok(()), // logs and anything else: accepted, not kept
                };
                if let Err(e) = decoded {
                    got.bad.push((path, e.to_string()));
                }
                drop(got);
                let response = tiny_http::Response::empty(200).with_header(
                    "Content-Type: application/x-protobuf"
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
                let _ = request.respond(response);
            }
        });
        Receiver {
            port,
            received,
            server,
        }
    }

    /// `http://127.0.0.1:<port>` (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits up to `within` until `done` holds on what arrived; returns
    /// whether it did. `done` sees everything received so far.
    pub fn wait_for(&self, within: Duration, mut done: impl FnMut(&Received) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if done(&self.received.lock().unwrap()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `f` on what arrived.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.received.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// An attribute's value as text (strings as is, numbers and bools printed).
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let kv = attributes.iter().find(|kv| kv.key == key)?;
    value_text(kv.value.as_ref()?)
}

fn value_text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
