//! `TargetUrl`: where a link may point, and `OwnOrigins`: the names of
//! this shortener, which no link may point back at.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use url::{Host, Url};

use super::{LinkError, MAX_URL_BYTES};

/// Where this shortener answers, as a target URL would name it: the host
/// and port of `public_base_url` and of every operator alias
/// (`public_host_aliases`), under the base's path prefix.
///
/// Hosts are compared normalised: lower case, without a trailing dot,
/// IPv4-mapped / -compatible IPv6 as IPv4, and every loopback or unspecified
/// address (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`, `0.0.0.0`, `::`)
/// as one "this machine". Ports are compared with their scheme's default
/// filled in; the web ports 80 and 443 count as one, since a proxy serving
/// one normally serves (or redirects) the other. Paths are compared with
/// escapes of unreserved characters decoded and letters in one case (see
/// `path_key`): `/%73/x` and `/S/x` are under a base path `/s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOrigins {
    origins: Vec<(HostKey, Option<u16>)>,
    path_prefix: String,
}

/// A host, normalised for "is it us?".
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostKey {
    /// Any loopback or unspecified address, or `localhost`.
    ThisMachine,
    Ip(IpAddr),
    Name(String),
}

impl HostKey {
    fn of(host: Host<&str>) -> Self {
        match host {
            Host::Domain(name) => {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    HostKey::ThisMachine
                } else if let Ok(ip) = name.parse::<IpAddr>() {
                    Self::ip(ip)
                } else {
                    HostKey::Name(name)
                }
            }
            Host::Ipv4(ip) => Self::ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Self::ip(IpAddr::V6(ip)),
        }
    }

    fn ip(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => {
                v6.to_ipv4().map_or(IpAddr::V6(v6), IpAddr::V4)
            }
            other => other,
        };
        if ip.is_loopback() || ip.is_unspecified() || ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            HostKey::ThisMachine
        } else {
            HostKey::Ip(ip)
        }
    }
}

/// Whether two ports reach the same server (80 and 443 count as one).
fn same_port(a: u16, b: u16) -> bool {
    let web = |p| p == 80 || p == 443;
    a == b || (web(a) && web(b))
}

impl OwnOrigins {
    /// Our origins from the (validated) base URL and alias entries
    /// (`host` or `host:port`; IPv6 in brackets). An alias without a port
    /// stands for the base's port and the web ports.
    pub fn new(base: &Url, aliases: &[String]) -> Result<Self, String> {
        let mut origins = Vec::with_capacity(1 + aliases.len());
        let base_port = base.port_or_known_default().unwrap_or(80);
        if let Some(host) = base.host() {
            origins.push((HostKey::of(host), Some(base_port)));
        }
        for alias in aliases {
            let url = Url::parse(&format!("http://{alias}"))
                .ok()
                .filter(|u| {
                    u.path() == "/"
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none()
                })
                .ok_or_else(|| format!("`{alias}` is not a host or host:port"))?;
            let host = HostKey::of(url.host().ok_or_else(|| format!("`{alias}` has no host"))?);
            // `http://h:80` reports no port: it is a web port like none given.
            if url.port().is_none() {
                origins.push((host.clone(), Some(base_port)));
            }
            origins.push((host, url.port()));
        }
        Ok(Self {
            origins,
            path_prefix: path_key(base.path().trim_end_matches('/')),
        })
    }

    /// Whether `url` resolves to one of our origins, under our path prefix.
    pub fn contains(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return false;
        };
        let key = HostKey::of(host);
        let ours = self
            .origins
            .iter()
            .any(|(h, p)| *h == key && same_port(p.unwrap_or(80), port));
        let prefix = &self.path_prefix;
        if !ours {
            return false;
        }
        if prefix.is_empty() {
            return true;
        }
        let path = path_key(url.path());
        path == *prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// A path as "is it under our base path?" compares it: every
/// percent-escape of an unreserved character (`A-Z a-z 0-9 - . _ ~`,
/// RFC 3986 §2.3) decoded, since it names the same resource (§6.2.2.2) and
/// proxies may decode it, then ASCII letters folded to lower case, since
/// Caddy's `path` matcher, in front of the app, ignores case. Escapes of
/// reserved characters stay as they are: `%2F` is no segment separator.
/// Dot segments (`..`, `%2e%2e`) are already resolved by the URL parser.
fn path_key(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut key = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        match decoded {
            Some(b) => {
                key.push(char::from(b.to_ascii_lowercase()));
                i += 3;
            }
            None => {
                // `%` and ASCII bytes pass one at a time; the rest of a
                // multi-byte character follows unchanged (the parser has
                // percent-encoded non-ASCII already).
                let c = path[i..].chars().next().unwrap_or_default();
                key.push(c.to_ascii_lowercase());
                i += c.len_utf8();
            }
        }
    }
    key
}

/// A redirect target: an absolute http(s) URL with a host, at most
/// [`MAX_URL_BYTES`], without credentials, not pointing at our own links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(Url);

impl TargetUrl {
    /// Validates `raw`; `ours` is where this shortener answers.
    pub fn parse(raw: &str, ours: &OwnOrigins) -> Result<Self, LinkError> {
        let invalid = |m: &'static str| LinkError::InvalidUrl(Cow::Borrowed(m));
        if raw.len() > MAX_URL_BYTES {
            return Err(LinkError::InvalidUrl(
                format!("The URL is longer than {MAX_URL_BYTES} bytes.").into(),
            ));
        }
        if raw.trim() != raw || raw.is_empty() {
            return Err(invalid("The URL is empty or has surrounding white space."));
        }
        let url = Url::parse(raw)
            .map_err(|e| LinkError::InvalidUrl(format!("The URL is not valid: {e}.").into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("Only http and https URLs can be shortened."));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("The URL has no host."));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("URLs with embedded credentials are not accepted."));
        }
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(LinkError::InvalidUrl(
                format!("The URL is longer than {MAX_URL_BYTES} bytes once normalised.").into(),
            ));
        }
        if ours.contains(&url) {
            return Err(LinkError::SelfReferencing);
        }
        Ok(Self(url))
    }

    /// The normalised URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> OwnOrigins {
        ours("https://sho.rt", &[])
    }

    fn ours(base: &str, aliases: &[&str]) -> OwnOrigins {
        let aliases: Vec<String> = aliases.iter().map(|a| (*a).to_owned()).collect();
        OwnOrigins::new(&Url::parse(base).unwrap(), &aliases).unwrap()
    }

    #[test]
    fn absolute_http_and_https_urls_are_accepted() {
        for ok in [
            "https://example.com",
            "http://example.com/a?b=c#d",
            "https://xn--bcher-kva.example/",
        ] {
            assert!(TargetUrl::parse(ok, &base()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn other_schemes_relative_urls_and_credentials_are_refused() {
        for bad in [
            "ftp://example.com",
            "javascript:alert(1)",
            "/relative",
            "example.com",
            "https://user:pw@example.com",
            "mailto:a@b.c",
            "",
            " https://example.com",
            "http://",
        ] {
            assert!(TargetUrl::parse(bad, &base()).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_over_2048_bytes_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(TargetUrl::parse(&long, &base()).is_err());
        let fits = format!("https://example.com/{}", "a".repeat(2048 - 20));
        assert_eq!(fits.len(), 2048);
        assert!(TargetUrl::parse(&fits, &base()).is_ok());
    }

    #[test]
    fn urls_pointing_back_at_the_shortener_are_refused() {
        for bad in ["https://sho.rt/abc", "http://SHO.RT/x", "https://sho.rt"] {
            let err = TargetUrl::parse(bad, &base()).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        let with_path = ours("https://example.com/s/", &[]);
        assert!(TargetUrl::parse("https://example.com/s/abc", &with_path).is_err());
        assert!(TargetUrl::parse("https://example.com/s", &with_path).is_err());
        assert!(TargetUrl::parse("https://example.com/other", &with_path).is_ok());
        assert!(TargetUrl::parse("https://example.com/sx", &with_path).is_ok());
    }

    #[test]
    fn urls_reaching_the_base_path_through_escapes_or_letter_case_are_refused() {
        let with_path = ours("https://example.com/s", &[]);
        for bad in [
            "https://example.com/%73/x",
            "https://example.com/%73",
            "https://example.com/S/x",
            "https://example.com/%53/x",
            "https://example.com/x/../%73/y",
        ] {
            let err = TargetUrl::parse(bad, &with_path).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        let deeper = ours("https://example.com/Go-Links/", &[]);
        for bad in [
            "https://example.com/go-links/x",
            "https://example.com/GO%2dLINKS/x",
            "https://example.com/%47o-Links",
        ] {
            let err = TargetUrl::parse(bad, &deeper).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        // Reserved characters stay encoded: `%2F` is no path separator.
        for ok in [
            "https://example.com/%73x",
            "https://example.com/s%2Fx",
            "https://example.com/%2573/x",
            "https://other.example/%73/x",
        ] {
            assert!(TargetUrl::parse(ok, &with_path).is_ok(), "{ok}");
        }
    }

    #[test]
    fn urls_reaching_the_shortener_by_another_name_are_refused() {
        let local = ours("http://127.0.0.1:3000", &[]);
        for bad in [
            "http://localhost:3000/x",
            "http://LOCALHOST.:3000/x",
            "http://app.localhost:3000/x",
            "http://127.0.0.1.:3000/x",
            "http://127.1:3000/x",
            "http://2130706433:3000/x",
            "http://127.0.0.2:3000/x",
            "http://[::1]:3000/x",
            "http://[::ffff:127.0.0.1]:3000/x",
            "http://[::ffff:7f00:1]:3000/x",
            "http://0.0.0.0:3000/x",
            "http://[::]:3000/x",
        ] {
            let err = TargetUrl::parse(bad, &local).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        // Another port on this machine is another service.
        assert!(TargetUrl::parse("http://localhost:8080/x", &local).is_ok());

        let public = ours("https://sho.rt", &["go.example", "10.1.2.3:8443"]);
        for bad in [
            "https://sho.rt./x",
            "http://sho.rt:80/x",
            "https://sho.rt:443/x",
            "https://GO.example./x",
            "https://10.1.2.3:8443/x",
            "https://[::ffff:10.1.2.3]:8443/x",
        ] {
            let err = TargetUrl::parse(bad, &public).unwrap_err();
            assert_eq!(err.code(), "self_referencing_url", "{bad}");
        }
        for ok in [
            "https://sho.rt:8443/x",
            "https://10.1.2.3/x",
            "https://notsho.rt/x",
            "http://localhost/x",
        ] {
            assert!(TargetUrl::parse(ok, &public).is_ok(), "{ok}");
        }
    }
}
