//! What the host says about a request, told apart from what the client says.
//!
//! Spin passes request metadata to the component as `spin-*` headers
//! (`spin-client-addr`, `spin-full-url`, `spin-path-info`, ...), **appended**
//! after the client's own headers. A client can send headers with the same
//! names, so the first value of `spin-client-addr` may be anything the client
//! chose. [`trust_host_headers`] leaves only what Spin set: for each header
//! Spin sets, its last value; every other `spin-*` header (Spin sets none
//! for our routes, which have no named wildcards) is removed.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::HeaderName;

/// The headers Spin sets on every request (Spin's `trigger-http` headers).
pub const SPIN_HEADERS: [&str; 7] = [
    "spin-full-url",
    "spin-path-info",
    "spin-matched-route",
    "spin-base-path",
    "spin-raw-component-route",
    "spin-component-route",
    "spin-client-addr",
];

/// The peer address header.
pub const CLIENT_ADDR: &str = "spin-client-addr";

/// Keeps only Spin's own value of every `spin-*` header: the last value of
/// each header Spin sets, and none of any other `spin-*` header.
pub fn trust_host_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in names {
        let last = if SPIN_HEADERS.contains(&name.as_str()) {
            let mut values = headers.get_all(&name).iter();
            let last = values.next_back();
            if values.next().is_none() {
                // Spin's value alone (every request but a forging one):
                // nothing to rewrite.
                continue;
            }
            last.cloned()
        } else {
            None
        };
        headers.remove(&name);
        if let Some(value) = last {
            headers.insert(name, value);
        }
    }
}

/// The socket peer Spin reported (`ip:port`), from headers already passed
/// through [`trust_host_headers`].
pub fn client_addr(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all(CLIENT_ADDR)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<SocketAddr>().ok())
        .map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_forged_client_addr_before_spins_own_is_ignored() {
        let mut h = headers(&[
            ("spin-client-addr", "6.6.6.6:1"),
            ("user-agent", "x"),
            ("spin-client-addr", "127.0.0.1:4242"),
        ]);
        trust_host_headers(&mut h);
        assert_eq!(client_addr(&h), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(h.get_all("spin-client-addr").iter().count(), 1);
    }

    #[test]
    fn every_spin_header_keeps_only_its_last_value() {
        let mut pairs = Vec::new();
        for name in SPIN_HEADERS {
            pairs.push((name, "forged"));
            pairs.push((name, "spin"));
        }
        let mut h = headers(&pairs);
        trust_host_headers(&mut h);
        for name in SPIN_HEADERS {
            let values: Vec<_> = h.get_all(name).iter().collect();
            assert_eq!(values, ["spin"], "{name}");
        }
    }

    #[test]
    fn spin_headers_spin_never_sets_are_dropped_and_others_kept() {
        let mut h = headers(&[
            ("spin-path-match-slug", "forged"),
            ("spin-anything", "forged"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        trust_host_headers(&mut h);
        assert!(h.get("spin-path-match-slug").is_none());
        assert!(h.get("spin-anything").is_none());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "1.2.3.4");
    }

    #[test]
    fn a_missing_or_malformed_client_addr_is_no_address() {
        assert_eq!(client_addr(&HeaderMap::new()), None);
        let h = headers(&[("spin-client-addr", "not an address")]);
        assert_eq!(client_addr(&h), None);
        let v6 = headers(&[("spin-client-addr", "[::1]:80")]);
        assert_eq!(client_addr(&v6), Some("::1".parse().unwrap()));
    }
}
