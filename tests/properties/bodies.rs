//! Arbitrary JSON bodies and query strings through the router: an answer is
//! always one the API documents, an error is always the error schema, and
//! nothing is left half-stored.

use axum::http::Method;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::app::{Harness, is_error_body};
use super::{Property, check};

pub fn properties() -> Vec<Property> {
    vec![
        Property {
            name: "any create body gets a documented answer and leaves nothing half stored",
            cost: 4,
            check: any_create_body_gets_a_documented_answer,
        },
        Property {
            name: "any list query gets a page of at most limit links or a 400",
            cost: 4,
            check: any_list_query_gets_a_page_or_a_400,
        },
        Property {
            name: "any stats query gets stats or a 400 and never a server error",
            cost: 4,
            check: any_stats_query_gets_stats_or_a_400,
        },
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,16}".prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a known field: mostly plausible, sometimes any JSON.
fn field(plausible: BoxedStrategy<String>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        5 => plausible.prop_map(|s| Some(Value::from(s))),
        2 => any_json().prop_map(Some),
    ]
}

/// Objects shaped like a create request, plus arbitrary JSON.
fn create_body() -> impl Strategy<Value = Value> {
    let url = prop_oneof![
        "https://[a-z]{1,8}\\.example/[a-z0-9]{0,8}",
        "(ht|f)tps?://[ -~]{0,20}",
        "\\PC{0,24}",
        Just("https://sho.rt/abc".to_owned()),
    ]
    .boxed();
    let slug = prop_oneof!["[A-Za-z0-9_-]{0,70}", "\\PC{0,10}", Just("api".to_owned())].boxed();
    let expiry = prop_oneof![
        "20[3-9][0-9]-0[1-9]-1[0-9]T1[0-9]:00:00Z",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{2}:[0-9]{2}",
        "\\PC{0,16}",
    ]
    .boxed();
    let extra = prop::option::of(("[a-z]{1,6}", scalar()));
    let shaped =
        (field(url), field(slug), field(expiry), extra).prop_map(|(url, slug, exp, extra)| {
            let mut m = Map::new();
            for (k, v) in [("url", url), ("slug", slug), ("expires_at", exp)] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        });
    // Also the fields as an array: serde would fill a struct from one.
    let as_array = (
        "https://[a-z]{1,8}\\.example/",
        prop::option::of(Just(Value::Null)),
    )
        .prop_map(|(url, slug)| match slug {
            Some(s) => json!([url, s]),
            None => json!([url]),
        });
    prop_oneof![6 => shaped, 1 => as_array, 1 => any_json()]
}

/// The body bytes: the JSON, or the JSON cut short, or raw bytes.
fn create_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => create_body().prop_map(|v| v.to_string().into_bytes()),
        1 => (create_body(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let text = v.to_string().into_bytes();
            let cut = at.index(text.len().max(1));
            text[..cut.min(text.len())].to_vec()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn any_create_body_gets_a_documented_answer(cases: u32) -> Result<(), String> {
    let harness = Harness::new(&[]);
    check(cases, create_bytes(), |bytes| {
        let r = harness.api(Method::POST, "/api/links", Some(&bytes));
        let status = r.status.as_u16();
        prop_assert!(
            matches!(status, 201 | 400 | 409),
            "{} for {:?}: {}",
            status,
            String::from_utf8_lossy(&bytes),
            r.text()
        );
        let body = r.json();
        if status == 201 {
            let sent: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            prop_assert!(
                sent.is_object(),
                "only an object is a create request: {}",
                sent
            );
            let slug = body["slug"].as_str().unwrap_or_default().to_owned();
            for key in ["slug", "short_url", "url", "created_at"] {
                prop_assert!(body[key].is_string(), "{} missing in {}", key, body);
            }
            prop_assert!(body["expires_at"].is_null() || body["expires_at"].is_string());
            let short_url = format!("https://sho.rt/{slug}");
            prop_assert_eq!(body["short_url"].as_str(), Some(short_url.as_str()));
            let got = harness.api(Method::GET, &format!("/api/links/{slug}"), None);
            prop_assert_eq!(got.status.as_u16(), 200);
            prop_assert_eq!(&got.json()["url"], &body["url"]);
        } else {
            prop_assert!(is_error_body(&body), "not the error schema: {}", r.text());
        }
        let (registry, records) = harness.link_counts();
        prop_assert_eq!(
            registry,
            records,
            "a slug is claimed without a record (or the reverse)"
        );
        Ok(())
    })
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..300).prop_map(|n| n.to_string()),
        "-?[0-9]{1,25}",
        "[A-Za-z0-9_%+-]{0,10}",
        Just(String::new()),
    ]
}

fn any_list_query_gets_a_page_or_a_400(cases: u32) -> Result<(), String> {
    let harness = Harness::new(&[]);
    for i in 0..120 {
        let r =
            harness.create(&json!({"url": "https://example.com/", "slug": format!("page-{i:03}")}));
        assert_eq!(r.status.as_u16(), 201);
    }
    let strategy = (
        prop::option::of(query_value()),
        prop::option::of(query_value()),
    );
    check(cases, strategy, |(limit, cursor)| {
        let mut params = Vec::new();
        if let Some(l) = &limit {
            params.push(format!("limit={l}"));
        }
        if let Some(c) = &cursor {
            params.push(format!("cursor={c}"));
        }
        let r = harness.api(
            Method::GET,
            &format!("/api/links?{}", params.join("&")),
            None,
        );
        let status = r.status.as_u16();
        // What the server sees once the query is form-decoded.
        let decoded = limit.as_deref().map(|l| {
            url::form_urlencoded::parse(format!("limit={l}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        });
        let wanted_limit = match decoded.as_deref() {
            None => Some(20),
            Some(l) => l.parse::<u64>().ok().filter(|n| (1..=100).contains(n)),
        };
        if wanted_limit.is_none() {
            prop_assert_eq!(status, 400, "limit={:?}: {}", limit, r.text());
            prop_assert_eq!(&r.json()["error"]["code"], &json!("invalid_limit"));
            return Ok(());
        }
        prop_assert!(status == 200 || status == 400, "{}: {}", status, r.text());
        if status == 200 {
            let page = r.json();
            let n = page["links"].as_array().map_or(0, Vec::len) as u64;
            prop_assert!(
                n <= wanted_limit.unwrap(),
                "{} links for limit {:?}",
                n,
                limit
            );
            prop_assert!(page["next_cursor"].is_null() || page["next_cursor"].is_string());
        } else {
            prop_assert!(is_error_body(&r.json()), "{}", r.text());
        }
        Ok(())
    })
}

fn any_stats_query_gets_stats_or_a_400(cases: u32) -> Result<(), String> {
    let harness = Harness::new(&[]);
    let r = harness.create(&json!({"url": "https://example.com/", "slug": "stats-q"}));
    assert_eq!(r.status.as_u16(), 201);
    let day = prop_oneof![
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
        "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}",
        "[A-Za-z0-9_%+-]{0,12}",
    ];
    let strategy = (prop::option::of(day.clone()), prop::option::of(day));
    check(cases, strategy, |(from, to)| {
        let mut params = Vec::new();
        if let Some(f) = &from {
            params.push(format!("from={f}"));
        }
        if let Some(t) = &to {
            params.push(format!("to={t}"));
        }
        let r = harness.api(
            Method::GET,
            &format!("/api/links/stats-q/stats?{}", params.join("&")),
            None,
        );
        let status = r.status.as_u16();
        prop_assert!(status == 200 || status == 400, "{}: {}", status, r.text());
        if status == 400 {
            prop_assert!(is_error_body(&r.json()), "{}", r.text());
        } else {
            prop_assert_eq!(r.json()["total"].as_i64(), Some(0));
        }
        Ok(())
    })
}
