//! Property tests: every parser of the app, and the invariants the API
//! promises, checked on generated input (proptest).
//!
//! # Layout
//!
//! * [`app`]: `Harness`, the whole app over in-memory key-value and a real
//!   SQLite file, driven through the router with a test clock.
//! * [`agents`]: the click classifiers on hostile agents and referrers up
//!   to 256 kB: only the capped prefix is read; within it, woothee's and
//!   isbot's answers.
//! * [`slugs`]: `Slug` (unit) and random slugs through the router.
//! * [`targets`]: `TargetUrl` through the router: nothing accepted points
//!   back at this shortener, however its host is spelled.
//! * [`forwarded`]: the `X-Forwarded-For` walk (`clicks::client_ip`) and the
//!   visitor it yields through the router.
//! * [`days`]: `DayRange` (unit).
//! * [`timestamps`]: `expires_at` through the router.
//! * [`bodies`]: arbitrary JSON bodies and query strings through the router.
//! * [`stats`]: random clicks over random days, then stats for random ranges
//!   against the raw click rows in SQLite.
//!
//! # Runs
//!
//! `cargo test --test properties` runs `PROPTEST_CASES` cases (default 256)
//! of each property: CI's bounded run. `cargo bench --bench properties` is
//! the long run (benches/properties.rs): each property's share of
//! `SHORTENER_PROPERTY_TOTAL` cases (default 1,000,000), printing how many
//! ran and how long each took.

mod agents;
mod app;
mod bodies;
mod days;
mod forwarded;
mod slugs;
mod stats;
mod targets;
mod timestamps;

use std::fmt::Debug;
use std::time::Instant;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// One property.
pub struct Property {
    /// What holds, as a sentence (the trial's name).
    pub name: &'static str,
    /// Relative cost of one case (1 = a pure parser call, ~4 per request
    /// through the router); see [`long_run_cases`].
    pub cost: u32,
    /// Runs `cases` cases; `Err` is the failure with its minimal input.
    pub check: fn(u32) -> Result<(), String>,
}

/// Every property of the app.
pub fn all() -> Vec<Property> {
    let mut all = Vec::new();
    all.extend(slugs::properties());
    all.extend(targets::properties());
    all.extend(forwarded::properties());
    all.extend(agents::properties());
    all.extend(days::properties());
    all.extend(timestamps::properties());
    all.extend(bodies::properties());
    all.extend(stats::properties());
    all
}

/// Runs `cases` cases of `test` over `strategy`, no failure file, shrinking
/// to a minimal input on failure.
pub fn check<S>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> Result<(), String>
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&strategy, test)
        .map_err(|e| e.to_string())
}

/// Cases per property in CI: `PROPTEST_CASES`, default 256.
pub fn ci_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Cases of each property in the long run: the cheap parsers get most of
/// `total`, the router-driven properties fewer in proportion to their cost,
/// and each at least `ci_cases()`.
pub fn long_run_cases(properties: &[Property], total: u64) -> Vec<u32> {
    let weight = |p: &Property| 1.0 / f64::from(p.cost.max(1));
    let sum: f64 = properties.iter().map(weight).sum();
    properties
        .iter()
        .map(|p| {
            let share = (total as f64 * weight(p) / sum).ceil() as u32;
            share.max(ci_cases())
        })
        .collect()
}

/// The long run: prints one line per property and the total.
#[allow(dead_code)] // the bench's entry point
pub fn long_run() {
    let total: u64 = std::env::var("SHORTENER_PROPERTY_TOTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let active = all();
    let plan = long_run_cases(&active, total);
    let started = Instant::now();
    let (mut ran, mut failed) = (0u64, 0usize);
    for (p, cases) in active.iter().zip(plan) {
        let t = Instant::now();
        match (p.check)(cases) {
            Ok(()) => {
                ran += u64::from(cases);
                println!(
                    "ok      {cases:>9} cases {:>8.1} s  {}",
                    t.elapsed().as_secs_f64(),
                    p.name
                );
            }
            Err(e) => {
                failed += 1;
                println!("FAILED  {} \n{e}", p.name);
            }
        }
    }
    println!(
        "properties: {ran} cases passed over {} properties in {:.1} s ({failed} failed)",
        active.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The bounded run: one libtest trial per property.
#[allow(dead_code)] // the test target's entry point
pub fn bounded_run(args: libtest_mimic::Arguments, cases: u32) -> libtest_mimic::Conclusion {
    let trials = all()
        .into_iter()
        .map(|p| {
            let check = p.check;
            libtest_mimic::Trial::test(p.name, move || check(cases).map_err(Into::into))
        })
        .collect();
    libtest_mimic::run(&args, trials)
}

#[allow(dead_code)] // unused when benches/properties.rs includes this file
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    bounded_run(args, ci_cases()).exit();
}
