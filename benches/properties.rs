//! The long property run: `cargo bench --bench properties` runs each
//! property of tests/properties/ for its share of `SHORTENER_PROPERTY_TOTAL`
//! cases (default 1,000,000) and prints how many ran. Without `--bench`
//! (`cargo test --all-targets`) it is a smoke run of 8 cases per property.

#[path = "../tests/properties/main.rs"]
mod properties;

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        properties::long_run();
    } else {
        let args = libtest_mimic::Arguments::from_args();
        properties::bounded_run(args, 8).exit();
    }
}
