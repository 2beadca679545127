//! `TargetUrl` through the router: a URL accepted is never one that resolves
//! to this shortener, whatever spelling of its host or base path, and every other
//! absolute http(s) URL is accepted as the WHATWG parser normalises it.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::json;
use url::{Host, Url};

use super::app::Harness;
use super::slugs::flip_case;
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "no url accepted points back at this shortener or an alias host by letter case or an explicit default port",
            cost: 4,
            check: |cases| self_references_are_refused(cases, Spelling::CaseAndPort),
        },
        Property {
            name: "no url accepted points back at this shortener or an alias host by any spelling of the host",
            cost: 4,
            check: |cases| self_references_are_refused(cases, Spelling::Any),
        },
        Property {
            name: "every absolute http or https url to another host is accepted as normalised and accepted again",
            cost: 4,
            check: other_hosts_are_accepted,
        },
    ]
}

/// The `public_base_url`s and `public_host_aliases` the properties run
/// against (one app each).
const BASES: &[(&str, &str)] = &[
    ("https://sho.rt", "go.sho.rt, short.example:8443"),
    ("http://127.0.0.1:3000", ""),
    (
        "https://go.example.com/s/",
        "[2001:db8::5], 192.0.2.10:8080",
    ),
];

/// Our origins as the oracle sees them: (host key, port) pairs and the
/// base's path prefix. An alias without a port stands for the base's port.
struct Ours {
    origins: Vec<(Option<String>, Option<u16>)>,
    prefix: String,
    hosts: Vec<String>,
    ports: Vec<u16>,
}

impl Ours {
    fn new(base: &str, aliases: &str) -> Self {
        let base = Url::parse(base).unwrap();
        let base_port = base.port_or_known_default();
        let mut ours = Self {
            origins: vec![(host_key(&base), base_port)],
            prefix: base.path().trim_end_matches('/').to_owned(),
            hosts: vec![base.host_str().unwrap().to_owned()],
            ports: base_port.into_iter().collect(),
        };
        for alias in aliases.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let url = Url::parse(&format!("http://{alias}/")).unwrap();
            let port = url.port().or(base_port);
            ours.origins.push((host_key(&url), port));
            ours.hosts.push(url.host_str().unwrap().to_owned());
            ours.ports.extend(port);
        }
        ours
    }
}

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
            if d == "localhost" {
                "loopback".into()
            } else {
                d
            }
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
/// host (by [`host_key`]) and port of one of our origins, under the base's
/// path.
fn points_at(url: &Url, ours: &Ours) -> bool {
    let prefix = folded(&ours.prefix);
    let path = folded(url.path());
    let origin = (host_key(url), url.port_or_known_default());
    ours.origins.contains(&origin)
        && (prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/")))
}

/// A path with its escapes of unreserved characters decoded and its letters
/// lower-cased: two paths that reach the same route of ours fold alike.
fn folded(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        let unescaped = rest
            .strip_prefix('%')
            .and_then(|r| r.get(..2))
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .map(char::from)
            .filter(|c| c.is_ascii_alphanumeric() || "-._~".contains(*c));
        match unescaped {
            Some(u) => {
                out.push(u.to_ascii_lowercase());
                rest = &rest[3..];
            }
            None => {
                out.push(c.to_ascii_lowercase());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `path` with each character percent-escaped or its case flipped, as the
/// bits of `how` say (two bits a character, cycling).
fn respelled(path: &str, how: u64) -> String {
    path.chars()
        .enumerate()
        .map(|(i, c)| match (how >> ((2 * i) % 64)) & 3 {
            1 if c != '/' => format!("%{:02X}", c as u32),
            2 if c != '/' => format!("%{:02x}", c as u32),
            3 => flip_case(&c.to_string(), 1),
            _ => c.to_string(),
        })
        .collect()
}

/// Spellings of our hosts.
fn own_host(ours: &Ours, spelling: Spelling) -> BoxedStrategy<String> {
    let mut names: Vec<String> = Vec::new();
    for host in &ours.hosts {
        if spelling == Spelling::Any && is_loopback_name(host) {
            names.extend(LOOPBACK.iter().map(|s| (*s).to_owned()));
        } else {
            names.push(host.clone());
        }
    }
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
fn url_from(ours: &Ours, host: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let own_ports = ours.ports.clone();
    let prefix = ours.prefix.clone();
    let scheme = prop_oneof![Just("http"), Just("https"), Just("HTTP"), Just("hTtPs")];
    let port = prop_oneof![
        Just(None),
        Just(Some(0u32)), // the scheme's default, written out
        prop::sample::select(own_ports).prop_map(|p| Some(u32::from(p))),
        (1u32..65536).prop_map(Some),
    ];
    let path = prop_oneof![
        Just(String::new()),
        Just(prefix.clone()),
        "[A-Za-z0-9_-]{3,10}".prop_map({
            let prefix = prefix.clone();
            move |s| format!("{prefix}/{s}")
        }),
        // The base path escaped or in another case, then a slug or nothing.
        (any::<u64>(), "(/[A-Za-z0-9_-]{3,10})?")
            .prop_map(move |(how, s)| format!("{}{s}", respelled(&prefix, how))),
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

fn harness_for(base: &str, aliases: &str) -> Harness {
    Harness::new(&[("public_base_url", base), ("public_host_aliases", aliases)])
}

fn self_references_are_refused(cases: u32, spelling: Spelling) -> Result<(), String> {
    for &(base_text, aliases) in BASES {
        let ours = Ours::new(base_text, aliases);
        let harness = harness_for(base_text, aliases);
        let urls = prop_oneof![
            3 => url_from(&ours, own_host(&ours, spelling)),
            1 => url_from(&ours, other_host()),
        ];
        check(cases.div_ceil(BASES.len() as u32), urls, |raw| {
            let created = harness.create(&json!({"url": raw}));
            let status = created.status.as_u16();
            prop_assert!(
                status == 201 || status == 400,
                "{} for {}: {}",
                status,
                raw,
                created.text()
            );
            if status == 201 {
                let input = Url::parse(&raw).unwrap();
                let stored = Url::parse(created.json()["url"].as_str().unwrap()).unwrap();
                prop_assert!(
                    !points_at(&input, &ours) && !points_at(&stored, &ours),
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
    for &(base_text, aliases) in BASES {
        let ours = Ours::new(base_text, aliases);
        let harness = harness_for(base_text, aliases);
        check(
            cases.div_ceil(BASES.len() as u32),
            url_from(&ours, other_host()),
            |raw| {
                let normalised = Url::parse(&raw).unwrap();
                prop_assume!(!points_at(&normalised, &ours));
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
