//! A guest-side profile of the redirect, for the Spin benchmark only
//! (`benches/spin/run.sh --variant name=…,profile`; benches/README.md,
//! "Where the microseconds go").
//!
//! Built only with the `ablation` cargo feature (no shipped build has it);
//! without it [`stage`] returns a guard that does nothing and compiles away.
//! With it, and `SHORTENER_PROFILE=1` in the component's environment, each
//! [`Stage`] of a request is timed on the wasm monotonic clock, as **self
//! time**: a stage entered inside another pauses it, so the stages of a
//! request add up to its guest time. The instance prints its totals to
//! stderr every [`REPORT_EVERY`] requests (`shortener-profile n=… stage=ns
//! …`), which the benchmark sums over its instances.
//!
//! Only valid with one request at a time per instance (`oha -c 1`): a
//! stage held across an `.await` would otherwise also count the time of
//! the instance's other requests. The guards never panic when that
//! happens; the figures are then simply wrong.

/// A part of a request's guest time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// What the shell does around the core: the request's conversion, the
    /// handler lookup (and the rest not in another stage).
    Shell,
    /// The instance's start: store opens, the app, the rest of the build.
    Build,
    /// The instance's start: reading the Spin variables.
    Settings,
    /// The instance's start: the schema check on the new connection.
    Migrate,
    /// The `spin-*` header filter.
    HostFilter,
    /// The core's dispatch (hot path or router) and the redirect handler's
    /// own work (reading the headers into a visit).
    Handler,
    /// The tracer: making, recording and closing spans (guest side).
    Tracer,
    /// The two wasi:otel host calls per span (`on-start`, `on-end`).
    OtelCalls,
    /// The key-value get, host call and timeout timer.
    KvGet,
    /// Decoding the link record.
    Decode,
    /// The target and rules.
    Target,
    /// Classifying the visitor.
    Classify,
    /// The visitor HMAC.
    Hmac,
    /// The click's values and its INSERT, host call included.
    ClickWrite,
    /// The response: status, `Location`, `Cache-Control`, length.
    Response,
}

impl Stage {
    /// Every stage with its name in the report, in the enum's order.
    pub const ALL: [(Stage, &'static str); 15] = [
        (Stage::Shell, "shell"),
        (Stage::Build, "build"),
        (Stage::Settings, "settings"),
        (Stage::Migrate, "migrate"),
        (Stage::HostFilter, "host"),
        (Stage::Handler, "handler"),
        (Stage::Tracer, "tracer"),
        (Stage::OtelCalls, "otel_calls"),
        (Stage::KvGet, "kv_get"),
        (Stage::Decode, "decode"),
        (Stage::Target, "target"),
        (Stage::Classify, "classify"),
        (Stage::Hmac, "hmac"),
        (Stage::ClickWrite, "click_write"),
        (Stage::Response, "response"),
    ];
}

/// Requests between two reports of an instance (Spin reuses an instance
/// for about 128).
pub const REPORT_EVERY: u64 = 16;

#[cfg(feature = "ablation")]
mod on {
    use super::{REPORT_EVERY, Stage};
    use std::cell::RefCell;
    use std::time::Instant;

    struct Frame {
        stage: Stage,
        started: Instant,
        /// Time spent in stages entered inside this one.
        inner_ns: u64,
    }

    #[derive(Default)]
    struct State {
        stack: Vec<Frame>,
        totals: [u64; Stage::ALL.len()],
        requests: u64,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::default();
    }

    fn enabled() -> bool {
        use std::sync::LazyLock;
        static ON: LazyLock<bool> =
            LazyLock::new(|| std::env::var("SHORTENER_PROFILE").is_ok_and(|v| v == "1"));
        *ON
    }

    /// Times its stage until dropped.
    pub struct Guard(bool);

    pub fn stage(stage: Stage) -> Guard {
        if !enabled() {
            return Guard(false);
        }
        STATE.with(|s| {
            s.borrow_mut().stack.push(Frame {
                stage,
                started: Instant::now(),
                inner_ns: 0,
            })
        });
        Guard(true)
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.0 {
                return;
            }
            STATE.with(|s| {
                let mut s = s.borrow_mut();
                let Some(frame) = s.stack.pop() else {
                    return;
                };
                let whole = u64::try_from(frame.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                s.totals[frame.stage as usize] += whole.saturating_sub(frame.inner_ns);
                if let Some(outer) = s.stack.last_mut() {
                    outer.inner_ns += whole;
                }
            });
        }
    }

    pub fn request_done() {
        if !enabled() {
            return;
        }
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.requests += 1;
            if s.requests % REPORT_EVERY == 0 {
                let mut line = format!("shortener-profile n={REPORT_EVERY}");
                for ((_, name), total) in Stage::ALL.iter().zip(s.totals) {
                    line.push_str(&format!(" {name}={total}"));
                }
                eprintln!("{line}");
                s.totals = Default::default();
            }
        });
    }
}

#[cfg(feature = "ablation")]
pub use on::{Guard, request_done, stage};

/// Does nothing (no `ablation` feature).
#[cfg(not(feature = "ablation"))]
pub struct Guard;

/// Times `stage` until the guard is dropped: never, without the feature.
#[cfg(not(feature = "ablation"))]
#[inline(always)]
pub fn stage(_: Stage) -> Guard {
    Guard
}

/// Counts a finished request (and reports): never, without the feature.
#[cfg(not(feature = "ablation"))]
#[inline(always)]
pub fn request_done() {}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn the_report_names_the_stages_in_the_enums_order() {
        for (i, (stage, _)) in Stage::ALL.iter().enumerate() {
            assert_eq!(*stage as usize, i, "{stage:?}");
        }
    }
}
