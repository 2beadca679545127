//! `DayRange`: only canonical `YYYY-MM-DD` days parse, and a range is
//! refused exactly when it is inverted by value.

use proptest::prelude::*;
use shortener::analytics::DayRange;
use time::Date;
use time::macros::format_description;

use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "a day bound parses exactly when it is a canonical yyyy-mm-dd date",
            cost: 1,
            check: only_canonical_days_parse,
        },
        Property {
            name: "a range of canonical days is refused exactly when from is after to",
            cost: 1,
            check: ranges_are_refused_exactly_when_inverted,
        },
    ]
}

/// The canonical text of `d` when it has one (years 0000 to 9999).
fn canonical(d: Date) -> Option<String> {
    (0..=9999)
        .contains(&d.year())
        .then(|| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
}

/// The oracle: `raw` as a date, if it is one written canonically.
fn canonical_day(raw: &str) -> Option<Date> {
    let d = Date::parse(raw, format_description!("[year]-[month]-[day]")).ok()?;
    (canonical(d).as_deref() == Some(raw)).then_some(d)
}

/// Any date in `years` (the day clamped to the month's length: no rejects).
fn date_in(years: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = Date> {
    (years, 1u8..=12, 1u8..=31).prop_map(|(y, m, d)| {
        let month = time::Month::try_from(m).unwrap();
        Date::from_calendar_date(y, month, d.min(month.length(y))).unwrap()
    })
}

fn date() -> impl Strategy<Value = Date> {
    date_in(-9999..=9999)
}

/// Day texts: canonical, signed, unpadded, widened, and arbitrary.
fn day_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => date_in(0..=9999).prop_map(|d| canonical(d).unwrap()),
        2 => date().prop_map(|d| format!("{:+05}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())),
        1 => date().prop_map(|d| format!("{}-{}-{}", d.year(), u8::from(d.month()), d.day())),
        1 => date().prop_map(|d| format!("{:+06}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "[-+0-9 T:Z]{0,14}",
        1 => "\\PC{0,12}",
    ]
}

fn only_canonical_days_parse(cases: u32) -> Result<(), String> {
    check(cases, day_text(), |raw| {
        let want = canonical_day(&raw).is_some();
        let as_from = DayRange::parse(Some(&raw), None);
        let as_to = DayRange::parse(None, Some(&raw));
        prop_assert_eq!(as_from.is_ok(), want, "from={:?}: {:?}", raw, as_from.err());
        prop_assert_eq!(as_to.is_ok(), want, "to={:?}: {:?}", raw, as_to.err());
        if let Err(e) = as_from {
            prop_assert_eq!(e.code(), "invalid_date");
        }
        Ok(())
    })
}

fn ranges_are_refused_exactly_when_inverted(cases: u32) -> Result<(), String> {
    let day = || date_in(0..=9999).prop_map(|d| (d, canonical(d).unwrap()));
    check(
        cases,
        (day(), day()),
        |((from, from_text), (to, to_text))| {
            let range = DayRange::parse(Some(&from_text), Some(&to_text));
            prop_assert_eq!(range.is_ok(), from <= to, "{}..{}", from_text, to_text);
            if let Err(e) = range {
                prop_assert_eq!(e.code(), "invalid_date_range");
            }
            Ok(())
        },
    )
}
