//! `Slug`: what parses, and random slugs through the router.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use shortener::links::{RESERVED_SLUGS, Slug};

use super::app::Harness;
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "a slug parses exactly when it is 3 to 64 of A-Za-z0-9_- and no reserved word, and keeps its text",
            cost: 1,
            check: slug_parses_exactly_the_slug_language,
        },
        Property {
            name: "random slugs of every allowed length are valid slugs",
            cost: 1,
            check: random_slugs_are_valid,
        },
        Property {
            name: "a random slug is never a reserved word even when the generator spells one",
            cost: 1,
            check: random_slugs_are_never_reserved_even_when_the_rng_spells_one,
        },
        Property {
            name: "a created link never gets a reserved or invalid random slug whatever the slug source offers",
            cost: 6,
            check: random_slugs_through_the_router_are_never_reserved,
        },
    ]
}

/// Mostly slug-like text, some arbitrary text, and reserved words in any case.
fn slug_candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_-]{0,70}",
        2 => "\\PC{0,70}",
        1 => "[ -~]{0,10}",
        2 => (prop::sample::select(RESERVED_SLUGS), any::<u64>(), "[a-z0-9]{0,2}")
            .prop_map(|(word, case, tail)| format!("{}{tail}", flip_case(word, case))),
    ]
}

/// `word` with the case of each letter taken from the bits of `mask`.
pub fn flip_case(word: &str, mask: u64) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn in_slug_language(raw: &str) -> bool {
    (3..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !RESERVED_SLUGS.iter().any(|r| r.eq_ignore_ascii_case(raw))
}

fn slug_parses_exactly_the_slug_language(cases: u32) -> Result<(), String> {
    check(cases, slug_candidates(), |raw| {
        let parsed = Slug::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), in_slug_language(&raw), "{:?}", raw);
        match parsed {
            Ok(slug) => {
                prop_assert_eq!(slug.as_str(), raw.as_str());
                prop_assert_eq!(slug.to_string(), raw.clone());
                let wire = serde_json::to_string(&slug).unwrap();
                prop_assert_eq!(serde_json::from_str::<Slug>(&wire).unwrap(), slug);
            }
            Err(e) => {
                let code = e.code();
                prop_assert!(
                    code == "invalid_slug" || code == "reserved_slug",
                    "{}",
                    code
                );
                // A refused slug is refused on the wire too.
                prop_assert!(serde_json::from_value::<Slug>(json!(raw)).is_err());
            }
        }
        Ok(())
    })
}

fn random_slugs_are_valid(cases: u32) -> Result<(), String> {
    check(cases, (4usize..=32, any::<u64>()), |(len, seed)| {
        let slug = Slug::random(len, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(slug.as_str().len(), len);
        prop_assert!(Slug::parse(slug.as_str()).is_ok(), "{}", slug);
        Ok(())
    })
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An RNG that makes `random_range(0..62)` spell `script` (each draw lands
/// in the middle of the interval that maps to the wanted index, for both
/// 32- and 64-bit sampling), then continues from a seeded generator.
struct Spelling {
    script: Vec<usize>,
    next: usize,
    rest: StdRng,
}

impl Spelling {
    fn new(word: &str, seed: u64) -> Self {
        let script = word
            .bytes()
            .map(|b| BASE62.iter().position(|&c| c == b).expect("a base62 word"))
            .collect();
        Self {
            script,
            next: 0,
            rest: StdRng::seed_from_u64(seed),
        }
    }

    fn draw(&mut self) -> Option<usize> {
        let idx = self.script.get(self.next).copied();
        self.next += 1;
        idx
    }
}

impl rand::RngCore for Spelling {
    fn next_u32(&mut self) -> u32 {
        match self.draw() {
            Some(i) => (((2 * i as u64 + 1) << 32) / 124) as u32,
            None => self.rest.next_u32(),
        }
    }
    fn next_u64(&mut self) -> u64 {
        match self.draw() {
            Some(i) => (((2 * i as u128 + 1) << 64) / 124) as u64,
            None => self.rest.next_u64(),
        }
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rest.fill_bytes(dst)
    }
}

/// A base62 word to spell: a reserved word of a possible `slug_length`
/// (4..=32) in some case, or any word.
fn spelled_words() -> impl Strategy<Value = String> {
    // `slug_length` is 4..=32: shorter reserved words cannot be drawn.
    let long_reserved: Vec<&str> = RESERVED_SLUGS
        .iter()
        .copied()
        .filter(|w| w.len() >= 4)
        .collect();
    prop_oneof![
        (prop::sample::select(long_reserved), any::<u64>())
            .prop_map(|(w, case)| flip_case(w, case)),
        "[0-9A-Za-z]{4,32}",
    ]
}

fn random_slugs_are_never_reserved_even_when_the_rng_spells_one(cases: u32) -> Result<(), String> {
    // The spelling RNG is only meaningful if it really spells.
    let probe = Slug::random(5, &mut Spelling::new("aZ09x", 1));
    if probe.as_str() != "aZ09x" {
        return Err(format!(
            "the spelling RNG drew {probe}, not aZ09x: rand's sampling changed"
        ));
    }
    check(cases, (spelled_words(), any::<u64>()), |(w, seed)| {
        let slug = Slug::random(w.len(), &mut Spelling::new(&w, seed));
        prop_assert!(Slug::parse(slug.as_str()).is_ok(), "drew {}", slug);
        if in_slug_language(&w) {
            prop_assert_eq!(slug.as_str(), w.as_str(), "the RNG's draw is the slug");
        }
        Ok(())
    })
}

/// Candidates a slug source may offer: reserved words in any case, other
/// valid slugs, and text that is no slug at all.
fn candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (prop::sample::select(RESERVED_SLUGS), any::<u64>()).prop_map(|(w, c)| flip_case(w, c)),
        2 => "[0-9A-Za-z]{4,12}",
        1 => "[ -~]{0,8}",
    ]
}

fn random_slugs_through_the_router_are_never_reserved(cases: u32) -> Result<(), String> {
    // The source offers the case's candidate first, then random slugs.
    let first: Arc<Mutex<Option<String>>> = Arc::default();
    let offered = first.clone();
    let harness = Harness::with_slugs(
        &[],
        Arc::new(move |len| {
            offered
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Slug::random(len, &mut rand::rng()).to_string())
        }),
    );
    check(cases, candidates(), |candidate| {
        *first.lock().unwrap() = Some(candidate.clone());
        let created = harness.create(&json!({"url": "https://example.com/"}));
        prop_assert_eq!(created.status.as_u16(), 201, "{}", created.text());
        let slug = created.json()["slug"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        prop_assert!(
            Slug::parse(&slug).is_ok(),
            "got the reserved or invalid slug {:?}",
            slug
        );
        let followed = harness.visit(&slug, "203.0.113.1".parse().unwrap(), &[]);
        prop_assert_eq!(followed.status.as_u16(), 302, "/{} must redirect", slug);
        if in_slug_language(&candidate) {
            prop_assert_eq!(&slug, &candidate, "a valid first candidate is the slug");
        }
        // Free the slug so that a later case may offer it again.
        let deleted = harness.api(
            axum::http::Method::DELETE,
            &format!("/api/links/{slug}"),
            None,
        );
        prop_assert_eq!(deleted.status.as_u16(), 204);
        Ok(())
    })
}
