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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: &'static str,
}

/// What a scrape reports. A value that could not be read is `None`: its
/// series is left out of the scrape (never reported as a made-up zero), and
/// its store reports `shortener_store_up{store} 0`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// All-time clicks by humans and by bots.
    pub clicks: Option<(i64, i64)>,
    /// Links stored now.
    pub links: Option<i64>,
    /// All-time clicks by humans and by bots that were served but not
    /// recorded (the click store failed; see `crate::unrecorded`).
    pub unrecorded_clicks: Option<(i64, i64)>,
    /// Registered links whose key-value record was found not to decode (by a
    /// list, search or read), each counted once until it is deleted.
    pub corrupt_records: Option<i64>,
    /// Per store, by `/health`'s names (`kv`, `sqlite`,
    /// `sqlite_unrecorded`): whether its probe and every read of it answered.
    pub stores_up: Vec<(&'static str, bool)>,
    /// With a click outbox (`crate::outbox`): this replica's clicks waiting
    /// for the click database after the scrape's own ship, and the age of
    /// the oldest in seconds.
    pub outbox: Option<(i64, f64)>,
}

fn by_kind(registry: &mut Registry, name: &str, help: &str, value: Option<(i64, i64)>) {
    let Some((human, bot)) = value else {
        return;
    };
    let family = Family::<KindLabel, Counter>::default();
    registry.register(name, help, family.clone());
    for (kind, n) in [("human", human), ("bot", bot)] {
        family
            .get_or_create(&KindLabel { kind })
            .inc_by(u64::try_from(n).unwrap_or(0));
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: Option<i64>) {
    let Some(value) = value else {
        return;
    };
    let gauge = Gauge::<i64>::default();
    registry.register(name, help, gauge.clone());
    gauge.set(value);
}

/// Encodes `snapshot` as OpenMetrics text.
pub fn render(snapshot: &Snapshot) -> Result<String, StoreError> {
    let mut registry = Registry::default();

    by_kind(
        &mut registry,
        "shortener_clicks",
        "Clicks recorded in SQLite since the database was created, deleted links included",
        snapshot.clicks,
    );
    by_kind(
        &mut registry,
        "shortener_clicks_unrecorded",
        "Redirects served whose click the click database refused (counted in the unrecorded tally instead)",
        snapshot.unrecorded_clicks,
    );
    gauge(
        &mut registry,
        "shortener_links",
        "Links currently stored",
        snapshot.links,
    );
    gauge(
        &mut registry,
        "shortener_corrupt_records",
        "Registered links whose key-value record was found not to decode (by a list, search or read), each counted once until the link is deleted",
        snapshot.corrupt_records,
    );

    if let Some((clicks, age)) = snapshot.outbox {
        gauge(
            &mut registry,
            "shortener_click_outbox_clicks",
            "Clicks served by this replica and waiting in its outbox for the click database (after this scrape shipped what it could)",
            Some(clicks),
        );
        let oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "shortener_click_outbox_oldest_seconds",
            "Age of the oldest click waiting in this replica's outbox (0 when none waits)",
            oldest.clone(),
        );
        oldest.set(age);
    }

    let up = Family::<StoreLabel, Gauge>::default();
    registry.register(
        "shortener_store_up",
        "Whether the store answered this scrape (1) or failed (0): its /health probe and every read of it (store as in /health's checks)",
        up.clone(),
    );
    for &(store, is_up) in &snapshot.stores_up {
        up.get_or_create(&StoreLabel { store })
            .set(i64::from(is_up));
    }

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
    fn a_value_that_could_not_be_read_is_left_out_not_reported_as_zero() {
        let text = render(&Snapshot {
            links: Some(0),
            ..Snapshot::default()
        })
        .unwrap();
        assert!(text.contains("shortener_links 0"), "{text}");
        for absent in [
            "shortener_clicks",
            "shortener_corrupt_records",
            "shortener_click_outbox",
        ] {
            assert!(!text.contains(absent), "{absent}: {text}");
        }
        assert!(text.contains("shortener_build_info"), "{text}");
    }

    #[test]
    fn the_exposition_names_every_family_with_its_type() {
        let text = render(&Snapshot {
            clicks: Some((12, 3)),
            links: Some(4),
            unrecorded_clicks: Some((2, 0)),
            corrupt_records: Some(1),
            stores_up: vec![("kv", true), ("sqlite", false)],
            outbox: Some((7, 2.5)),
        })
        .unwrap();
        assert!(
            text.contains("# TYPE shortener_click_outbox_clicks gauge"),
            "{text}"
        );
        assert!(text.contains("shortener_click_outbox_clicks 7"), "{text}");
        assert!(
            text.contains("shortener_click_outbox_oldest_seconds 2.5"),
            "{text}"
        );
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
        assert!(text.contains("# TYPE shortener_store_up gauge"), "{text}");
        assert!(
            text.contains("shortener_store_up{store=\"kv\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shortener_store_up{store=\"sqlite\"} 0"),
            "{text}"
        );
        assert!(text.contains("shortener_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
