//! Clicks: who followed a link, and the one write that records it.
//!
//! A click row holds the slug, the time, the referrer's host, the browser and
//! OS families, a bot flag and a visitor hash: an HMAC-SHA256 of (client IP,
//! user agent, UTC day) keyed with the secret `visitor_salt`. No raw IP is
//! stored. Of the `User-Agent` and the `Referer`, only the first
//! [`MAX_USER_AGENT_BYTES`] and [`MAX_REFERER_BYTES`] are ever read
//! ([`capped`]), so that no header costs more than that much work.
//!
//! # Layout
//!
//! * [`agents`]: browser / OS family and crawler category, woothee's answers
//!   without its regexes.
//! * [`bots`]: the bot flag, isbot's answers without its regex.
//!
//! Both give the answers of the crates they replace on every agent a header
//! can carry (`tests/classifier_corpus.rs`), but compile no regex per Spin
//! instance and keep the regex engine out of the component.

pub mod agents;
pub mod bots;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{LazyLock, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::links::Slug;
use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// The click write: one statement, one transaction, one append to `clicks`
/// (the rollups are folded from it later: [`crate::rollups`]). The `EXISTS`
/// guard drops a click whose link was deleted between the key-value read
/// and this write.
pub const RECORD: Statement = Statement {
    sql: "INSERT INTO clicks (slug, at, day, referrer_host, browser, os, is_bot, visitor) \
          SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM links WHERE slug = ?1) \
          RETURNING id",
    operation: "INSERT",
    table: "clicks",
};

/// [`RECORD`] for a click a redirect rule served: the rule's index too
/// (migration 8). A separate statement so that the click of a link without
/// rules stays exactly [`RECORD`].
pub const RECORD_BY_RULE: Statement = Statement {
    sql: "INSERT INTO clicks (slug, at, day, referrer_host, browser, os, is_bot, visitor, rule) \
          SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM links WHERE slug = ?1) \
          RETURNING id",
    operation: "INSERT",
    table: "clicks",
};

/// The click of a link with a `max_clicks`: one UPDATE of its
/// `click_limits` row (migration 8) that counts it only while under the
/// limit, carrying the click's values; the row's `click_limits_click`
/// trigger inserts them into `clicks` in the same statement. A row comes
/// back only when the click was counted (and recorded). The row exists only
/// while the link is registered (the triggers on `links` keep it).
pub const RECORD_LIMITED: Statement = Statement {
    sql: "UPDATE click_limits SET used = used + 1, at = ?2, day = ?3, referrer_host = ?4, browser = ?5, \
          os = ?6, is_bot = ?7, visitor = ?8, rule = ?9 WHERE slug = ?1 AND used < max_clicks RETURNING used",
    operation: "UPDATE",
    table: "click_limits",
};

/// The longest referrer host we keep.
const MAX_HOST_LEN: usize = 253;

/// The most of a `User-Agent` that is read, in bytes: longer agents are cut
/// to this prefix (at a character boundary) before they are classified,
/// hashed or stored. The longest agent in isbot's fixtures (the corpus of
/// `tests/classifier_corpus.rs`, which checks it) is 681 bytes, only one is
/// over 512 and 99.99 % are at most 330, so no real agent is cut; a hostile
/// one (`"Windows " × 16384`, 128 kB, cost 1.9 s of CPU on Spin before the
/// cap) costs what its first kilobyte costs.
pub const MAX_USER_AGENT_BYTES: usize = 1024;

/// The most of a `Referer` that is read, in bytes, cut like the agent before
/// its host is parsed and stored. The host (at most 253 bytes) comes first,
/// so a longer referrer loses only path and query, which are never kept; it
/// is also the longest target URL a link may have (`links::MAX_URL_BYTES`).
pub const MAX_REFERER_BYTES: usize = 2048;

/// The longest prefix of `value` of at most `max` bytes that ends at a
/// character boundary: all that the classifiers, the visitor hash and the
/// referrer parse ever see of a header.
pub fn capped(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A header value as text, for [`capped`]: at most `max` bytes of it read,
/// decoded lossily (a non-UTF-8 byte becomes U+FFFD rather than the whole
/// value being dropped), so that no more of a long header is ever decoded.
pub fn header_text(value: &[u8], max: usize) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&value[..value.len().min(max)])
}

/// Who followed a link, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// Referrer host, lower-case, if a valid http(s) referrer was sent.
    pub referrer_host: Option<String>,
    /// Browser family (`Chrome`, `Firefox`, ... or `UNKNOWN`).
    pub browser: String,
    /// OS family (`Windows 10`, `Mac OSX`, `Android`, ... or `UNKNOWN`).
    pub os: String,
    /// A known crawler, tool or an empty user agent.
    pub is_bot: bool,
}

impl Visitor {
    /// Classifies a request from its `User-Agent` and `Referer`, of which
    /// only the first [`MAX_USER_AGENT_BYTES`] and [`MAX_REFERER_BYTES`]
    /// are read.
    pub fn classify(user_agent: &str, referer: Option<&str>) -> Self {
        let agent = Agent::of(capped(user_agent, MAX_USER_AGENT_BYTES).trim());
        Self {
            referrer_host: referer
                .map(|r| capped(r, MAX_REFERER_BYTES))
                .and_then(referrer_host),
            browser: agent.browser.to_owned(),
            os: agent.os.to_owned(),
            is_bot: agent.is_bot,
        }
    }

    /// `human` or `bot` (the span attribute value and metric label).
    pub fn kind(&self) -> &'static str {
        if self.is_bot { "bot" } else { "human" }
    }
}

/// The device a `User-Agent` runs on (for redirect rules), read like
/// [`Visitor::classify`] reads it: its first [`MAX_USER_AGENT_BYTES`],
/// through the same memo.
pub fn device(user_agent: &str) -> agents::Device {
    Agent::of(capped(user_agent, MAX_USER_AGENT_BYTES).trim()).device
}

/// What a (trimmed) user agent says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Agent {
    browser: &'static str,
    os: &'static str,
    is_bot: bool,
    device: agents::Device,
}

/// Agents remembered per instance; the memo is emptied when full.
const MEMO_ENTRIES: usize = 1024;
/// Longer agents (at most [`MAX_USER_AGENT_BYTES`]) are classified every
/// time (the memo stays under ~0.5 MB).
const MEMO_MAX_AGENT: usize = 512;

impl Agent {
    /// The classifier's answer for `ua`, remembered: the same few agents
    /// make most of a link's clicks, and classifying one cost ~40 µs in the
    /// component, a lookup about 1 µs. The answer is a pure function of `ua`, so the
    /// memo changes no answer.
    fn of(ua: &str) -> Self {
        static MEMO: LazyLock<Mutex<HashMap<Box<str>, Agent>>> =
            LazyLock::new(|| Mutex::new(HashMap::new()));
        if ua.len() > MEMO_MAX_AGENT {
            return Self::classify(ua);
        }
        // The lock is never held across an await, nor while classifying.
        let known = MEMO.lock().ok().and_then(|memo| memo.get(ua).copied());
        if let Some(agent) = known {
            return agent;
        }
        let agent = Self::classify(ua);
        if let Ok(mut memo) = MEMO.lock() {
            if memo.len() >= MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(ua.into(), agent);
        }
        agent
    }

    fn classify(ua: &str) -> Self {
        let family = agents::parse(ua).unwrap_or(agents::Family::UNKNOWN);
        Self {
            browser: family.name,
            os: family.os,
            device: family.device(),
            // No user agent at all is a script, not a person.
            is_bot: ua.is_empty() || family.category == "crawler" || bots::is_bot(ua),
        }
    }
}

fn referrer_host(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.host_str()
        .filter(|h| !h.is_empty() && h.len() <= MAX_HOST_LEN)
        .map(str::to_ascii_lowercase)
}

/// The client's address: the direct peer with `trusted_hops = 0`; otherwise
/// the `trusted_hops`-th address from the right of `X-Forwarded-For` (each
/// proxy we run appends the address it saw, so entries further left are
/// whatever the client claimed). With fewer entries than trusted hops the
/// request did not come through our proxies, and the peer is used.
///
/// The header is walked from the right and the walk stops at that entry:
/// through our proxies, it reads only what they appended, however much the
/// client wrote to the left; otherwise each byte once, with nothing
/// allocated. An entry longer than [`MAX_FORWARDED_ENTRY_BYTES`] is no
/// address and is not parsed.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer;
    }
    let entry = forwarded_for
        .iter()
        .rev()
        .flat_map(|h| h.rsplit(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .nth(trusted_hops - 1);
    entry.and_then(parse_forwarded_ip).or(peer)
}

/// The longest `X-Forwarded-For` entry that is parsed: an IPv6 address with
/// an embedded IPv4 address, in brackets, with a port
/// (`[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535`) is 53 bytes.
pub const MAX_FORWARDED_ENTRY_BYTES: usize = 64;

fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if entry.len() > MAX_FORWARDED_ENTRY_BYTES {
        return None;
    }
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.split(']').next())
                .and_then(|e| e.parse().ok())
        })
}

/// The keyed visitor hash of (ip, user agent, day), hex, 128 bits; only the
/// first [`MAX_USER_AGENT_BYTES`] of the agent are hashed.
pub fn visitor_hash(salt: &str, ip: Option<IpAddr>, user_agent: &str, day: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt.as_bytes())
        .expect("HMAC accepts keys of any length");
    let ip = ip.map(|i| i.to_string()).unwrap_or_default();
    let user_agent = capped(user_agent, MAX_USER_AGENT_BYTES);
    for part in [ip.as_bytes(), user_agent.as_bytes(), day.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    let digest = mac.finalize().into_bytes();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYY-MM-DD` of `t` in UTC.
pub fn utc_day(t: OffsetDateTime) -> String {
    let utc = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    crate::analytics::day_text(utc.date())
}

/// A click to record.
#[derive(Debug, Clone)]
pub struct Click<'a> {
    /// The link.
    pub slug: &'a Slug,
    /// When.
    pub at: OffsetDateTime,
    /// Who.
    pub visitor: &'a Visitor,
    /// Their keyed hash.
    pub visitor_hash: String,
    /// The index of the redirect rule that served it, if one did.
    pub rule: Option<usize>,
    /// Whether its link has a `max_clicks` ([`RECORD_LIMITED`]).
    pub limited: bool,
}

/// `t` in Unix milliseconds, as clicks store their time.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Click<'_> {
    /// The click's values in the order of every click write (`?1`–`?8` of
    /// [`RECORD`], [`RECORD_LIMITED`] and `outbox::PUT`): slug, time (Unix
    /// milliseconds), UTC day, referrer host, browser, OS, bot flag, visitor
    /// hash. The writes that carry the rule add it as `?9`.
    pub fn values(&self) -> Vec<SqlValue> {
        vec![
            self.slug.as_str().into(),
            SqlValue::Integer(unix_ms(self.at)),
            utc_day(self.at).into(),
            self.visitor.referrer_host.clone().into(),
            self.visitor.browser.clone().into(),
            self.visitor.os.clone().into(),
            self.visitor.is_bot.into(),
            self.visitor_hash.clone().into(),
        ]
    }
}

/// Records one click. Returns a number that grows with every click it
/// records (the click's id; for a limited link, its count of clicks), which
/// [`crate::rollups::due`] reads, or `None` when nothing was written: the
/// link is no longer registered (deleted while the redirect was being
/// served), or it has a `max_clicks` and has had them ([`RECORD_LIMITED`]).
pub async fn record(sql: &dyn SqlStore, click: &Click<'_>) -> Result<Option<i64>, StoreError> {
    let mut params = click.values();
    let rule = click.rule.map(|r| SqlValue::Integer(r as i64));
    let statement = match (click.limited, rule) {
        (true, rule) => {
            params.push(rule.unwrap_or(SqlValue::Null));
            &RECORD_LIMITED
        }
        (false, None) => &RECORD,
        (false, Some(rule)) => {
            params.push(rule);
            &RECORD_BY_RULE
        }
    };
    let rows = sql.execute(statement, params).await?;
    Ok(rows
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(SqlValue::as_i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
    const SAFARI_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    #[test]
    fn browsers_are_humans_with_their_family_and_os() {
        let v = Visitor::classify(CHROME, None);
        assert!(!v.is_bot);
        assert_eq!(v.browser, "Chrome");
        assert!(v.os.starts_with("Windows"), "{}", v.os);
        let f = Visitor::classify(FIREFOX_LINUX, None);
        assert_eq!((f.browser.as_str(), f.is_bot), ("Firefox", false));
        let s = Visitor::classify(SAFARI_IOS, None);
        assert_eq!(
            (s.browser.as_str(), s.os.as_str(), s.is_bot),
            ("Safari", "iPhone", false)
        );
    }

    #[test]
    fn crawlers_tools_and_empty_agents_are_bots() {
        for ua in [
            GOOGLEBOT,
            "curl/8.5.0",
            "python-requests/2.31.0",
            "facebookexternalhit/1.1",
            "",
        ] {
            assert!(Visitor::classify(ua, None).is_bot, "{ua}");
        }
    }

    #[test]
    fn remembered_agents_get_the_classifier_answer_again() {
        let long_bot = format!("curl/8.0 {}", "x".repeat(MEMO_MAX_AGENT));
        let agents = [
            CHROME,
            FIREFOX_LINUX,
            SAFARI_IOS,
            GOOGLEBOT,
            "",
            "curl/8.4.0",
            &long_bot,
        ];
        for ua in agents {
            let direct = Agent::classify(ua);
            // The first call may fill the memo, the second reads it.
            assert_eq!(Agent::of(ua), direct, "{ua}");
            assert_eq!(Agent::of(ua), direct, "{ua}");
        }
    }

    #[test]
    fn a_full_memo_starts_over_and_keeps_answering() {
        for i in 0..MEMO_ENTRIES + 10 {
            let ua = format!("probe-agent/{i}");
            assert_eq!(Agent::of(&ua), Agent::classify(&ua));
        }
        assert_eq!(Agent::of(CHROME), Agent::classify(CHROME));
    }

    #[test]
    fn capping_keeps_the_longest_prefix_that_ends_at_a_character_boundary() {
        assert_eq!(capped("short", 8), "short");
        assert_eq!(capped("exactly8", 8), "exactly8");
        assert_eq!(capped("abcdefghij", 8), "abcdefgh");
        // "é" is two bytes: cutting at 8 would split it.
        assert_eq!(capped("abcdefgé", 8), "abcdefg");
        assert_eq!(capped("日本語", 4), "日");
        assert_eq!(capped("", 0), "");
    }

    #[test]
    fn header_text_decodes_at_most_its_cap_lossily() {
        assert_eq!(header_text(b"curl/8", 1024), "curl/8");
        assert_eq!(header_text(b"Ger\xe4t", 1024), "Ger\u{FFFD}t");
        assert_eq!(header_text(&[b'a'; 4096], 1024).len(), 1024);
    }

    #[test]
    fn a_long_agent_is_classified_and_hashed_as_its_capped_prefix() {
        let head = format!("{CHROME} {}", "x".repeat(MAX_USER_AGENT_BYTES));
        let head = capped(&head, MAX_USER_AGENT_BYTES);
        let long = format!("{head} Googlebot/2.1 {}", "Windows ".repeat(8192));
        assert_eq!(
            Visitor::classify(&long, None),
            Visitor::classify(head, None)
        );
        assert!(!Visitor::classify(&long, None).is_bot);
        assert_eq!(
            visitor_hash("salt", None, &long, "2030-01-01"),
            visitor_hash("salt", None, head, "2030-01-01")
        );
        let referer = format!("https://News.Example.org/{}", "a".repeat(MAX_REFERER_BYTES));
        let v = Visitor::classify(CHROME, Some(&format!("{referer}é")));
        assert_eq!(v.referrer_host.as_deref(), Some("news.example.org"));
    }

    #[test]
    fn the_device_comes_from_the_agents_os_and_category() {
        use agents::Device;
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
        let ipad = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let docomo = "DoCoMo/2.0 P903i(c100;TB;W24H12)";
        assert_eq!(device(android), Device::Android);
        assert_eq!(device(SAFARI_IOS), Device::Ios);
        assert_eq!(device(ipad), Device::Ios);
        assert_eq!(device(docomo), Device::OtherMobile);
        assert_eq!(device(CHROME), Device::Desktop);
        assert_eq!(device(FIREFOX_LINUX), Device::Desktop);
        assert_eq!(device(GOOGLEBOT), Device::Desktop);
        assert_eq!(device(""), Device::Desktop);
    }

    #[test]
    fn only_the_referrer_host_is_kept() {
        let v = Visitor::classify(CHROME, Some("https://News.Example.com/a/b?secret=1"));
        assert_eq!(v.referrer_host.as_deref(), Some("news.example.com"));
        assert_eq!(
            Visitor::classify(CHROME, Some("not a url")).referrer_host,
            None
        );
        assert_eq!(
            Visitor::classify(CHROME, Some("android-app://x")).referrer_host,
            None
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_hops_the_peer_is_the_client() {
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &["1.2.3.4"], 0),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn trusted_hops_take_the_nth_address_from_the_right() {
        let xff = ["6.6.6.6, 1.2.3.4", "172.18.0.5"];
        assert_eq!(
            client_ip(Some(ip("172.18.0.9")), &xff, 1),
            Some(ip("172.18.0.5"))
        );
        assert_eq!(
            client_ip(Some(ip("172.18.0.9")), &xff, 2),
            Some(ip("1.2.3.4"))
        );
    }

    #[test]
    fn a_spoofed_left_most_entry_does_not_change_the_client() {
        let honest = client_ip(Some(ip("10.0.0.2")), &["1.2.3.4"], 1);
        let spoofed = client_ip(Some(ip("10.0.0.2")), &["9.9.9.9, 1.2.3.4"], 1);
        assert_eq!(honest, spoofed);
    }

    #[test]
    fn too_few_forwarded_entries_fall_back_to_the_peer() {
        assert_eq!(
            client_ip(Some(ip("10.0.0.3")), &[], 1),
            Some(ip("10.0.0.3"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.3")), &["garbage"], 1),
            Some(ip("10.0.0.3"))
        );
    }

    #[test]
    fn the_forwarded_walk_stops_at_the_trusted_entry_and_skips_overlong_ones() {
        // Everything left of our proxy's entry may be anything, of any size.
        let junk = "x, ".repeat(100_000);
        let line = format!("{junk}1.2.3.4");
        assert_eq!(
            client_ip(Some(ip("10.0.0.4")), &[&line, "172.18.0.5"], 2),
            Some(ip("1.2.3.4"))
        );
        let widest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
        assert!(widest.len() <= MAX_FORWARDED_ENTRY_BYTES);
        assert!(client_ip(None, &[widest], 1).is_some());
        let padded = format!("{}1.2.3.4", "0".repeat(MAX_FORWARDED_ENTRY_BYTES));
        assert_eq!(
            client_ip(Some(ip("10.0.0.4")), &[&padded], 1),
            Some(ip("10.0.0.4"))
        );
    }

    #[test]
    fn forwarded_entries_with_ports_and_ipv6_parse() {
        assert_eq!(client_ip(None, &["1.2.3.4:5678"], 1), Some(ip("1.2.3.4")));
        assert_eq!(
            client_ip(None, &["[2001:db8::1]:443"], 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_ip(None, &["2001:db8::1"], 1),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn visitor_hashes_are_keyed_daily_and_hide_the_ip() {
        let a = visitor_hash("salt", Some(ip("1.2.3.4")), CHROME, "2030-01-01");
        assert_eq!(a.len(), 32);
        assert!(!a.contains("1.2.3.4"));
        assert_eq!(
            a,
            visitor_hash("salt", Some(ip("1.2.3.4")), CHROME, "2030-01-01")
        );
        assert_ne!(
            a,
            visitor_hash("pepper", Some(ip("1.2.3.4")), CHROME, "2030-01-01")
        );
        assert_ne!(
            a,
            visitor_hash("salt", Some(ip("1.2.3.4")), CHROME, "2030-01-02")
        );
        assert_ne!(
            a,
            visitor_hash("salt", Some(ip("1.2.3.5")), CHROME, "2030-01-01")
        );
    }

    #[test]
    fn days_are_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert_eq!(utc_day(t), "2030-03-17");
        // 23:30 at UTC-01:00 is already the next day in UTC.
        let west = time::macros::datetime!(2030-03-17 23:30 -01:00);
        assert_eq!(utc_day(west), "2030-03-18");
    }
}
