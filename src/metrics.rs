//! `/metrics`: the app's own Prometheus metrics, in OpenMetrics text.
//!
//! Every value is read from SQLite at scrape time, so it is right across
//! Spin instances (recycled every ~128 requests) and restarts; no
//! per-instance counter is kept. Labels never carry a slug, IP or user agent.
//! Request rates and latencies come from the spans (the collector's span
//! metrics) and from Spin's own `spin.request_count`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::storage::StoreError;

/// The Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// What a scrape reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// All-time clicks by humans.
    pub human_clicks: i64,
    /// All-time clicks by bots.
    pub bot_clicks: i64,
    /// Links stored now.
    pub links: i64,
    /// All-time clicks by humans that were served but not recorded (the
    /// click store failed; see `crate::unrecorded`).
    pub unrecorded_human_clicks: i64,
    /// The same, by bots.
    pub unrecorded_bot_clicks: i64,
    /// Registered links whose key-value record was found not to decode (by a
    /// list, search or read), each counted once until it is deleted.
    pub corrupt_records: i64,
}

/// Encodes `snapshot` as OpenMetrics text.
pub fn render(snapshot: Snapshot) -> Result<String, StoreError> {
    let mut registry = Registry::default();

    let clicks = Family::<KindLabel, Counter>::default();
    registry.register(
        "shortener_clicks",
        "Clicks recorded in SQLite since the database was created, deleted links included",
        clicks.clone(),
    );
    clicks
        .get_or_create(&KindLabel { kind: "human" })
        .inc_by(u64::try_from(snapshot.human_clicks).unwrap_or(0));
    clicks
        .get_or_create(&KindLabel { kind: "bot" })
        .inc_by(u64::try_from(snapshot.bot_clicks).unwrap_or(0));

    let unrecorded = Family::<KindLabel, Counter>::default();
    registry.register(
        "shortener_clicks_unrecorded",
        "Redirects served whose click the click database refused (counted in the unrecorded tally instead)",
        unrecorded.clone(),
    );
    unrecorded
        .get_or_create(&KindLabel { kind: "human" })
        .inc_by(u64::try_from(snapshot.unrecorded_human_clicks).unwrap_or(0));
    unrecorded
        .get_or_create(&KindLabel { kind: "bot" })
        .inc_by(u64::try_from(snapshot.unrecorded_bot_clicks).unwrap_or(0));

    let links = Gauge::<i64>::default();
    registry.register("shortener_links", "Links currently stored", links.clone());
    links.set(snapshot.links);

    let corrupt = Gauge::<i64>::default();
    registry.register(
        "shortener_corrupt_records",
        "Registered links whose key-value record was found not to decode (by a list, search or read), each counted once until the link is deleted",
        corrupt.clone(),
    );
    corrupt.set(snapshot.corrupt_records);

    let build = Family::<VersionLabel, Gauge>::default();
    registry.register("shortener_build_info", "Build information", build.clone());
    build
        .get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);

    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| StoreError::new("encode", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_with_its_type() {
        let text = render(Snapshot {
            human_clicks: 12,
            bot_clicks: 3,
            links: 4,
            unrecorded_human_clicks: 2,
            unrecorded_bot_clicks: 0,
            corrupt_records: 1,
        })
        .unwrap();
        assert!(text.contains("# TYPE shortener_clicks counter"), "{text}");
        assert!(
            text.contains("shortener_clicks_total{kind=\"human\"} 12"),
            "{text}"
        );
        assert!(
            text.contains("shortener_clicks_total{kind=\"bot\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE shortener_clicks_unrecorded counter"),
            "{text}"
        );
        assert!(
            text.contains("shortener_clicks_unrecorded_total{kind=\"human\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("shortener_clicks_unrecorded_total{kind=\"bot\"} 0"),
            "{text}"
        );
        assert!(text.contains("# TYPE shortener_links gauge"), "{text}");
        assert!(text.contains("shortener_links 4"), "{text}");
        assert!(
            text.contains("# TYPE shortener_corrupt_records gauge"),
            "{text}"
        );
        assert!(text.contains("shortener_corrupt_records 1"), "{text}");
        assert!(text.contains("shortener_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
