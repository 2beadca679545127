//! `TargetUrl` through the router: a URL accepted is never one that resolves
//! to this shortener, whatever spelling of its host, and every other
//! absolute http(s) URL is accepted as the WHATWG parser normalises it.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::json;
use url::{Host, Url};

use crate::app::Harness;
use crate::slugs::flip_case;
use crate::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "no url accepted points back at this shortener by letter case or an explicit default port",
            cost: 30,
            pending: None,
            check: |cases| self_references_are_refused(cases, Spelling::CaseAndPort),
        },
        Property {
            name: "no url accepted points back at this shortener by any spelling of its host",
            cost: 30,
            pending: Some("until core's fix of class 3 (self-reference by another name) lands"),
            check: |cases| self_references_are_refused(cases, Spelling::Any),
        },
        Property {
            name: "every absolute http or https url to another host is accepted as normalised and accepted again",
            cost: 30,
            pending: None,
            check: other_hosts_are_accepted,
        },
    ]
}

/// The public base URLs the properties run against (one app each).
const BASES: &[&str] = &[
    "https://sho.rt",
    "http://127.0.0.1:3000",
    "https://go.example.com/s/",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Spelling {
    /// Letter case and an explicit default port only.
    CaseAndPort,
    /// Also a trailing dot, percent-encoding and, for a loopback base, every
    /// name of the loopback host.
    Any,
}

/// Names of 127.0.0.1 / ::1 as a URL may write them.
const LOOPBACK: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
];

fn is_loopback_name(host: &str) -> bool {
    host_key(&Url::parse(&format!("http://{host}/")).unwrap()).as_deref() == Some("loopback")
}

/// How a host compares for "is this us": lower case, one trailing dot
/// dropped, every loopback spelling the same.
fn host_key(url: &Url) -> Option<String> {
    Some(match url.host()? {
        Host::Domain(d) => {
            let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
            if d == "localhost" { "loopback".into() } else { d }
        }
        Host::Ipv4(a) if a == Ipv4Addr::LOCALHOST => "loopback".into(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a)
            if a == Ipv6Addr::LOCALHOST || a.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST) =>
        {
            "loopback".into()
        }
        Host::Ipv6(a) => a.to_string(),
    })
}

/// The oracle: whether `url` reaches this shortener's short links, i.e. the
/// same host (by [`host_key`]) and port, under the base's path.
fn points_at(url: &Url, base: &Url) -> bool {
    let prefix = base.path().trim_end_matches('/');
    host_key(url) == host_key(base)
        && url.port_or_known_default() == base.port_or_known_default()
        && (prefix.is_empty()
            || url.path() == prefix
            || url.path().starts_with(&format!("{prefix}/")))
}

/// Spellings of `base`'s host.
fn own_host(base: &Url, spelling: Spelling) -> BoxedStrategy<String> {
    let host = base.host_str().unwrap().to_owned();
    let names: Vec<String> = if spelling == Spelling::Any && is_loopback_name(&host) {
        LOOPBACK.iter().map(|s| (*s).to_owned()).collect()
    } else {
        vec![host]
    };
    (prop::sample::select(names), any::<u64>(), 0u8..4)
        .prop_map(move |(name, case, variant)| {
            let name = flip_case(&name, case);
            if spelling == Spelling::CaseAndPort || name.starts_with('[') {
                return name;
            }
            match variant {
                // A fully qualified name (trailing root dot).
                1 => format!("{name}."),
                // A percent-encoded dot (the parser decodes it).
                2 if name.contains('.') => name.replacen('.', "%2E", 1),
                _ => name,
            }
        })
        .boxed()
}

fn other_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}[a-z0-9]\\.(com|org|net|example)",
        "[a-z]{1,8}\\.sho\\.rt\\.evil\\.example",
        (1u8..127, any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| Ipv4Addr::new(a, b, c, d).to_string()),
        Just("[2001:db8::1]".to_owned()),
        Just("xn--bcher-kva.example".to_owned()),
    ]
}

/// `scheme://host[:port]path[?query][#fragment]` from parts.
fn url_from(base: &Url, host: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let base_port = base.port_or_known_default().unwrap();
    let prefix = base.path().trim_end_matches('/').to_owned();
    let scheme = prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("hTtPs")];
    let port = prop_oneof![
        Just(None),
        Just(Some(0u32)), // the scheme's default, written out
        Just(Some(u32::from(base_port))),
        (1u32..65536).prop_map(Some),
    ];
    let path = prop_oneof![
        Just(String::new()),
        Just(prefix.clone()),
        "[A-Za-z0-9_-]{3,10}".prop_map(move |s| format!("{prefix}/{s}")),
        "(/[A-Za-z0-9._~%-]{0,8}){0,3}",
    ];
    let tail = prop_oneof![Just(""), Just("?a=b"), Just("#x"), Just("?utm=1#top")];
    (scheme, host, port, path, tail).prop_map(move |(scheme, host, port, path, tail)| {
        let port = match port {
            None => String::new(),
            Some(0) if scheme.eq_ignore_ascii_case("https") => ":443".into(),
            Some(0) => ":80".into(),
            Some(p) => format!(":{p}"),
        };
        format!("{scheme}://{host}{port}{path}{tail}")
    })
}

fn harness_for(base: &str) -> Harness {
    Harness::new(&[("public_base_url", base)])
}

fn self_references_are_refused(cases: u32, spelling: Spelling) -> Result<(), String> {
    for base_text in BASES {
        let base = Url::parse(base_text).unwrap();
        let harness = harness_for(base_text);
        let urls = prop_oneof![
            3 => url_from(&base, own_host(&base, spelling)),
            1 => url_from(&base, other_host()),
        ];
        check(cases.div_ceil(BASES.len() as u32), urls, |raw| {
            let created = harness.create(&json!({"url": raw}));
            let status = created.status.as_u16();
            prop_assert!(status == 201 || status == 400, "{} for {}: {}", status, raw, created.text());
            if status == 201 {
                let input = Url::parse(&raw).unwrap();
                let stored = Url::parse(created.json()["url"].as_str().unwrap()).unwrap();
                prop_assert!(
                    !points_at(&input, &base) && !points_at(&stored, &base),
                    "{} was accepted as {} but points at {}",
                    raw,
                    stored,
                    base_text
                );
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn other_hosts_are_accepted(cases: u32) -> Result<(), String> {
    for base_text in BASES {
        let base = Url::parse(base_text).unwrap();
        let harness = harness_for(base_text);
        check(
            cases.div_ceil(BASES.len() as u32),
            url_from(&base, other_host()),
            |raw| {
                let normalised = Url::parse(&raw).unwrap();
                prop_assume!(!points_at(&normalised, &base));
                let created = harness.create(&json!({"url": raw}));
                prop_assert_eq!(created.status.as_u16(), 201, "{}: {}", raw, created.text());
                let stored = created.json()["url"].as_str().unwrap().to_owned();
                prop_assert_eq!(&stored, normalised.as_str());
                let again = harness.create(&json!({"url": stored}));
                prop_assert_eq!(again.status.as_u16(), 201, "{}", again.text());
                prop_assert_eq!(&again.json()["url"], &json!(stored));
                Ok(())
            },
        )?;
    }
    Ok(())
}
