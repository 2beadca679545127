//! What a link does on a redirect beyond its URL: the redirect rules (which
//! target a visit gets, by device, language and query), the click limit
//! (`MaxClicks`) and the query forwarding. Pure functions: the redirect
//! (`crate::redirect`) asks them, the API validates with them.
//!
//! A rule has a `url` (validated like the link's, [`TargetUrl`]) and one or
//! more conditions, all of which must match:
//!
//! * `device`: `android`, `ios`, `mobile` (any phone, Android and iOS
//!   included) or `desktop` (anything else), from the `User-Agent` by the
//!   product's classifier ([`crate::clicks::device`]);
//! * `language`: a primary language tag (`de`) among the `Accept-Language`
//!   ranges with a non-zero q-value (only the header's first
//!   [`MAX_ACCEPT_LANGUAGE_BYTES`] are read);
//! * `query`: key/value pairs that must all be in the request's query.
//!
//! The first rule whose conditions all match chooses the target ([`choose`]);
//! otherwise the link's `url`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LinkError, OwnOrigins, TargetUrl};
use crate::clicks::agents::Device;

/// Most rules a link may have.
pub const MAX_RULES: usize = 10;
/// Most `query` pairs a rule may ask for.
pub const MAX_QUERY_PAIRS: usize = 10;
/// Longest key or value of a `query` condition, in bytes.
pub const MAX_QUERY_PART_BYTES: usize = 256;
/// The most of an `Accept-Language` header that is read, in bytes.
pub const MAX_ACCEPT_LANGUAGE_BYTES: usize = 512;
/// The most of a request's query that rules read and that is forwarded, in
/// bytes: a longer query is neither matched nor forwarded (the redirect goes
/// to the target as it is), so a `Location` is at most
/// `links::MAX_URL_BYTES` + 1 + this long.
pub const MAX_FORWARDED_QUERY_BYTES: usize = 2048;

/// A `device` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeviceCondition {
    /// Android.
    Android,
    /// iPhone, iPad, iPod.
    Ios,
    /// Any phone (Android and iOS included).
    Mobile,
    /// Anything that is no phone.
    Desktop,
}

impl DeviceCondition {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "android" => Self::Android,
            "ios" => Self::Ios,
            "mobile" => Self::Mobile,
            "desktop" => Self::Desktop,
            _ => return None,
        })
    }

    /// Whether a visitor on `device` meets the condition.
    pub fn matches(self, device: Device) -> bool {
        match self {
            Self::Android => device == Device::Android,
            Self::Ios => device == Device::Ios,
            Self::Mobile => device != Device::Desktop,
            Self::Desktop => device == Device::Desktop,
        }
    }
}

/// One rule, as stored in the link's record and shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Where a matching visit goes (a valid [`TargetUrl`]).
    pub url: String,
    /// The device condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceCondition>,
    /// A primary language tag, lower case (`de`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Query pairs that must all be present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
}

/// A rule as a create or an edit sends it, before validation.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
// A URL and at least one condition.
#[cfg_attr(not(target_arch = "wasm32"), schema(min_properties = 2))]
pub struct RuleInput {
    /// Where a matching visit goes, validated like the link's `url`.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?:", max_length = 2048)
    )]
    pub url: String,
    /// `android`, `ios`, `mobile` or `desktop`.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(value_type = Option<DeviceCondition>))]
    pub device: Option<String>,
    /// A primary language tag (1 to 8 letters, e.g. `de`), matched against
    /// `Accept-Language`.
    #[serde(default)]
    #[cfg_attr(not(target_arch = "wasm32"), schema(pattern = "^[A-Za-z]{1,8}$"))]
    pub language: Option<String>,
    /// Query parameters that must all be present with these values (at most
    /// 10; keys and values at most 256 bytes, keys not empty).
    #[serde(default)]
    pub query: Option<BTreeMap<String, String>>,
}

/// A rule's view in the API (what [`Rule`] serialises to).
#[cfg(not(target_arch = "wasm32"))]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RuleView {
    /// Where a matching visit goes.
    url: String,
    /// The device condition, if any.
    device: Option<DeviceCondition>,
    /// The language condition, if any.
    language: Option<String>,
    /// The query condition, if any.
    query: Option<BTreeMap<String, String>>,
}

fn invalid(index: usize, why: impl std::fmt::Display) -> LinkError {
    LinkError::InvalidRule(format!("rules[{index}]: {why}"))
}

/// Validates a list of rules: at most [`MAX_RULES`], each with a valid URL
/// and at least one valid condition.
pub fn parse_rules(inputs: &[RuleInput], ours: &OwnOrigins) -> Result<Vec<Rule>, LinkError> {
    if inputs.len() > MAX_RULES {
        return Err(LinkError::InvalidRule(format!(
            "A link has at most {MAX_RULES} rules."
        )));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| parse_rule(i, input, ours))
        .collect()
}

fn parse_rule(index: usize, input: &RuleInput, ours: &OwnOrigins) -> Result<Rule, LinkError> {
    let url = TargetUrl::parse(&input.url, ours).map_err(|e| invalid(index, e))?;
    let device = input
        .device
        .as_deref()
        .map(|raw| {
            DeviceCondition::parse(raw).ok_or_else(|| {
                invalid(
                    index,
                    "`device` is one of `android`, `ios`, `mobile`, `desktop`.",
                )
            })
        })
        .transpose()?;
    let language = input
        .language
        .as_deref()
        .map(|raw| {
            (!raw.is_empty() && raw.len() <= 8 && raw.bytes().all(|b| b.is_ascii_alphabetic()))
                .then(|| raw.to_ascii_lowercase())
                .ok_or_else(|| {
                    invalid(
                        index,
                        "`language` is a primary language tag of 1 to 8 letters, e.g. `de`.",
                    )
                })
        })
        .transpose()?;
    let query = input.query.clone().unwrap_or_default();
    if query.len() > MAX_QUERY_PAIRS {
        return Err(invalid(
            index,
            format!("`query` has at most {MAX_QUERY_PAIRS} pairs."),
        ));
    }
    if query.iter().any(|(k, v)| {
        k.is_empty() || k.len() > MAX_QUERY_PART_BYTES || v.len() > MAX_QUERY_PART_BYTES
    }) {
        return Err(invalid(
            index,
            format!(
                "`query` keys are 1 to {MAX_QUERY_PART_BYTES} bytes, values at most {MAX_QUERY_PART_BYTES}."
            ),
        ));
    }
    if device.is_none() && language.is_none() && query.is_empty() {
        return Err(invalid(
            index,
            "a rule needs at least one condition: `device`, `language` or `query`.",
        ));
    }
    Ok(Rule {
        url: url.as_str().to_owned(),
        device,
        language,
        query,
    })
}

/// What rules look at in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<'a> {
    /// The visitor's device.
    pub device: Device,
    /// Primary tags of the accepted languages (q > 0), lower case.
    pub languages: Vec<String>,
    /// The decoded query pairs.
    pub query: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Seen<'a> {
    /// What rules see of a request: its device, `Accept-Language` and query
    /// (a query over [`MAX_FORWARDED_QUERY_BYTES`] is read as none).
    pub fn of(device: Device, accept_language: Option<&str>, query: Option<&'a str>) -> Self {
        let query = query
            .filter(|q| q.len() <= MAX_FORWARDED_QUERY_BYTES)
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).collect())
            .unwrap_or_default();
        Self {
            device,
            languages: accept_language.map(accepted_languages).unwrap_or_default(),
            query,
        }
    }
}

impl Rule {
    /// Whether every condition of the rule holds for `seen`.
    pub fn matches(&self, seen: &Seen<'_>) -> bool {
        self.device.is_none_or(|d| d.matches(seen.device))
            && self
                .language
                .as_ref()
                .is_none_or(|l| seen.languages.iter().any(|s| s == l))
            && self.query.iter().all(|(k, v)| {
                seen.query
                    .iter()
                    .any(|(sk, sv)| sk.as_ref() == k && sv.as_ref() == v)
            })
    }
}

/// The first rule that matches, with its index.
pub fn choose<'r>(rules: &'r [Rule], seen: &Seen<'_>) -> Option<(usize, &'r Rule)> {
    rules.iter().enumerate().find(|(_, r)| r.matches(seen))
}

/// The primary tags of an `Accept-Language` value whose q-value is above
/// zero, lower case, in the header's order (`*` and malformed entries are
/// skipped). Only its first [`MAX_ACCEPT_LANGUAGE_BYTES`] are read.
pub fn accepted_languages(header: &str) -> Vec<String> {
    crate::clicks::capped(header, MAX_ACCEPT_LANGUAGE_BYTES)
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';');
            let tag = parts.next()?.trim();
            let primary = tag.split('-').next()?;
            if primary.is_empty()
                || primary.len() > 8
                || !primary.bytes().all(|b| b.is_ascii_alphabetic())
            {
                return None;
            }
            for param in parts {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    let q: f32 = value.trim().parse().ok()?;
                    if !(q > 0.0 && q <= 1.0) {
                        return None;
                    }
                }
            }
            Some(primary.to_ascii_lowercase())
        })
        .collect()
}

/// `target` with the request's `query` appended: after the target's own
/// query (kept, first), before its fragment. Bytes that may not stand in a
/// `Location` unescaped (controls, spaces, non-ASCII, `#`) are
/// percent-encoded. An empty query, or one over
/// [`MAX_FORWARDED_QUERY_BYTES`], is not forwarded.
pub fn forward_query<'t>(target: &'t str, query: Option<&str>) -> Cow<'t, str> {
    let Some(query) = query.filter(|q| !q.is_empty() && q.len() <= MAX_FORWARDED_QUERY_BYTES)
    else {
        return Cow::Borrowed(target);
    };
    let (base, fragment) = match target.find('#') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let mut out = String::with_capacity(target.len() + query.len() + 1);
    out.push_str(base);
    if !base.contains('?') {
        out.push('?');
    } else if !(base.ends_with('?') || base.ends_with('&')) {
        // (`https://e.com/?` and `…?a=1&` need no separator.)
        out.push('&');
    }
    for &b in query.as_bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'#' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(fragment);
    Cow::Owned(out)
}

/// A click limit: a whole number of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxClicks(i64);

impl MaxClicks {
    /// Validates a limit.
    pub fn parse(n: i64) -> Result<Self, LinkError> {
        if n >= 1 {
            Ok(Self(n))
        } else {
            Err(LinkError::InvalidMaxClicks)
        }
    }

    /// The limit.
    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> OwnOrigins {
        OwnOrigins::new(&url::Url::parse("https://sho.rt").unwrap(), &[]).unwrap()
    }

    fn input(url: &str) -> RuleInput {
        RuleInput {
            url: url.into(),
            device: None,
            language: None,
            query: None,
        }
    }

    #[test]
    fn a_rule_needs_a_valid_url_and_a_condition() {
        let err = parse_rules(&[input("https://e.com/")], &ours()).unwrap_err();
        assert_eq!(err.code(), "invalid_rule");
        assert!(err.to_string().starts_with("rules[0]:"), "{err}");
        let mut bad_url = input("ftp://e.com/");
        bad_url.device = Some("ios".into());
        assert_eq!(
            parse_rules(&[bad_url], &ours()).unwrap_err().code(),
            "invalid_rule"
        );
        let mut own = input("https://sho.rt/abc");
        own.device = Some("ios".into());
        let err = parse_rules(&[own], &ours()).unwrap_err();
        assert!(err.to_string().contains("back at this shortener"), "{err}");
        let mut ok = input("HTTPS://E.com");
        ok.device = Some("ios".into());
        ok.language = Some("DE".into());
        let rules = parse_rules(&[ok], &ours()).unwrap();
        assert_eq!(rules[0].url, "https://e.com/");
        assert_eq!(rules[0].language.as_deref(), Some("de"));
    }

    #[test]
    fn bad_conditions_and_too_many_rules_are_refused() {
        let with = |f: &dyn Fn(&mut RuleInput)| {
            let mut r = input("https://e.com/");
            f(&mut r);
            parse_rules(&[r], &ours()).map(drop).unwrap_err().code()
        };
        assert_eq!(with(&|r| r.device = Some("tablet".into())), "invalid_rule");
        assert_eq!(with(&|r| r.language = Some("de-AT".into())), "invalid_rule");
        assert_eq!(with(&|r| r.language = Some(String::new())), "invalid_rule");
        assert_eq!(
            with(&|r| r.query = Some([(String::new(), "x".into())].into())),
            "invalid_rule"
        );
        assert_eq!(
            with(&|r| r.query = Some((0..11).map(|i| (i.to_string(), String::new())).collect())),
            "invalid_rule"
        );
        let mut r = input("https://e.com/");
        r.device = Some("desktop".into());
        let eleven = vec![r; MAX_RULES + 1];
        assert_eq!(
            parse_rules(&eleven, &ours()).unwrap_err().code(),
            "invalid_rule"
        );
        assert_eq!(parse_rules(&eleven[1..], &ours()).unwrap().len(), MAX_RULES);
    }

    fn rule(
        device: Option<DeviceCondition>,
        language: Option<&str>,
        query: &[(&str, &str)],
    ) -> Rule {
        Rule {
            url: "https://e.com/".into(),
            device,
            language: language.map(str::to_owned),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_first_rule_whose_conditions_all_match_wins() {
        let rules = [
            rule(Some(DeviceCondition::Ios), Some("de"), &[]),
            rule(Some(DeviceCondition::Mobile), None, &[]),
            rule(None, None, &[("src", "mail"), ("v", "2")]),
        ];
        let seen = |d, lang, q| Seen::of(d, lang, q);
        let pick = |s: &Seen<'_>| choose(&rules, s).map(|(i, _)| i);
        assert_eq!(
            pick(&seen(Device::Ios, Some("fr, de;q=0.5"), None)),
            Some(0)
        );
        assert_eq!(pick(&seen(Device::Ios, Some("fr"), None)), Some(1));
        assert_eq!(pick(&seen(Device::Android, None, None)), Some(1));
        assert_eq!(pick(&seen(Device::OtherMobile, None, None)), Some(1));
        assert_eq!(
            pick(&seen(Device::Desktop, None, Some("v=2&src=mail&x=1"))),
            Some(2)
        );
        assert_eq!(pick(&seen(Device::Desktop, None, Some("src=mail"))), None);
        assert_eq!(
            pick(&seen(Device::Desktop, None, Some("src=m%61il&v=2"))),
            Some(2)
        );
        assert_eq!(pick(&seen(Device::Desktop, None, None)), None);
        let desktop = rule(Some(DeviceCondition::Desktop), None, &[]);
        assert!(desktop.matches(&seen(Device::Desktop, None, None)));
        assert!(!desktop.matches(&seen(Device::Android, None, None)));
        let android = rule(Some(DeviceCondition::Android), None, &[]);
        assert!(!android.matches(&seen(Device::Ios, None, None)));
    }

    #[test]
    fn accept_language_keeps_primary_tags_with_a_positive_q_value() {
        assert_eq!(
            accepted_languages("de-AT, en;q=0.8, fr;q=0, *;q=0.1, es; q=0.3, x1, it;q=abc"),
            ["de", "en", "es"]
        );
        assert_eq!(accepted_languages("EN-us"), ["en"]);
        assert!(accepted_languages("").is_empty());
        // Only the capped prefix is read.
        let long = format!("{}, de", "en,".repeat(MAX_ACCEPT_LANGUAGE_BYTES));
        assert!(!accepted_languages(&long).contains(&"de".to_owned()));
    }

    #[test]
    fn a_forwarded_query_follows_the_targets_own_before_its_fragment() {
        let f = |t, q| forward_query(t, q).into_owned();
        assert_eq!(
            f("https://e.com/p", Some("utm_source=x")),
            "https://e.com/p?utm_source=x"
        );
        assert_eq!(
            f("https://e.com/p?a=1", Some("a=2&b")),
            "https://e.com/p?a=1&a=2&b"
        );
        assert_eq!(
            f("https://e.com/p?a=1#top", Some("b=2")),
            "https://e.com/p?a=1&b=2#top"
        );
        assert_eq!(
            f("https://e.com/p#top", Some("b=2")),
            "https://e.com/p?b=2#top"
        );
        assert_eq!(f("https://e.com/p?", Some("b=2")), "https://e.com/p?b=2");
        assert_eq!(f("https://e.com/p", Some("")), "https://e.com/p");
        assert_eq!(f("https://e.com/p", None), "https://e.com/p");
        assert_eq!(
            f("https://e.com/p", Some("q=a b\u{e9}#")),
            "https://e.com/p?q=a%20b%C3%A9%23"
        );
        let huge = "a=".to_owned() + &"x".repeat(MAX_FORWARDED_QUERY_BYTES);
        assert_eq!(f("https://e.com/p", Some(&huge)), "https://e.com/p");
        let most = "a=".to_owned() + &"x".repeat(MAX_FORWARDED_QUERY_BYTES - 2);
        assert_eq!(
            f("https://e.com/p", Some(&most)).len(),
            "https://e.com/p?".len() + MAX_FORWARDED_QUERY_BYTES
        );
    }

    #[test]
    fn a_click_limit_is_at_least_one() {
        assert_eq!(MaxClicks::parse(1).unwrap().get(), 1);
        assert_eq!(
            MaxClicks::parse(0).unwrap_err().code(),
            "invalid_max_clicks"
        );
        assert_eq!(
            MaxClicks::parse(-5).unwrap_err().code(),
            "invalid_max_clicks"
        );
    }
}
