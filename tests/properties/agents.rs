//! The click classifiers on hostile `User-Agent`s and `Referer`s (up to
//! 256 kB): only the capped prefix of either is ever read, so no header
//! costs more work than `MAX_USER_AGENT_BYTES` / `MAX_REFERER_BYTES` of it;
//! and within the cap, the hand-written matchers answer as woothee's and
//! isbot's regexes do.
//!
//! Bounded work is shown by construction, not by a clock: `Visitor::classify`
//! and `visitor_hash` hand the classifiers and the MAC `clicks::capped(..)`
//! and nothing else, and the first property checks that whatever follows the
//! cap (a bot's name, a browser's tokens, more of the same) never changes
//! the visitor or the hash.

use proptest::prelude::*;
use shortener::clicks::{
    MAX_REFERER_BYTES, MAX_USER_AGENT_BYTES, Visitor, agents, bots, capped, visitor_hash,
};

use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "nothing after the first max user agent bytes or max referer bytes changes the visitor or its hash",
            cost: 8,
            check: nothing_after_the_cap_is_read,
        },
        Property {
            name: "within the cap the agent and bot classifiers answer as woothee and isbot on hostile agents",
            cost: 4,
            check: within_the_cap_the_classifiers_answer_as_the_regexes,
        },
    ]
}

/// The largest hostile header generated.
const MAX_INPUT: usize = 256 * 1024;

/// What hostile agents are made of: the needles of the matchers whose loops
/// were quadratic (`Windows `, `iPhone; `, `;` after `Mobile;`, `WILLCOM;`),
/// long runs of digits, dots and brackets, and the tokens of real agents.
const UNITS: &[&str] = &[
    "Windows ",
    "Windows NT 6.1",
    "0",
    "1.",
    ";",
    "(",
    ")",
    " ",
    "\t",
    "iPhone; ",
    "iPad; ",
    "iPod ",
    "like Mac OS X",
    "Mozilla/5.0 (Mobile;",
    " rv:1.0) Gecko/1 Firefox/1",
    "WILLCOM;",
    "DDIPOCKET;",
    "/",
    "KDDI-",
    "Chrome/",
    "Safari/",
    "YaBrowser/1.",
    "rss",
    "bot",
    "spider",
    "http://",
    " HttpClient",
    "compatible; MSIE",
    "Googlebot",
    "%",
    "a",
    "Z",
];

/// Units that are no visible ASCII: the header is read lossily.
const NON_ASCII: &[&str] = &["é", "\u{FFFD}", "日本"];

/// A hostile header as the pieces it repeats: `(unit, times)`, so that a
/// failure prints a few numbers, not 256 kB.
#[derive(Debug, Clone)]
struct Hostile(Vec<(&'static str, usize)>);

impl Hostile {
    /// The header text, at most [`MAX_INPUT`] bytes.
    fn text(&self) -> String {
        let mut s = String::new();
        for &(unit, times) in &self.0 {
            for _ in 0..times {
                if s.len() + unit.len() > MAX_INPUT {
                    return s;
                }
                s.push_str(unit);
            }
        }
        s
    }
}

fn repeats() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..16, 16usize..2048, 2048usize..40_000]
}

fn hostile(units: &'static [&'static str]) -> impl Strategy<Value = Hostile> {
    prop::collection::vec((prop::sample::select(units), repeats()), 1..6).prop_map(Hostile)
}

fn any_unit() -> &'static [&'static str] {
    static ALL: std::sync::LazyLock<Vec<&'static str>> =
        std::sync::LazyLock::new(|| UNITS.iter().chain(NON_ASCII).copied().collect());
    &ALL
}

/// What may follow the cap: each would change the answer if it were read.
const TAILS: &[&str] = &[
    "",
    " Googlebot/2.1",
    " curl/8.5.0",
    " (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36",
    "é",
];

fn nothing_after_the_cap_is_read(cases: u32) -> Result<(), String> {
    let strategy = (hostile(any_unit()), any::<bool>());
    check(cases, strategy, |(pieces, as_referer_path)| {
        let long = pieces.text();
        let head = capped(&long, MAX_USER_AGENT_BYTES);
        prop_assert!(head.len() <= MAX_USER_AGENT_BYTES);
        prop_assert!(long.starts_with(head));
        if long.len() > MAX_USER_AGENT_BYTES {
            // The longest prefix that ends at a character boundary.
            prop_assert!(head.len() > MAX_USER_AGENT_BYTES - 4);
        } else {
            // Shorter than the cap: read whole, and nothing follows a cap.
            prop_assert_eq!(head, long.as_str());
        }
        if long.len() < MAX_USER_AGENT_BYTES {
            return Ok(());
        }

        // A referrer that is long in its path, or a host that is all junk;
        // twice `long`, so that it too is longer than its cap.
        let referer = if as_referer_path {
            format!("https://News.Example.org/{long}{long}")
        } else {
            format!("https://{long}{long}")
        };
        prop_assert!(referer.len() >= MAX_REFERER_BYTES);
        let referer_head = capped(&referer, MAX_REFERER_BYTES);
        let expected = Visitor::classify(head, Some(referer_head));
        let expected_hash = visitor_hash("salt", None, head, "2030-01-01");
        for tail in TAILS {
            let agent = format!("{long}{tail}");
            let referer = format!("{referer}{tail}");
            prop_assert_eq!(
                &Visitor::classify(&agent, Some(&referer)),
                &expected,
                "tail {:?}",
                tail
            );
            prop_assert_eq!(
                visitor_hash("salt", None, &agent, "2030-01-01"),
                expected_hash.clone()
            );
        }
        if as_referer_path {
            prop_assert_eq!(expected.referrer_host.as_deref(), Some("news.example.org"));
        }
        Ok(())
    })
}

fn within_the_cap_the_classifiers_answer_as_the_regexes(cases: u32) -> Result<(), String> {
    let isbot = isbot::Bots::default();
    let woothee = woothee::parser::Parser::new();
    check(cases, hostile(UNITS), |pieces| {
        let long = pieces.text();
        // What the classifiers receive of it.
        let agent = capped(&long, MAX_USER_AGENT_BYTES).trim();
        prop_assert_eq!(bots::is_bot(agent), isbot.is_bot(agent), "{:?}", agent);
        let expected = woothee.parse(agent).map(|r| (r.name, r.os, r.category));
        let got = agents::parse(agent).map(|f| (f.name, f.os, f.category));
        prop_assert_eq!(got, expected, "{:?}", agent);
        Ok(())
    })
}
