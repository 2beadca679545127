//! The regex-free classifier gives the answers of the crates it replaces.
//!
//! `shortener::clicks::bots::is_bot` must equal `isbot::Bots::default().is_bot`
//! and `shortener::clicks::agents::parse` must equal woothee's
//! `Parser::parse` (name, OS, category) on a corpus of real user agents:
//! isbot's own fixture lists (about 175,000 bots and browsers, shipped in
//! its crate; found through `cargo metadata`), the agents of our tests and
//! benchmarks, and a few edge cases. Agents that are not header text
//! (`HeaderValue::to_str` refuses anything but visible ASCII and tab) are
//! left out and counted: the redirect reads them lossily and classifies
//! them, but the equality is claimed for header text only.

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;

use shortener::clicks::{MAX_USER_AGENT_BYTES, agents, bots};

/// The agents of tests/api, tests/e2e and src/clicks.rs, and edge cases.
const OURS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot/2.1",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "facebookexternalhit/1.1",
    "oha/1.16.0",
    "",
    "-",
    " ",
    "\t",
    "bot",
    "a",
    "viber",
    "WhatsApp/2.23.20.0 A",
    "WhatsApp+/2.1 z",
    "fdm\t1",
    "Mozilla/5.0 (Mobile; rv:18.0) Gecko/18.0 Firefox/18.0",
    "Mozilla/5.0 (Tablet; ZTE; rv:26.0) Gecko/26.0 Firefox/26.0",
    "Mozilla/5.0 (Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch)",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0)",
    "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
    "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 5 Build/KOT49H; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/30.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 9_3 like Mac OS X) AppleWebKit/601.1 (KHTML, like Gecko) Mobile/13E238",
    "KDDI-SA31 UP.Browser/6.2.0.7.3.129 (GUI) MMP/2.0",
    "Mozilla/3.0(WILLCOM;KYOCERA/WX310K/2;1.2.2.16.000000/0.1/C100) Opera 7.0",
    "Google Wireless Transcoder",
    "Naver Transcoder (Windows NT 6.1)",
    "Apache-HttpClient/4.5",
    "Jakarta Commons-HttpClient/3.1",
    "my-HttpClient",
    "PHP/8.1",
    "PEAR HTTP_Request class",
    "Some RSS +  +/reader",
    "Feed Parser 1.0",
    "Watch Dog",
    "daumoa/1",
    "Daum 4.1",
    "ptst/1",
    "pr-cyXru",
    "Mozilla/5.0 (Windows NT 6.4; Win64) Gecko",
    "Mozilla/5.0 (Windows 98 Windows NT 5.1; x)",
    "YaBrowser/17.4.1.919 Safari/537.36",
];

/// isbot's `fixtures/`, found through `cargo metadata`. Offline and for
/// this platform only: without `--filter-platform`, cargo wants every
/// package of Cargo.lock on disk, Windows-only ones included, and a machine
/// holds only what its own builds downloaded.
fn isbot_fixtures() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", env!("SHORTENER_BUILD_TARGET")])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "isbot")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("isbot is a dev-dependency");
    PathBuf::from(manifest).parent().unwrap().join("fixtures")
}

fn corpus() -> (Vec<String>, usize) {
    let dir = isbot_fixtures();
    let mut agents: Vec<String> = OURS.iter().map(|s| s.to_string()).collect();
    agents.extend(common::AGENTS.iter().map(|s| s.to_string()));
    for file in ["bots.txt", "browsers.txt"] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("isbot fixture {file}: {e}"));
        agents.extend(text.lines().map(str::to_owned));
    }
    for file in [
        "myip-ms-live-bots.json",
        "omrilotan-browsers.json",
        "ua-parser-bots.json",
        "ua-parser-browsers.json",
    ] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("isbot fixture {file}: {e}"));
        let list: Vec<String> = serde_json::from_str(&text).unwrap();
        agents.extend(list);
    }
    let before = agents.len();
    agents.retain(|ua| http::HeaderValue::from_str(ua).is_ok_and(|v| v.to_str().is_ok()));
    agents.sort();
    agents.dedup();
    (agents, before)
}

#[test]
fn bot_flags_and_families_equal_isbots_and_woothees_on_175k_real_agents() {
    let (agents, read) = corpus();
    assert!(agents.len() > 150_000, "corpus too small: {}", agents.len());
    // The cap on what is read of a User-Agent cuts no real agent, so these
    // answers are also those of the capped classifier the redirect runs.
    let longest = agents.iter().map(String::len).max().unwrap_or_default();
    assert!(
        longest <= MAX_USER_AGENT_BYTES,
        "a real agent of {longest} bytes is longer than the cap"
    );
    let isbot = isbot::Bots::default();
    let woothee = woothee::parser::Parser::new();
    let mut wrong = Vec::new();
    let (mut bots_seen, mut crawlers_seen) = (0, 0);
    for ua in &agents {
        let expected_bot = isbot.is_bot(ua);
        bots_seen += usize::from(expected_bot);
        if bots::is_bot(ua) != expected_bot {
            wrong.push(format!("is_bot {expected_bot} expected: {ua:?}"));
        }
        let expected = woothee.parse(ua).map(|r| (r.name, r.os, r.category));
        crawlers_seen += usize::from(expected.is_some_and(|e| e.2 == "crawler"));
        let got = agents::parse(ua).map(|f| (f.name, f.os, f.category));
        if got != expected {
            wrong.push(format!("family {expected:?} expected, got {got:?}: {ua:?}"));
        }
    }
    eprintln!(
        "{} distinct agents ({} read, the rest duplicates or not header text): {bots_seen} bots by isbot, {crawlers_seen} crawlers by woothee",
        agents.len(),
        read
    );
    assert!(
        wrong.is_empty(),
        "{} differences, first ones:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(30)].join("\n")
    );
}

#[test]
fn the_bot_tables_hold_exactly_isbots_patterns() {
    let file = isbot_fixtures().join("../src/bot_regex_patterns.txt");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut theirs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    // Our tables write `\.` in plain literals and prefixes as `.`.
    let unescape = |s: &str| s.replace("\\.", ".");
    let mut ours: Vec<String> = bots::CONTAINS
        .iter()
        .map(|s| s.to_string())
        .chain(bots::PREFIXES.iter().map(|s| format!("^{s}")))
        .chain(bots::DOTTED.iter().map(|s| s.to_string()))
        .chain(bots::CUSTOM.iter().map(|s| s.to_string()))
        .collect();
    theirs.iter_mut().for_each(|s| {
        if !bots::DOTTED.contains(&s.as_str()) && !bots::CUSTOM.contains(&s.as_str()) {
            *s = unescape(s);
        }
    });
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
}
