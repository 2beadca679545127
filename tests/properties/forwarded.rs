//! The `X-Forwarded-For` walk: what a client writes left of our proxies'
//! entries never changes who the visitor is.
//!
//! A request passes through `hops` trusted proxies; each appends the
//! address it saw, either to the last `X-Forwarded-For` line or as a new
//! line. Everything before the first proxy's entry is the client's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use serde_json::json;
use shortener::clicks::{client_ip, visitor_hash};

use super::app::{CHROME, Harness};
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "the client address never changes with left-most x-forwarded-for entries",
            cost: 1,
            check: left_entries_never_change_the_client,
        },
        Property {
            name: "without trusted hops the client is the peer whatever x-forwarded-for says",
            cost: 1,
            check: without_hops_the_peer_is_the_client,
        },
        Property {
            name: "the recorded visitor never changes with left-most x-forwarded-for bytes",
            cost: 6,
            check: left_bytes_never_change_the_visitor,
        },
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

/// How a proxy writes the address it saw: bare, with a port, bracketed.
fn written(ip: IpAddr, style: u8, port: u16) -> String {
    match (ip, style % 3) {
        (IpAddr::V4(a), 1) => format!("{a}:{port}"),
        (IpAddr::V6(a), 1) => format!("[{a}]:{port}"),
        (IpAddr::V6(a), 2) => format!("[{a}]"),
        (a, _) => a.to_string(),
    }
}

/// What a client may put in the header: anything printable, commas included.
fn junk_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        ip().prop_map(|a| a.to_string()),
        "[0-9.:, ]{0,24}",
        "\\PC{0,12}",
    ]
}

/// A hop: the address the proxy saw, how it writes it, and whether it
/// starts a new header line.
type Hop = (IpAddr, u8, u16, bool);

fn hops() -> impl Strategy<Value = Vec<Hop>> {
    prop::collection::vec((ip(), any::<u8>(), 1u16.., any::<bool>()), 1..5)
}

/// The header lines after each proxy appended to `client_lines`.
fn through_proxies(client_lines: &[String], hops: &[Hop]) -> Vec<String> {
    let mut lines = client_lines.to_vec();
    for &(seen, style, port, new_line) in hops {
        let entry = written(seen, style, port);
        match lines.last_mut() {
            Some(last) if !new_line => {
                last.push_str(", ");
                last.push_str(&entry);
            }
            _ => lines.push(entry),
        }
    }
    lines
}

fn left_entries_never_change_the_client(cases: u32) -> Result<(), String> {
    let strategy = (hops(), prop::collection::vec(junk_text(), 0..4), ip());
    check(cases, strategy, |(hops, junk, peer)| {
        let honest = through_proxies(&[], &hops);
        let spoofed = through_proxies(&junk, &hops);
        fn as_refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let client = hops[0].0;
        let n = hops.len();
        prop_assert_eq!(client_ip(Some(peer), &as_refs(&honest), n), Some(client));
        prop_assert_eq!(
            client_ip(Some(peer), &as_refs(&spoofed), n),
            Some(client),
            "lines {:?}",
            spoofed
        );
        Ok(())
    })
}

fn without_hops_the_peer_is_the_client(cases: u32) -> Result<(), String> {
    let strategy = (
        prop::collection::vec(junk_text(), 0..4),
        prop::option::of(ip()),
    );
    check(cases, strategy, |(lines, peer)| {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        prop_assert_eq!(client_ip(peer, &refs, 0), peer);
        Ok(())
    })
}

/// Header bytes a client can send: visible ASCII, tabs and obs-text.
fn junk_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 2 => 0x80u8..=0xff],
        0..24,
    )
    .prop_map(|mut v| {
        // A header value has no surrounding white space on the wire.
        while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.remove(0);
        }
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        v
    })
}

fn left_bytes_never_change_the_visitor(cases: u32) -> Result<(), String> {
    let harnesses: Vec<Harness> = (1..=4)
        .map(|n| Harness::new(&[("trusted_proxy_hops", &n.to_string())]))
        .collect();
    for h in &harnesses {
        let r = h.create(&json!({"url": "https://example.com/", "slug": "xff-walk"}));
        assert_eq!(r.status.as_u16(), 201, "{}", r.text());
    }
    let strategy = (hops(), prop::collection::vec(junk_bytes(), 1..3), ip());
    check(cases, strategy, |(hops, junk, peer)| {
        let harness = &harnesses[hops.len() - 1];
        let client = hops[0].0;
        // The client's lines, then the proxies' entries appended as text.
        let mut lines: Vec<Vec<u8>> = junk.clone();
        for &(seen, style, port, new_line) in &hops {
            let entry = written(seen, style, port).into_bytes();
            match lines.last_mut() {
                Some(last) if !new_line => {
                    last.extend_from_slice(b", ");
                    last.extend_from_slice(&entry);
                }
                _ => lines.push(entry),
            }
        }
        let mut headers: Vec<(&str, &[u8])> = vec![("user-agent", CHROME.as_bytes())];
        headers.extend(lines.iter().map(|l| ("x-forwarded-for", l.as_slice())));
        let r = harness.visit("xff-walk", peer, &headers);
        prop_assert_eq!(r.status.as_u16(), 302, "{}", r.text());
        let last = harness.rows(
            "SELECT visitor FROM clicks ORDER BY id DESC LIMIT 1",
            vec![],
        );
        let recorded = last[0][0].as_str().unwrap_or_default().to_owned();
        let expected = visitor_hash(
            "property-visitor-salt-0123456789abcdef",
            Some(client),
            CHROME,
            "2030-01-15",
        );
        prop_assert_eq!(
            recorded,
            expected,
            "the visitor is not {} for lines {:?}",
            client,
            lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect::<Vec<_>>()
        );
        Ok(())
    })
}
