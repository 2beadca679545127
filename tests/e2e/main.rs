//! End-to-end: the built component under a real `spin up`, over real HTTP.
//!
//! Build the component first (`cargo build --target wasm32-wasip2 --release`;
//! `.ci/test` does). Without `spin` on PATH every trial is ignored and the run
//! says `skipped: spin not installed`; under `CI=true` that is a failure.
//! Set `SHORTENER_E2E_NO_OTEL=1` when the component was built with
//! `--no-default-features` (it then runs under a plain `spin up`).
//!
//! Each module is one feature and returns its trials.

mod harness;

mod backup;
mod console;
mod contract;
mod degraded;
mod drive;
mod durability;
mod hotpath;
mod keys;
mod load;
mod loadkit;
mod neighbours;
mod openapi;
mod otlp;
mod resilience;
mod rules;
mod scale;
mod schema;
mod sqld;
mod telemetry;
mod transfer;

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    if !harness::spin_on_path() {
        eprintln!("skipped: spin not installed");
    }
    let mut trials = Vec::new();
    trials.extend(backup::trials());
    trials.extend(contract::trials());
    trials.extend(degraded::trials());
    trials.extend(neighbours::trials());
    trials.extend(load::trials());
    trials.extend(durability::trials());
    trials.extend(telemetry::trials());
    trials.extend(console::trials());
    trials.extend(hotpath::trials());
    trials.extend(keys::trials());
    trials.extend(loadkit::trials());
    trials.extend(resilience::trials());
    trials.extend(rules::trials());
    trials.extend(openapi::trials());
    trials.extend(scale::trials());
    trials.extend(schema::trials());
    trials.extend(sqld::trials());
    trials.extend(transfer::trials());
    libtest_mimic::run(&args, trials).exit();
}
