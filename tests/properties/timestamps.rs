//! `expires_at` through the router: any text is either refused with a 400
//! that leaves the slug free, or stored as the same instant in UTC.

use proptest::prelude::*;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::app::Harness;
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![Property {
        name: "an expires_at is stored as the same utc instant or refused with the slug left free",
        cost: 6,
        check: expiry_is_the_same_instant_or_refused,
    }]
}

/// RFC 3339-shaped text over the whole range `time` parses, with any
/// offset, separator case, fraction and leap second, and some noise.
fn timestamp_text() -> impl Strategy<Value = String> {
    let shaped = (
        prop_oneof![0i32..=9999, 2030i32..=2040, 9990i32..=9999],
        1u8..=12,
        1u8..=31,
        0u8..=24,
        0u8..=59,
        prop_oneof![0u8..=59, Just(60)],
        prop_oneof![Just(String::new()), "\\.[0-9]{1,12}"],
        prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (any::<bool>(), 0u8..=23, 0u8..=59)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
        prop_oneof![Just('T'), Just('t'), Just(' ')],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off, sep)| {
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
        });
    // The last hours of 9999 (and the first of year 0) with an offset that
    // takes them out of the range in UTC.
    let edge = (
        prop_oneof![Just("9999-12-31T2"), Just("0000-01-01T0")],
        0u8..=3,
        0u8..=59,
        prop_oneof![Just('-'), Just('+')],
        0u8..=23,
    )
        .prop_map(|(day, h, m, sign, oh)| format!("{day}{h}:{m:02}:00{sign}{oh:02}:00"));
    prop_oneof![
        2 => edge,
        8 => shaped,
        1 => "[0-9T:+Z.-]{0,30}",
        1 => "\\PC{0,20}",
    ]
}

/// The oracle: the UTC Unix time (nanoseconds) that `raw` denotes, computed
/// without `time`'s offset arithmetic (which is what overflows).
fn instant_nanos(raw: &str) -> Option<i128> {
    let parsed = OffsetDateTime::parse(raw, &Rfc3339).ok()?;
    let local = PrimitiveDateTime::new(parsed.date(), parsed.time()).assume_utc();
    Some(local.unix_timestamp_nanos() - i128::from(parsed.offset().whole_seconds()) * 1_000_000_000)
}

fn expiry_is_the_same_instant_or_refused(cases: u32) -> Result<(), String> {
    let harness = Harness::new(&[]);
    let now_nanos = OffsetDateTime::parse("2030-01-15T12:00:00Z", &Rfc3339)
        .unwrap()
        .unix_timestamp_nanos();
    check(cases, timestamp_text(), |raw| {
        let slug = harness.fresh_slug("exp");
        let body = json!({"url": "https://example.com/", "slug": slug, "expires_at": raw});
        let created = harness.create(&body);
        let status = created.status.as_u16();
        prop_assert!(
            status == 201 || status == 400,
            "{} for {:?}: {}",
            status,
            raw,
            created.text()
        );
        let denoted = instant_nanos(&raw);
        if status == 201 {
            let want = denoted.expect("only a timestamp is accepted");
            prop_assert!(want > now_nanos, "{:?} is not in the future", raw);
            let stored = created.json()["expires_at"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            prop_assert!(stored.ends_with('Z'), "{:?} is not UTC", stored);
            prop_assert_eq!(
                instant_nanos(&stored),
                Some(want),
                "{:?} stored as {:?}",
                raw,
                stored
            );
            let got = harness.api(axum::http::Method::GET, &format!("/api/links/{slug}"), None);
            prop_assert_eq!(&got.json()["expires_at"], &json!(stored));
            let followed = harness.visit(&slug, "203.0.113.1".parse().unwrap(), &[]);
            prop_assert_eq!(followed.status.as_u16(), 302, "not expired yet");
        } else {
            if denoted.is_some_and(|t| t > now_nanos) {
                // A future instant may be refused only when it is out of range.
                let year = OffsetDateTime::parse(&raw, &Rfc3339).unwrap().year();
                prop_assert!(year >= 9999, "{:?} refused: {}", raw, created.text());
            }
            // Nothing was claimed: the slug is free for a valid request.
            let retry = harness.create(&json!({"url": "https://example.com/", "slug": slug}));
            prop_assert_eq!(
                retry.status.as_u16(),
                201,
                "slug stuck after {:?}: {}",
                raw,
                retry.text()
            );
        }
        Ok(())
    })
}
