//! The generated `wasi:otel/tracing@0.2.0-rc.2` records, and how their
//! ids, times and attribute values are encoded for Spin's host. The records
//! are built by [`super::tracer`]; the Spin shell (`crate::shell::otel`)
//! hands them to the host.
//!
//! The bindings are generated here, from the WIT in `wit/`, on every target:
//! wit-bindgen's output compiles natively too (only calling its imports,
//! `wit::on_start` / `wit::on_end`, would be unreachable there), so the
//! records are tested natively on the very types the component sends.
//! The one wit-bindgen crate is also the one spin-sdk re-exports, so a single
//! runtime is linked.
//!
//! Encoding rules, matched to Spin's host side (`spin-world`'s
//! `wasi_otel::{trace,common}_conversions`, used by `spin-factor-otel`):
//! - ids: the host parses them with `TraceId::from_hex` / `SpanId::from_hex`
//!   (`u128`/`u64::from_str_radix(_, 16)`), so padded and unpadded hex are
//!   both accepted and anything unparsable becomes the invalid (zero) id. We
//!   send the canonical W3C form: 32 / 16 lowercase hex digits, zero-padded
//!   (a root span's parent is `"0000000000000000"`). The host itself emits
//!   *unpadded* hex (`"0"` for none); we never read ids back from it.
//! - attribute values: the host runs `serde_json::from_str` and **panics** on
//!   failure. It accepts a bool, an integer that fits in i64, a float, a
//!   string, or a homogeneous array of those. `null` and objects are refused.
//!   `tracing` values are scalars, so we send a bool, an i64, a float that
//!   keeps its `.0`/exponent, or a string; a wider integer and a non-finite
//!   float (which JSON cannot express) are sent as strings (`"NaN"`,
//!   `"Infinity"`, `"-Infinity"` for the latter).

use std::time::{SystemTime, UNIX_EPOCH};

mod bindings {
    wit_bindgen::generate!({
        // Relative to the crate root (CARGO_MANIFEST_DIR).
        path: "wit",
        world: "otel-bridge",
        generate_all,
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::wasi::clocks::wall_clock::Datetime;
/// The `wasi:otel/tracing` records and the host calls (`on_start`, `on_end`).
pub use bindings::wasi::otel::tracing as wit;
pub use bindings::wasi::otel::types::{InstrumentationScope, KeyValue};

/// The id of no span (a root span's parent).
pub const NO_SPAN: &str = "0000000000000000";

/// A trace id as 32 lowercase hex digits.
pub fn trace_id_hex(id: u128) -> String {
    format!("{id:032x}")
}

/// A span id as 16 lowercase hex digits (all zeros for "no span").
pub fn span_id_hex(id: u64) -> String {
    format!("{id:016x}")
}

/// A `SystemTime` as seconds + nanoseconds since the epoch (clamped to the
/// epoch for earlier times rather than panicking).
pub fn datetime(time: SystemTime) -> Datetime {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Datetime {
        seconds: since_epoch.as_secs(),
        nanoseconds: since_epoch.subsec_nanos(),
    }
}

/// A bool attribute value.
pub fn bool_json(b: bool) -> String {
    b.to_string()
}

/// An integer attribute value: a JSON number when it fits in i64 (the
/// host's integer), else its digits as a JSON string.
pub fn int_json(i: impl Into<i128>) -> String {
    let i = i.into();
    match i64::try_from(i) {
        Ok(i) => i.to_string(),
        Err(_) => string_json(&i.to_string()),
    }
}

/// A float attribute value: a finite float as a JSON number that always
/// reads back as a float (`1.0`, `1e300`); a non-finite one as a JSON
/// string with the proto3 JSON spelling.
pub fn f64_json(f: f64) -> String {
    if f.is_finite() {
        serde_json::to_string(&f).expect("finite f64 serializes")
    } else if f.is_nan() {
        string_json("NaN")
    } else if f > 0.0 {
        string_json("Infinity")
    } else {
        string_json("-Infinity")
    }
}

/// A string attribute value: a JSON string literal (quoted, with `"`, `\`
/// and control characters escaped).
pub fn string_json(s: &str) -> String {
    serde_json::to_string(s).expect("str serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Mirrors what Spin's host accepts (`OwnedValue` deserializer): a bool,
    /// an i64, an f64 or a string (arrays are never sent).
    fn assert_host_accepts(text: &str) {
        use serde_json::Value as J;
        let parsed: J =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"));
        match &parsed {
            J::Bool(_) | J::String(_) => {}
            J::Number(n) => assert!(n.is_i64() || n.is_f64(), "{text}: u64 > i64::MAX"),
            J::Array(_) | J::Null | J::Object(_) => panic!("{text}: not a scalar the host reads"),
        }
    }

    #[test]
    fn ids_are_padded_lowercase_hex() {
        assert_eq!(trace_id_hex(0xabc), "00000000000000000000000000000abc");
        assert_eq!(span_id_hex(0xf), "000000000000000f");
        assert_eq!(
            trace_id_hex(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(trace_id_hex(0), "0".repeat(32));
        assert_eq!(span_id_hex(0), NO_SPAN);
    }

    #[test]
    fn ids_round_trip_through_the_host_parser() {
        // The host reads ids with `from_str_radix(_, 16)`.
        let trace = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128;
        let span = 0x00f0_67aa_0ba9_02b7_u64;
        assert_eq!(u128::from_str_radix(&trace_id_hex(trace), 16), Ok(trace));
        assert_eq!(u64::from_str_radix(&span_id_hex(span), 16), Ok(span));
        assert_eq!(u64::from_str_radix(NO_SPAN, 16), Ok(0));
    }

    #[test]
    fn scalar_values_are_json_the_host_reads_back() {
        assert_eq!(bool_json(true), "true");
        assert_eq!(bool_json(false), "false");
        assert_eq!(int_json(0_i64), "0");
        assert_eq!(int_json(-42_i64), "-42");
        assert_eq!(int_json(i64::MAX), "9223372036854775807");
        assert_eq!(int_json(i64::MIN), "-9223372036854775808");
        assert_eq!(f64_json(1.5), "1.5");
        assert_eq!(f64_json(1.0), "1.0"); // stays a float for the host
        assert_eq!(f64_json(-0.0), "-0.0");
        // Exponent spelling is serde_json's choice (`1e+300` today): only
        // require a float that reads back exactly.
        let big: serde_json::Value = serde_json::from_str(&f64_json(1e300)).unwrap();
        assert_eq!(big.as_f64(), Some(1e300));
        assert!(big.is_f64());
        let one: serde_json::Value = serde_json::from_str(&f64_json(1.0)).unwrap();
        assert!(one.is_f64());
        assert_eq!(string_json("plain"), r#""plain""#);
        for text in ["true", "-42", "1.0", "1e+300", r#""plain""#] {
            assert_host_accepts(text);
        }
    }

    #[test]
    fn integers_beyond_i64_become_strings() {
        assert_eq!(int_json(u64::MAX), r#""18446744073709551615""#);
        assert_eq!(int_json(i64::MAX as u64 + 1), r#""9223372036854775808""#);
        assert_eq!(int_json(i64::MAX as u64), "9223372036854775807");
        assert_eq!(int_json(i128::MIN), format!("\"{}\"", i128::MIN));
        assert_host_accepts(&int_json(u64::MAX));
    }

    #[test]
    fn non_finite_floats_become_strings() {
        assert_eq!(f64_json(f64::NAN), r#""NaN""#);
        assert_eq!(f64_json(f64::INFINITY), r#""Infinity""#);
        assert_eq!(f64_json(f64::NEG_INFINITY), r#""-Infinity""#);
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_host_accepts(&f64_json(f));
        }
    }

    #[test]
    fn strings_are_escaped() {
        let cases = [
            ("say \"hi\"", r#""say \"hi\"""#),
            ("back\\slash", r#""back\\slash""#),
            ("line1\nline2\r\t", r#""line1\nline2\r\t""#),
            ("\u{0}\u{1f}", r#""\u0000\u001f""#),
            ("héllo ✓ 😀", "\"héllo ✓ 😀\""),
            ("</script>", r#""</script>""#),
            ("", r#""""#),
        ];
        for (input, expected) in cases {
            let out = string_json(input);
            assert_eq!(out, expected, "for {input:?}");
            assert_host_accepts(&out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, input);
        }
    }

    #[test]
    fn timestamps_are_seconds_and_nanos_since_the_epoch_never_before_it() {
        let at = |secs, nanos| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(
            datetime(at(1_700_000_000, 999_999_999)),
            Datetime {
                seconds: 1_700_000_000,
                nanoseconds: 999_999_999
            }
        );
        assert_eq!(
            datetime(UNIX_EPOCH),
            Datetime {
                seconds: 0,
                nanoseconds: 0
            }
        );
        let before_epoch = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(
            datetime(before_epoch),
            Datetime {
                seconds: 0,
                nanoseconds: 0
            }
        );
    }
}
