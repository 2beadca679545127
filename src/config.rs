//! Typed settings, read once per instance from Spin variables.
//!
//! The host supplies a lookup (`name -> Option<value>`); [`Settings::from_lookup`]
//! validates everything at once, so a bad value is refused with a clear error
//! before any request is served.

use std::fmt;

use axum::http::StatusCode;
use url::Url;

use crate::links::OwnOrigins;
use crate::telemetry::SampleRatio;

/// Variable names, as declared in spin.toml `[variables]`.
pub mod names {
    /// Bearer token for `/api/...` (secret). Empty, a placeholder or shorter
    /// than [`super::MIN_ADMIN_TOKEN_BYTES`] means the API refuses every call.
    pub const ADMIN_TOKEN: &str = "admin_token";
    /// Base of every `short_url`, e.g. `https://sho.rt`.
    pub const PUBLIC_BASE_URL: &str = "public_base_url";
    /// Other `host` or `host:port` names that reach this shortener
    /// (comma-separated); target URLs may not point at them either.
    pub const PUBLIC_HOST_ALIASES: &str = "public_host_aliases";
    /// 301, 302, 307 or 308.
    pub const REDIRECT_STATUS: &str = "redirect_status";
    /// Length of random slugs.
    pub const SLUG_LENGTH: &str = "slug_length";
    /// How many reverse proxies append to `X-Forwarded-For` in front of us.
    pub const TRUSTED_PROXY_HOPS: &str = "trusted_proxy_hops";
    /// Key of the visitor hash (secret).
    pub const VISITOR_SALT: &str = "visitor_salt";
    /// How long a SQLite statement waits for a lock held by another
    /// connection before it fails (milliseconds; `PRAGMA busy_timeout`).
    pub const SQLITE_BUSY_TIMEOUT_MS: &str = "sqlite_busy_timeout_ms";
    /// How long a key-value call may take before it fails (milliseconds).
    pub const KV_TIMEOUT_MS: &str = "kv_timeout_ms";
    /// `true` when the click database is shared by several replicas over
    /// the network (sqld): each redirect writes its click to this replica's
    /// local outbox, shipped in batches ([`crate::outbox`]).
    pub const CLICK_OUTBOX: &str = "click_outbox";
    /// With the outbox: how long a statement to the networked click
    /// database may take before it fails (milliseconds).
    pub const CLICK_DB_TIMEOUT_MS: &str = "click_db_timeout_ms";
    /// The share of traces whose spans are sent to Spin (0 to 1).
    pub const TRACE_SAMPLE_RATIO: &str = "trace_sample_ratio";

    /// Every variable the app reads.
    pub const ALL: [&str; 12] = [
        ADMIN_TOKEN,
        PUBLIC_BASE_URL,
        PUBLIC_HOST_ALIASES,
        REDIRECT_STATUS,
        SLUG_LENGTH,
        TRUSTED_PROXY_HOPS,
        VISITOR_SALT,
        SQLITE_BUSY_TIMEOUT_MS,
        KV_TIMEOUT_MS,
        CLICK_OUTBOX,
        CLICK_DB_TIMEOUT_MS,
        TRACE_SAMPLE_RATIO,
    ];
}

/// Defaults for optional variables.
pub mod defaults {
    /// `redirect_status`.
    pub const REDIRECT_STATUS: u16 = 302;
    /// `slug_length`.
    pub const SLUG_LENGTH: usize = 7;
    /// `trusted_proxy_hops`.
    pub const TRUSTED_PROXY_HOPS: usize = 0;
    /// `public_base_url`.
    pub const PUBLIC_BASE_URL: &str = "http://127.0.0.1:3000";
    /// `sqlite_busy_timeout_ms`: covers normal write contention at c=32
    /// (p99 ~12 ms) with a wide margin, and bounds a redirect's wait when
    /// another process holds the click database's write lock.
    pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 500;
    /// `kv_timeout_ms`: a key-value read takes ~1 ms; with Redis down,
    /// Spin's client waits in its reconnect back-off for minutes.
    pub const KV_TIMEOUT_MS: u32 = 1_000;
    /// `click_db_timeout_ms`: a shipped batch of 1,024 clicks takes tens of
    /// milliseconds on sqld; a server that stopped answering must not hold
    /// the shipping redirect.
    pub const CLICK_DB_TIMEOUT_MS: u32 = 1_000;
}

/// The longest busy timeout we accept (a redirect waits at most this long
/// for the click database, twice when the unrecorded tally is locked too).
pub const MAX_SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// The range of `kv_timeout_ms` and of `click_db_timeout_ms`.
pub const KV_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u32> = 1..=60_000;

/// The shortest and longest random slug we allow.
pub const SLUG_LENGTH_RANGE: std::ops::RangeInclusive<usize> = 4..=32;

/// The shortest admin token the API accepts to serve with.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// Prefixes of the placeholder secrets shipped in examples (`.env.example`
/// has `change-me-...`), compared case-insensitively.
pub const PLACEHOLDER_PREFIXES: [&str; 2] = ["change-me", "changeme"];

/// Why the API is off when no admin token is in force: the message of its
/// `api_disabled` answers.
pub mod api_disabled {
    /// No token configured.
    pub const UNSET: &str = "The API is disabled: no admin_token is configured on the server.";
    /// A placeholder from an example file.
    pub const PLACEHOLDER: &str = "The API is disabled: admin_token is a placeholder \
         (it starts with `change-me`); set a random one, e.g. `openssl rand -hex 32`.";
    /// Too short to resist guessing.
    pub const TOO_SHORT: &str = "The API is disabled: admin_token is shorter than 32 bytes; \
         set a random one, e.g. `openssl rand -hex 32`.";
}

/// The shortest visitor salt the app keys visitor hashes with: the admin
/// token's rule, since a guessable salt lets anyone holding `clicks.db` test
/// whether a known IP visited on a given day.
pub const MIN_VISITOR_SALT_BYTES: usize = MIN_ADMIN_TOKEN_BYTES;

/// Why `visitor_salt` is refused: `/health`'s `refused.visitor_salt` and the
/// instance's log line. Redirects are still served; their clicks are counted
/// as unrecorded (`crate::unrecorded`), and no visitor hash is stored.
pub mod salt_refused {
    /// No salt configured (or an empty one).
    pub const UNSET: &str = "visitor_salt is not set: clicks are counted as unrecorded \
         and no visitor hash is stored; set a random one, e.g. `openssl rand -hex 32`.";
    /// A placeholder from an example file.
    pub const PLACEHOLDER: &str = "visitor_salt is a placeholder (it starts with `change-me`): \
         clicks are counted as unrecorded and no visitor hash is stored; set a random one, \
         e.g. `openssl rand -hex 32`.";
    /// Too short to resist guessing.
    pub const TOO_SHORT: &str = "visitor_salt is shorter than 32 bytes: clicks are counted as \
         unrecorded and no visitor hash is stored; set a random one, e.g. `openssl rand -hex 32`.";
}

/// What is wrong with a configured secret.
enum WeakSecret {
    Unset,
    Placeholder,
    TooShort,
}

/// A secret (`admin_token`, `visitor_salt`), unless it is unset, a
/// placeholder (one of [`PLACEHOLDER_PREFIXES`]) or shorter than `min` bytes.
fn secret(value: Option<String>, min: usize) -> Result<String, WeakSecret> {
    let secret = value.ok_or(WeakSecret::Unset)?;
    let lower = secret.to_ascii_lowercase();
    if PLACEHOLDER_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(WeakSecret::Placeholder);
    }
    if secret.len() < min {
        return Err(WeakSecret::TooShort);
    }
    Ok(secret)
}

/// The admin token, unless it is unset or one the app refuses to serve with
/// (a placeholder, or shorter than [`MIN_ADMIN_TOKEN_BYTES`]): then the reason.
fn admin_token(value: Option<String>) -> Result<String, &'static str> {
    secret(value, MIN_ADMIN_TOKEN_BYTES).map_err(|weak| match weak {
        WeakSecret::Unset => api_disabled::UNSET,
        WeakSecret::Placeholder => api_disabled::PLACEHOLDER,
        WeakSecret::TooShort => api_disabled::TOO_SHORT,
    })
}

/// The visitor salt, unless it is refused by the admin token's rules
/// ([`MIN_VISITOR_SALT_BYTES`]): then the reason (one of [`salt_refused`]).
fn visitor_salt(value: Option<String>) -> Result<String, &'static str> {
    secret(value, MIN_VISITOR_SALT_BYTES).map_err(|weak| match weak {
        WeakSecret::Unset => salt_refused::UNSET,
        WeakSecret::Placeholder => salt_refused::PLACEHOLDER,
        WeakSecret::TooShort => salt_refused::TOO_SHORT,
    })
}

/// The app's configuration.
#[derive(Clone)]
pub struct Settings {
    /// `None` when no usable token is configured: the API then refuses every
    /// call with [`Settings::api_disabled_reason`].
    pub admin_token: Option<String>,
    /// Why `admin_token` is `None` (one of [`api_disabled`]).
    pub api_disabled_reason: &'static str,
    /// Normalised (no trailing slash).
    pub public_base_url: Url,
    /// Where we answer: `public_base_url` and `public_host_aliases`.
    pub own_origins: OwnOrigins,
    /// The redirect status.
    pub redirect_status: StatusCode,
    /// Random slug length.
    pub slug_length: usize,
    /// Trusted `X-Forwarded-For` hops.
    pub trusted_proxy_hops: usize,
    /// Visitor-hash key; `None` when it is refused (see
    /// [`Settings::visitor_salt_refused`]).
    pub visitor_salt: Option<String>,
    /// Why `visitor_salt` is `None` (one of [`salt_refused`]): `/health`
    /// answers 503 naming it, and redirects count their clicks as unrecorded.
    pub visitor_salt_refused: Option<&'static str>,
    /// `PRAGMA busy_timeout` of every SQLite connection, in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
    /// How long a key-value call may take, in milliseconds (enforced by the
    /// host adapter).
    pub kv_timeout_ms: u32,
    /// Clicks go through this replica's local outbox ([`crate::outbox`]).
    pub click_outbox: bool,
    /// With [`Settings::click_outbox`], how long a statement to the click
    /// database may take, in milliseconds (enforced by the host adapter).
    pub click_db_timeout_ms: u32,
    /// The share of traces recorded (the guest's spans of a request, sent
    /// over wasi:otel); all by default.
    pub trace_sample_ratio: SampleRatio,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are never printed.
        f.debug_struct("Settings")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("public_base_url", &self.public_base_url.as_str())
            .field("own_origins", &self.own_origins)
            .field("redirect_status", &self.redirect_status.as_u16())
            .field("slug_length", &self.slug_length)
            .field("trusted_proxy_hops", &self.trusted_proxy_hops)
            .field("visitor_salt", &self.visitor_salt.as_ref().map(|_| "<set>"))
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("kv_timeout_ms", &self.kv_timeout_ms)
            .field("click_outbox", &self.click_outbox)
            .field("click_db_timeout_ms", &self.click_db_timeout_ms)
            .field("trace_sample_ratio", &self.trace_sample_ratio.get())
            .finish()
    }
}

/// A variable with a value the app cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Spin variable `{name}`: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Why it was refused.
    pub reason: String,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        reason: reason.into(),
    }
}

impl Settings {
    /// Reads and validates every variable. `lookup` returns `None` for a
    /// variable that is undefined or not granted to this component; empty
    /// strings count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let redirect_status = match get(names::REDIRECT_STATUS) {
            None => StatusCode::from_u16(defaults::REDIRECT_STATUS).expect("valid default"),
            Some(raw) => parse_redirect_status(&raw)?,
        };
        let slug_length = match get(names::SLUG_LENGTH) {
            None => defaults::SLUG_LENGTH,
            Some(raw) => {
                let n: usize = raw
                    .parse()
                    .map_err(|_| invalid(names::SLUG_LENGTH, format!("`{raw}` is not a number")))?;
                if !SLUG_LENGTH_RANGE.contains(&n) {
                    return Err(invalid(
                        names::SLUG_LENGTH,
                        format!(
                            "{n} is outside {}..={}",
                            SLUG_LENGTH_RANGE.start(),
                            SLUG_LENGTH_RANGE.end()
                        ),
                    ));
                }
                n
            }
        };
        let trusted_proxy_hops = match get(names::TRUSTED_PROXY_HOPS) {
            None => defaults::TRUSTED_PROXY_HOPS,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(
                    names::TRUSTED_PROXY_HOPS,
                    format!("`{raw}` is not a whole number"),
                )
            })?,
        };
        let sqlite_busy_timeout_ms = match get(names::SQLITE_BUSY_TIMEOUT_MS) {
            None => defaults::SQLITE_BUSY_TIMEOUT_MS,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if n <= MAX_SQLITE_BUSY_TIMEOUT_MS => n,
                _ => {
                    return Err(invalid(
                        names::SQLITE_BUSY_TIMEOUT_MS,
                        format!(
                            "`{raw}` is not a whole number of milliseconds from 0 to {MAX_SQLITE_BUSY_TIMEOUT_MS}"
                        ),
                    ));
                }
            },
        };
        let kv_timeout_ms = millis(
            get(names::KV_TIMEOUT_MS),
            names::KV_TIMEOUT_MS,
            defaults::KV_TIMEOUT_MS,
        )?;
        let click_outbox = match get(names::CLICK_OUTBOX).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(raw) => {
                return Err(invalid(
                    names::CLICK_OUTBOX,
                    format!("`{raw}` is neither `true` nor `false`"),
                ));
            }
        };
        let click_db_timeout_ms = millis(
            get(names::CLICK_DB_TIMEOUT_MS),
            names::CLICK_DB_TIMEOUT_MS,
            defaults::CLICK_DB_TIMEOUT_MS,
        )?;
        let trace_sample_ratio = match get(names::TRACE_SAMPLE_RATIO) {
            None => SampleRatio::ALL,
            Some(raw) => SampleRatio::parse(&raw)
                .map_err(|reason| invalid(names::TRACE_SAMPLE_RATIO, reason))?,
        };
        let base = get(names::PUBLIC_BASE_URL).unwrap_or_else(|| defaults::PUBLIC_BASE_URL.into());
        let public_base_url = parse_base_url(&base)?;
        let aliases: Vec<String> = get(names::PUBLIC_HOST_ALIASES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let own_origins = OwnOrigins::new(&public_base_url, &aliases)
            .map_err(|reason| invalid(names::PUBLIC_HOST_ALIASES, reason))?;

        let (admin_token, api_disabled_reason) = match admin_token(get(names::ADMIN_TOKEN)) {
            Ok(token) => (Some(token), ""),
            Err(reason) => {
                if reason != api_disabled::UNSET {
                    // Once per instance, in Spin's log: the API answers
                    // `api_disabled` with the same reason.
                    eprintln!("shortener: {reason}");
                    tracing::warn!(reason, "API disabled");
                }
                (None, reason)
            }
        };

        let (visitor_salt, visitor_salt_refused) = match visitor_salt(get(names::VISITOR_SALT)) {
            Ok(salt) => (Some(salt), None),
            Err(reason) => {
                // Once per instance, in Spin's log; `/health` answers 503
                // with the same reason.
                eprintln!("shortener: {reason}");
                tracing::warn!(reason, "visitor_salt refused");
                (None, Some(reason))
            }
        };

        Ok(Self {
            admin_token,
            api_disabled_reason,
            public_base_url,
            own_origins,
            redirect_status,
            slug_length,
            trusted_proxy_hops,
            visitor_salt,
            visitor_salt_refused,
            sqlite_busy_timeout_ms,
            kv_timeout_ms,
            click_outbox,
            click_db_timeout_ms,
            trace_sample_ratio,
        })
    }

    /// The public short URL of `slug`.
    pub fn short_url(&self, slug: &str) -> String {
        format!(
            "{}/{slug}",
            self.public_base_url.as_str().trim_end_matches('/')
        )
    }
}

/// A bound in milliseconds within [`KV_TIMEOUT_MS_RANGE`] (`default` when
/// unset).
fn millis(raw: Option<String>, name: &'static str, default: u32) -> Result<u32, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.parse::<u32>() {
        Ok(n) if KV_TIMEOUT_MS_RANGE.contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!(
                "`{raw}` is not a whole number of milliseconds from {} to {}",
                KV_TIMEOUT_MS_RANGE.start(),
                KV_TIMEOUT_MS_RANGE.end()
            ),
        )),
    }
}

fn parse_redirect_status(raw: &str) -> Result<StatusCode, ConfigError> {
    match raw.parse::<u16>() {
        Ok(code @ (301 | 302 | 307 | 308)) => Ok(StatusCode::from_u16(code).expect("valid code")),
        _ => Err(invalid(
            names::REDIRECT_STATUS,
            format!("`{raw}` is not one of 301, 302, 307, 308"),
        )),
    }
}

fn parse_base_url(raw: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(raw).map_err(|e| invalid(names::PUBLIC_BASE_URL, format!("`{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            names::PUBLIC_BASE_URL,
            format!("`{raw}` is not an absolute http(s) URL"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            names::PUBLIC_BASE_URL,
            format!("`{raw}` must not have a query or fragment"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_variables_are_unset() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.redirect_status, StatusCode::FOUND);
        assert_eq!(s.slug_length, 7);
        assert_eq!(s.trusted_proxy_hops, 0);
        assert!(s.admin_token.is_none());
    }

    #[test]
    fn every_allowed_redirect_status_is_accepted() {
        for code in ["301", "302", "307", "308"] {
            let s = settings(&[(names::REDIRECT_STATUS, code)]).unwrap();
            assert_eq!(s.redirect_status.as_str(), code);
        }
    }

    #[test]
    fn other_redirect_statuses_are_refused_with_a_clear_error() {
        for code in ["200", "303", "404", "abc", "3020"] {
            let err = settings(&[(names::REDIRECT_STATUS, code)]).unwrap_err();
            assert_eq!(err.name, names::REDIRECT_STATUS);
            assert!(err.to_string().contains("301, 302, 307, 308"), "{err}");
        }
    }

    #[test]
    fn slug_length_out_of_range_is_refused() {
        for out_of_range in ["0", "3", "33", "1000"] {
            let err = settings(&[(names::SLUG_LENGTH, out_of_range)]).unwrap_err();
            assert_eq!(err.name, names::SLUG_LENGTH, "{out_of_range}");
        }
        assert!(settings(&[(names::SLUG_LENGTH, "x")]).is_err());
        assert_eq!(
            settings(&[(names::SLUG_LENGTH, "4")]).unwrap().slug_length,
            4
        );
        assert_eq!(
            settings(&[(names::SLUG_LENGTH, "32")]).unwrap().slug_length,
            32
        );
        assert_eq!(
            settings(&[(names::SLUG_LENGTH, "10")]).unwrap().slug_length,
            10
        );
    }

    #[test]
    fn the_busy_timeout_defaults_to_500_ms_and_refuses_nonsense() {
        assert_eq!(settings(&[]).unwrap().sqlite_busy_timeout_ms, 500);
        let s = settings(&[(names::SQLITE_BUSY_TIMEOUT_MS, "50")]).unwrap();
        assert_eq!(s.sqlite_busy_timeout_ms, 50);
        for bad in ["-1", "1.5", "soon", "10001"] {
            let err = settings(&[(names::SQLITE_BUSY_TIMEOUT_MS, bad)]).unwrap_err();
            assert_eq!(err.name, names::SQLITE_BUSY_TIMEOUT_MS, "{bad}");
        }
    }

    #[test]
    fn the_kv_timeout_defaults_to_one_second_and_refuses_zero() {
        assert_eq!(settings(&[]).unwrap().kv_timeout_ms, 1000);
        assert_eq!(
            settings(&[(names::KV_TIMEOUT_MS, "250")])
                .unwrap()
                .kv_timeout_ms,
            250
        );
        for bad in ["0", "60001", "x"] {
            let err = settings(&[(names::KV_TIMEOUT_MS, bad)]).unwrap_err();
            assert_eq!(err.name, names::KV_TIMEOUT_MS, "{bad}");
        }
    }

    #[test]
    fn the_click_outbox_is_off_by_default_and_takes_only_true_or_false() {
        assert!(!settings(&[]).unwrap().click_outbox);
        assert!(!settings(&[("click_outbox", "false")]).unwrap().click_outbox);
        assert!(settings(&[("click_outbox", "true")]).unwrap().click_outbox);
        let e = settings(&[("click_outbox", "yes")]).unwrap_err();
        assert_eq!(e.name, "click_outbox");
        assert!(e.reason.contains("`yes`"), "{e}");
    }

    #[test]
    fn the_click_database_timeout_defaults_to_one_second_and_refuses_zero() {
        assert_eq!(settings(&[]).unwrap().click_db_timeout_ms, 1_000);
        let set = settings(&[("click_db_timeout_ms", "750")]).unwrap();
        assert_eq!(set.click_db_timeout_ms, 750);
        for bad in ["0", "60001", "soon"] {
            let e = settings(&[("click_db_timeout_ms", bad)]).unwrap_err();
            assert_eq!(e.name, "click_db_timeout_ms", "{bad}");
        }
    }

    #[test]
    fn the_trace_sample_ratio_defaults_to_every_trace_and_refuses_what_is_no_share() {
        assert_eq!(settings(&[]).unwrap().trace_sample_ratio.get(), 1.0);
        let set = settings(&[("trace_sample_ratio", "0.01")]).unwrap();
        assert_eq!(set.trace_sample_ratio.get(), 0.01);
        for bad in ["1.5", "-1", "10%"] {
            let e = settings(&[("trace_sample_ratio", bad)]).unwrap_err();
            assert_eq!(e.name, "trace_sample_ratio", "{bad}");
            assert!(e.reason.contains("from 0 to 1"), "{e}");
        }
    }

    #[test]
    fn public_base_url_must_be_absolute_http() {
        assert!(settings(&[(names::PUBLIC_BASE_URL, "ftp://x")]).is_err());
        assert!(settings(&[(names::PUBLIC_BASE_URL, "/relative")]).is_err());
        let s = settings(&[(names::PUBLIC_BASE_URL, "https://sho.rt/")]).unwrap();
        assert_eq!(s.short_url("abc"), "https://sho.rt/abc");
    }

    #[test]
    fn host_aliases_are_a_comma_separated_list_of_hosts() {
        let s = settings(&[
            (names::PUBLIC_BASE_URL, "https://sho.rt"),
            (
                names::PUBLIC_HOST_ALIASES,
                " go.example , 10.0.0.5:8080,[::1]:3000,",
            ),
        ])
        .unwrap();
        let url = |u| Url::parse(u).unwrap();
        assert!(s.own_origins.contains(&url("https://go.example/abc")));
        assert!(s.own_origins.contains(&url("http://10.0.0.5:8080/abc")));
        assert!(!s.own_origins.contains(&url("http://10.0.0.5/abc")));
        assert!(s.own_origins.contains(&url("http://localhost:3000/abc")));
        for bad in ["go.example/path", "user@go.example", "a b", "go.example?x"] {
            let err = settings(&[(names::PUBLIC_HOST_ALIASES, bad)]).unwrap_err();
            assert_eq!(err.name, names::PUBLIC_HOST_ALIASES, "{bad}");
        }
    }

    #[test]
    fn an_empty_admin_token_counts_as_unset() {
        assert!(
            settings(&[(names::ADMIN_TOKEN, "  ")])
                .unwrap()
                .admin_token
                .is_none()
        );
    }

    #[test]
    fn placeholder_admin_tokens_disable_the_api_and_say_why() {
        for placeholder in [
            "change-me-admin-token",
            "CHANGE-ME-0123456789abcdef0123456789abcdef",
            "changeme0123456789abcdef0123456789abcdef",
        ] {
            let s = settings(&[(names::ADMIN_TOKEN, placeholder)]).unwrap();
            assert!(s.admin_token.is_none(), "{placeholder} accepted");
            assert_eq!(s.api_disabled_reason, api_disabled::PLACEHOLDER);
            assert!(s.api_disabled_reason.contains("placeholder"));
        }
    }

    #[test]
    fn admin_tokens_shorter_than_32_bytes_disable_the_api_and_say_why() {
        let short = "a".repeat(MIN_ADMIN_TOKEN_BYTES - 1);
        let s = settings(&[(names::ADMIN_TOKEN, &short)]).unwrap();
        assert!(s.admin_token.is_none());
        assert_eq!(s.api_disabled_reason, api_disabled::TOO_SHORT);
        assert!(s.api_disabled_reason.contains("32 bytes"));
    }

    #[test]
    fn a_random_admin_token_of_32_bytes_or_more_is_kept() {
        let token = "0123456789abcdef0123456789abcdef";
        let s = settings(&[(names::ADMIN_TOKEN, token)]).unwrap();
        assert_eq!(s.admin_token.as_deref(), Some(token));
    }

    #[test]
    fn an_unset_admin_token_says_so() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.api_disabled_reason, api_disabled::UNSET);
    }

    #[test]
    fn a_placeholder_short_or_unset_visitor_salt_is_refused_saying_why() {
        let cases = [
            ("change-me-visitor-salt", salt_refused::PLACEHOLDER),
            (
                "CHANGEME0123456789abcdef0123456789abcdef",
                salt_refused::PLACEHOLDER,
            ),
            ("0123456789abcdef0123456789abcde", salt_refused::TOO_SHORT),
            ("  ", salt_refused::UNSET),
        ];
        for (salt, reason) in cases {
            let s = settings(&[(names::VISITOR_SALT, salt)]).unwrap();
            assert!(s.visitor_salt.is_none(), "{salt} accepted");
            assert_eq!(s.visitor_salt_refused, Some(reason), "{salt}");
            assert!(reason.contains("visitor_salt") && reason.contains("openssl rand -hex 32"));
        }
        assert_eq!(
            settings(&[]).unwrap().visitor_salt_refused,
            Some(salt_refused::UNSET)
        );
    }

    #[test]
    fn a_random_visitor_salt_of_32_bytes_or_more_is_kept() {
        let salt = "0123456789abcdef0123456789abcdef";
        let s = settings(&[(names::VISITOR_SALT, salt)]).unwrap();
        assert_eq!(s.visitor_salt.as_deref(), Some(salt));
        assert_eq!(s.visitor_salt_refused, None);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = settings(&[
            (names::ADMIN_TOKEN, "s3cret-s3cret-s3cret-s3cret-s3cret"),
            (names::VISITOR_SALT, "salty"),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("s3cret") && !printed.contains("salty"));
    }
}
