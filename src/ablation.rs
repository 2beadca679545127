//! The redirect's ablation knobs, for the Spin benchmark only
//! (`benches/spin/run.sh --variant name=…,ablate=a+b`; benches/README.md,
//! "Where the microseconds go").
//!
//! Built only with the `ablation` cargo feature, which no shipped build
//! enables; without it [`skip`] is a constant `false` and every knob
//! compiles away. With it, the component reads the environment variable
//! `SHORTENER_ABLATE` once per instance: a `+`-separated list of [`Part`]
//! names, each removed from the redirect alone, so that its cost is the
//! difference to the same build with nothing removed, measured in the same
//! run. A removed part is replaced by the cheapest stand-in that keeps the
//! rest of the redirect doing the same work (a fixed link, a fixed visitor,
//! a fixed hash), so a variant still records one click per redirect.

/// A part of the redirect above the benchmark's floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The `spin-*` header filter and the client address it yields.
    HostFilter,
    /// Reading the Spin variables at instance start (fixed settings).
    Settings,
    /// The key-value call's timeout timer.
    KvTimeout,
    /// Decoding the link record (a fixed link after the get).
    Decode,
    /// Classifying the user agent and referrer (a fixed visitor).
    Classify,
    /// The visitor HMAC (a fixed hash).
    Hmac,
    /// The unrecorded tally's store (a store that is never opened).
    Unrecorded,
    /// The guest's request span.
    RequestSpan,
    /// The guest's key-value span.
    KvSpan,
    /// The guest's SQLite span.
    SqlSpan,
    /// The fold of a batch by every `rollups::FOLD_EVERY`-th redirect.
    Fold,
}

impl Part {
    /// Every part with its name in `SHORTENER_ABLATE`.
    pub const ALL: [(Part, &'static str); 11] = [
        (Part::HostFilter, "host"),
        (Part::Settings, "settings"),
        (Part::KvTimeout, "kv_timeout"),
        (Part::Decode, "decode"),
        (Part::Classify, "classify"),
        (Part::Hmac, "hmac"),
        (Part::Unrecorded, "unrecorded"),
        (Part::RequestSpan, "span_request"),
        (Part::KvSpan, "span_kv"),
        (Part::SqlSpan, "span_sql"),
        (Part::Fold, "fold"),
    ];
}

/// The parts named in `list` (`+`-separated; unknown names are ignored).
pub fn parse(list: &str) -> Vec<Part> {
    list.split('+')
        .filter_map(|name| Part::ALL.iter().find(|(_, n)| *n == name.trim()))
        .map(|(part, _)| *part)
        .collect()
}

/// Whether `part` is removed in this instance.
#[cfg(feature = "ablation")]
pub fn skip(part: Part) -> bool {
    use std::sync::LazyLock;
    static REMOVED: LazyLock<Vec<Part>> =
        LazyLock::new(|| parse(&std::env::var("SHORTENER_ABLATE").unwrap_or_default()));
    REMOVED.contains(&part)
}

/// Whether `part` is removed: never, without the `ablation` feature.
#[cfg(not(feature = "ablation"))]
#[inline(always)]
pub const fn skip(_: Part) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_names_the_parts_it_removes_and_ignores_unknown_names() {
        assert_eq!(parse(""), vec![]);
        assert_eq!(
            parse("classify+hmac+nonsense+span_kv"),
            vec![Part::Classify, Part::Hmac, Part::KvSpan]
        );
        for (part, name) in Part::ALL {
            assert_eq!(parse(name), vec![part]);
        }
    }

    #[cfg(not(feature = "ablation"))]
    #[test]
    fn without_the_feature_nothing_is_ever_removed() {
        assert!(Part::ALL.iter().all(|(part, _)| !skip(*part)));
    }
}
