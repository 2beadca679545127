//! Stats against the raw rows: random clicks over random days go through
//! the router with the test clock; then the stats of random ranges must
//! equal what the raw `clicks` rows in SQLite say for the same days.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};
use time::macros::{date, format_description};
use time::{Date, Duration, Time};

use super::app::{CHROME, FIREFOX, GOOGLEBOT, Harness, IPHONE, is_error_body};
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "stats over any range of days equal the raw click rows of those days",
            cost: 40,
            check: |cases| stats_equal_raw_rows(cases, Spell::Canonical, 0..30, 6),
        },
        Property {
            name: "stats over a range spelled any way are refused or equal the raw rows of its days",
            cost: 40,
            check: |cases| stats_equal_raw_rows(cases, Spell::Any, 0..30, 6),
        },
        Property {
            name: "every breakdown adds up to the total however many referrers there are",
            cost: 200,
            check: |cases| stats_equal_raw_rows(cases, Spell::Canonical, 101..140, 400),
        },
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Spell {
    Canonical,
    Any,
}

const AGENTS: &[&str] = &[CHROME, FIREFOX, IPHONE, GOOGLEBOT, "curl/8.5.0", ""];
const PEERS: &[&str] = &["203.0.113.1", "203.0.113.2", "2001:db8::7", "198.51.100.3"];

/// One click: day offset, second of the day, agent, referrer, peer.
type ClickSpec = (i64, u32, usize, u32, usize);

/// A range bound: a day offset, spelled some way.
type Bound = Option<(i64, u8)>;

fn click(referrers: u32) -> impl Strategy<Value = ClickSpec> {
    (
        0i64..40,
        0u32..86_400,
        0..AGENTS.len(),
        0..referrers,
        0..PEERS.len(),
    )
}

fn bound() -> impl Strategy<Value = Bound> {
    prop::option::of((-3i64..44, any::<u8>()))
}

/// `day` as the query writes it: canonical, or (for `Spell::Any`) with a
/// sign, unpadded, or with a wider year.
fn spelled(day: Date, style: u8, spell: Spell) -> String {
    let (y, m, d) = (day.year(), u8::from(day.month()), day.day());
    match (spell, style % 4) {
        // `%2B` is a `+` once the query is decoded (a bare `+` is a space).
        (Spell::Any, 1) => format!("%2B{y:04}-{m:02}-{d:02}"),
        (Spell::Any, 2) => format!("{y}-{m}-{d}"),
        (Spell::Any, 3) => format!("0{y:04}-{m:02}-{d:02}"),
        _ => format!("{y:04}-{m:02}-{d:02}"),
    }
}

/// What the raw rows say about a set of days.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    total: i64,
    humans: i64,
    bots: i64,
    visitors: BTreeSet<(String, String)>,
    daily: BTreeMap<String, (i64, i64, i64)>,
    referrers: BTreeMap<Option<String>, i64>,
    browsers: BTreeMap<String, i64>,
    os: BTreeMap<String, i64>,
}

fn text(v: &shortener::storage::SqlValue) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn expected(
    rows: &[Vec<shortener::storage::SqlValue>],
    from: Option<Date>,
    to: Option<Date>,
) -> Expected {
    let mut e = Expected::default();
    for row in rows {
        let day_text = text(&row[0]);
        let day = Date::parse(&day_text, format_description!("[year]-[month]-[day]")).unwrap();
        if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
            continue;
        }
        let bot = row[1].as_i64().unwrap() == 1;
        e.total += 1;
        if bot {
            e.bots += 1
        } else {
            e.humans += 1
        }
        e.visitors.insert((day_text.clone(), text(&row[2])));
        let d = e.daily.entry(day_text).or_default();
        d.0 += 1;
        if bot {
            d.2 += 1
        } else {
            d.1 += 1
        }
        let referrer = row[3].as_str().map(str::to_owned);
        *e.referrers.entry(referrer).or_default() += 1;
        *e.browsers.entry(text(&row[4])).or_default() += 1;
        *e.os.entry(text(&row[5])).or_default() += 1;
    }
    e
}

fn counts(list: &Value, key: &str) -> BTreeMap<Option<String>, i64> {
    let mut m = BTreeMap::new();
    for item in list.as_array().into_iter().flatten() {
        let k = item[key].as_str().map(str::to_owned);
        *m.entry(k).or_default() += item["clicks"].as_i64().unwrap_or(-1_000_000);
    }
    m
}

fn sum(list: &Value) -> i64 {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|i| i["clicks"].as_i64().unwrap_or(-1_000_000))
        .sum()
}

fn stats_equal_raw_rows(
    cases: u32,
    spell: Spell,
    clicks: std::ops::Range<usize>,
    referrers: u32,
) -> Result<(), String> {
    let harness = Harness::new(&[]);
    let strategy = (
        0i64..60,
        prop::collection::vec(click(referrers), clicks),
        prop::collection::vec((bound(), bound()), 1..5),
    );
    // Capped breakdowns are compared as sums only.
    let exact_breakdowns = referrers <= 6;
    check(cases, strategy, |(start, clicks, ranges)| {
        let base = date!(2029 - 12 - 10) + Duration::days(start);
        let slug = harness.fresh_slug("st");
        harness.set_now(base.with_time(Time::MIDNIGHT).assume_utc());
        let created = harness.create(&json!({"url": "https://example.com/", "slug": slug}));
        prop_assert_eq!(created.status.as_u16(), 201, "{}", created.text());
        for &(day, second, agent, referrer, peer) in &clicks {
            let at = (base + Duration::days(day))
                .with_time(Time::MIDNIGHT)
                .assume_utc()
                + Duration::seconds(i64::from(second));
            harness.set_now(at);
            let referer = format!("https://r{referrer}.example/path");
            let mut headers: Vec<(&str, &[u8])> = vec![("user-agent", AGENTS[agent].as_bytes())];
            if referrer > 0 {
                headers.push(("referer", referer.as_bytes()));
            }
            let r = harness.visit(&slug, PEERS[peer].parse().unwrap(), &headers);
            prop_assert_eq!(r.status.as_u16(), 302, "{}", r.text());
        }
        let rows = harness.rows(
            "SELECT day, is_bot, visitor, referrer_host, browser, os FROM clicks WHERE slug = ?1",
            vec![slug.as_str().into()],
        );
        prop_assert_eq!(rows.len(), clicks.len(), "every redirect is one raw row");
        for (from, to) in ranges {
            let day = |b: Bound| b.map(|(off, style)| (base + Duration::days(off), style));
            let (from, to) = (day(from), day(to));
            let mut params = Vec::new();
            if let Some((d, style)) = from {
                params.push(format!("from={}", spelled(d, style, spell)));
            }
            if let Some((d, style)) = to {
                params.push(format!("to={}", spelled(d, style, spell)));
            }
            let query = params.join("&");
            let r = harness.api(
                axum::http::Method::GET,
                &format!("/api/links/{slug}/stats?{query}"),
                None,
            );
            let canonical_query = [from, to]
                .iter()
                .flatten()
                .all(|&(_, style)| spell == Spell::Canonical || style % 4 == 0);
            let (from, to) = (from.map(|f| f.0), to.map(|t| t.0));
            let inverted = matches!((from, to), (Some(f), Some(t)) if f > t);
            if r.status.as_u16() == 400 {
                prop_assert!(is_error_body(&r.json()), "{}", r.text());
                prop_assert!(
                    inverted || !canonical_query,
                    "?{} refused: {}",
                    query,
                    r.text()
                );
                continue;
            }
            prop_assert_eq!(r.status.as_u16(), 200, "?{}: {}", query, r.text());
            prop_assert!(
                !inverted,
                "?{} is inverted but answered {}",
                query,
                r.text()
            );
            let s = r.json();
            let e = expected(&rows, from, to);
            let ctx = format!(
                "?{query} with clicks on {:?}",
                e.daily.keys().collect::<Vec<_>>()
            );
            prop_assert_eq!(s["total"].as_i64(), Some(e.total), "total {}", ctx);
            prop_assert_eq!(s["humans"].as_i64(), Some(e.humans), "humans {}", ctx);
            prop_assert_eq!(s["bots"].as_i64(), Some(e.bots), "bots {}", ctx);
            prop_assert_eq!(
                s["unique_visitors"].as_i64(),
                Some(e.visitors.len() as i64),
                "unique visitors {}",
                ctx
            );
            let daily: BTreeMap<String, (i64, i64, i64)> = s["daily"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let n = |k: &str| d[k].as_i64().unwrap_or(-1);
                    (
                        d["date"].as_str().unwrap_or_default().to_owned(),
                        (n("clicks"), n("humans"), n("bots")),
                    )
                })
                .collect();
            prop_assert_eq!(&daily, &e.daily, "daily {}", ctx);
            let dates: Vec<&str> = s["daily"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["date"].as_str())
                .collect();
            prop_assert!(
                dates.windows(2).all(|w| w[0] < w[1]),
                "daily is oldest first: {:?}",
                dates
            );
            for key in ["referrers", "browsers", "operating_systems"] {
                prop_assert_eq!(sum(&s[key]), e.total, "{} add up to the total {}", key, ctx);
            }
            if exact_breakdowns {
                prop_assert_eq!(
                    counts(&s["referrers"], "host"),
                    e.referrers.clone(),
                    "referrers {}",
                    ctx
                );
                let some = |m: &BTreeMap<String, i64>| {
                    m.iter()
                        .map(|(k, v)| (Some(k.clone()), *v))
                        .collect::<BTreeMap<_, _>>()
                };
                prop_assert_eq!(
                    counts(&s["browsers"], "name"),
                    some(&e.browsers),
                    "browsers {}",
                    ctx
                );
                prop_assert_eq!(
                    counts(&s["operating_systems"], "name"),
                    some(&e.os),
                    "os {}",
                    ctx
                );
            }
        }
        Ok(())
    })
}
