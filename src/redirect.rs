//! The redirect: what `GET` and `HEAD /{slug}` decide.
//!
//! [`follow`] takes what the request says ([`Visit`]) and returns an
//! [`Outcome`]; the HTTP handler (`crate::http`) only reads the request into
//! a `Visit` and writes the outcome as a response. The rules:
//!
//! * no link, or a path that is no slug: [`Outcome::Miss`] (404);
//! * a link before its `valid_from`: [`Outcome::Miss`], as if it did not
//!   exist;
//! * an expired link: [`Outcome::Expired`] (410);
//! * a link that has had its `max_clicks`: [`Outcome::Exhausted`] (410).
//!   The limit is kept by SQLite in the click's own statement
//!   ([`clicks::RECORD_LIMITED`], migration 8), so exactly `max_clicks`
//!   redirects are served however many instances race. A limited link's
//!   click is never tallied as unrecorded: when the click database refuses
//!   it, the answer is 503, so a limit is never exceeded;
//! * the target: the first redirect rule that matches the visit
//!   ([`links::rules::choose`]), else the link's URL; with `forward_query`
//!   the request's query is appended ([`links::rules::forward_query`]);
//! * every `GET` answered [`Outcome::Miss`], [`Outcome::Expired`] or
//!   [`Outcome::Exhausted`] is counted as an orphan visit
//!   ([`crate::orphans`]: one more statement; a failure is logged, never
//!   the answer);
//! * `HEAD`: the redirect, no click (link previews and checkers); a limited
//!   link reads whether it is exhausted;
//! * `GET`: the click is committed first, then the redirect is answered. A
//!   redirect served is a click recorded or, when the click database
//!   refuses it, a click counted in the unrecorded tally
//!   ([`crate::unrecorded`]); when both fail, the answer is 503 and no
//!   redirect is served. With a refused `visitor_salt`
//!   ([`crate::config::salt_refused`]) no click row is written: every click
//!   is counted in the tally, so no weakly keyed visitor hash is stored;
//! * a link store (key-value) that is down: 503 naming it.
//!
//! The outcome, the visitor's kind and the click's fate are recorded on the
//! request span (`shortener.redirect.outcome`, `shortener.visitor.kind`,
//! `shortener.click.outcome`).

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::app::App;
use crate::clicks::{self, Visitor};
use crate::error::{AppError, Store};
use crate::links::{self, Link, Slug, rules};
use crate::orphans;
use crate::outbox;
use crate::rollups;
use crate::storage::{Statement, StoreError};
use crate::telemetry::attr;
use crate::unrecorded;

/// What a request to `/{slug}` says.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// The slug, or `None` when the path is no slug.
    pub slug: Option<&'a Slug>,
    /// `false` for `HEAD`: same answer, no click.
    pub counts: bool,
    /// The `User-Agent` (empty when absent); only its first
    /// [`clicks::MAX_USER_AGENT_BYTES`] are read.
    pub user_agent: &'a str,
    /// The `Referer`, if any; only its first [`clicks::MAX_REFERER_BYTES`]
    /// are read.
    pub referer: Option<&'a str>,
    /// Every `X-Forwarded-For` line, in order.
    pub forwarded_for: &'a [&'a str],
    /// The socket peer, as the host saw it.
    pub peer: Option<IpAddr>,
    /// The request's path (for orphan visits).
    pub path: &'a str,
    /// The request's query, as sent (without `?`).
    pub query: Option<&'a str>,
    /// The `Accept-Language`, if any; only its first
    /// [`links::rules::MAX_ACCEPT_LANGUAGE_BYTES`] are read.
    pub accept_language: Option<&'a str>,
}

/// What the redirect answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Redirect to `location` (with the configured status); the click, if
    /// the visit counts, is recorded or tallied.
    Redirect {
        /// The link's URL.
        location: String,
    },
    /// No link has that slug (404).
    Miss,
    /// The link has expired (410).
    Expired,
    /// The link has had its `max_clicks` (410).
    Exhausted,
}

/// What a link answers for `visit` before anything is recorded: the rule
/// that serves it (its index) and the `Location`.
pub fn target(link: &Link, visit: &Visit<'_>) -> (Option<usize>, String) {
    let (rule, url) = if link.rules.is_empty() {
        (None, link.url.as_str())
    } else {
        let seen = rules::Seen::of(
            clicks::device(visit.user_agent),
            visit.accept_language,
            visit.query,
        );
        match rules::choose(&link.rules, &seen) {
            Some((i, rule)) => (Some(i), rule.url.as_str()),
            None => (None, link.url.as_str()),
        }
    };
    let location = if link.forward_query {
        rules::forward_query(url, visit.query).into_owned()
    } else {
        url.to_owned()
    };
    (rule, location)
}

/// Whether a limited link has had its clicks (for `HEAD`, which records
/// none). A failed read answers `false`: a `HEAD` counts nothing either way.
const EXHAUSTED: Statement = Statement {
    sql: "SELECT 1 FROM click_limits WHERE slug = ?1 AND used >= max_clicks",
    operation: "SELECT",
    table: "click_limits",
};

async fn is_exhausted(app: &App, slug: &Slug) -> bool {
    match app
        .sql
        .execute(&EXHAUSTED, vec![slug.as_str().into()])
        .await
    {
        Ok(rows) => !rows.rows.is_empty(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read a click limit");
            false
        }
    }
}

/// Counts `visit` as an orphan visit when it counts (a `GET`).
async fn orphan(app: &App, visit: &Visit<'_>) {
    if visit.counts {
        orphans::count(app.sql.as_ref(), visit.path, app.now()).await;
    }
}

/// Decides the answer to `visit`, recording its click first.
pub async fn follow(app: &App, visit: Visit<'_>) -> Result<Outcome, AppError> {
    let span = tracing::Span::current();
    let outcome = |o: &'static str| span.record(attr::REDIRECT_OUTCOME, o);
    let Some(slug) = visit.slug else {
        outcome("miss");
        orphan(app, &visit).await;
        return Ok(Outcome::Miss);
    };
    let Some(link) = app.links().get(slug).await.map_err(link_store_down)? else {
        outcome("miss");
        orphan(app, &visit).await;
        return Ok(Outcome::Miss);
    };
    let now = app.now();
    if link.is_not_yet_valid(now) {
        outcome("miss");
        orphan(app, &visit).await;
        return Ok(Outcome::Miss);
    }
    if link.is_expired(now) {
        outcome("expired");
        orphan(app, &visit).await;
        return Ok(Outcome::Expired);
    }
    let limited = link.max_clicks.is_some();
    let (rule, location) = {
        let _profiled = crate::profile::stage(crate::profile::Stage::Target);
        target(&link, &visit)
    };
    if !visit.counts {
        if limited && is_exhausted(app, slug).await {
            outcome("exhausted");
            return Ok(Outcome::Exhausted);
        }
        outcome("hit");
        return Ok(Outcome::Redirect { location });
    }

    let visitor = if crate::ablation::skip(crate::ablation::Part::Classify) {
        Visitor {
            referrer_host: Some("news.example.com".to_owned()),
            browser: "Chrome".to_owned(),
            os: "Windows 10".to_owned(),
            is_bot: false,
        }
    } else {
        let _profiled = crate::profile::stage(crate::profile::Stage::Classify);
        Visitor::classify(visit.user_agent, visit.referer)
    };
    span.record(attr::VISITOR_KIND, visitor.kind());
    let ip = clicks::client_ip(
        visit.peer,
        visit.forwarded_for,
        app.settings.trusted_proxy_hops,
    );
    let Some(salt) = app.settings.visitor_salt.as_deref() else {
        // A refused salt (unset, a placeholder, too short) would key a visitor
        // hash anyone could reverse for a known IP: no click row is written,
        // the click is counted as unrecorded instead (`/health` names the
        // salt; the instance logged it once).
        let refused = app.settings.visitor_salt_refused.unwrap_or_default();
        let error = StoreError::new("visitor_salt_refused", refused);
        if limited {
            return Err(limit_unkept(error));
        }
        click_unrecorded(app, &span, &link, visitor.kind(), now, error).await?;
        outcome("hit");
        return Ok(Outcome::Redirect { location });
    };
    let day = clicks::utc_day(now);
    let click = clicks::Click {
        slug,
        at: now,
        visitor: &visitor,
        visitor_hash: if crate::ablation::skip(crate::ablation::Part::Hmac) {
            "0123456789abcdef0123456789abcdef".to_owned()
        } else {
            let _profiled = crate::profile::stage(crate::profile::Stage::Hmac);
            clicks::visitor_hash(salt, ip, visit.user_agent, &day)
        },
        rule,
        limited,
    };
    if app.settings.click_outbox && !limited {
        // The click database is shared over the network: the click is
        // committed on this replica and shipped later (`crate::outbox`).
        match outbox::put(app.unrecorded.as_ref(), &click).await {
            Ok(seq) => {
                span.record(attr::CLICK_OUTCOME, attr::CLICK_OUTBOXED);
                if outbox::due(seq) {
                    ship(app).await;
                }
            }
            Err(e) => click_unrecorded(app, &span, &link, visitor.kind(), now, e).await?,
        }
        outcome("hit");
        return Ok(Outcome::Redirect { location });
    }
    // Answer only once the click is committed: a redirect served is a click
    // recorded, or (the click store failed) a click counted as unrecorded.
    let recorded = {
        let _profiled = crate::profile::stage(crate::profile::Stage::ClickWrite);
        clicks::record(app.sql.as_ref(), &click).await
    };
    match recorded {
        Ok(Some(id)) => {
            span.record(attr::CLICK_OUTCOME, attr::CLICK_RECORDED);
            if rollups::due(id) && !crate::ablation::skip(crate::ablation::Part::Fold) {
                // Keeps the unfolded tail short when nothing reads; a
                // failure only leaves the batch to the next fold.
                if let Err(e) = rollups::fold_batch(app.sql.as_ref()).await {
                    tracing::warn!(error = %e, "rollups not folded after a click");
                }
            }
        }
        Ok(None) if limited => {
            // The limit was reached (or, rarely, the link deleted meanwhile).
            outcome("exhausted");
            orphan(app, &visit).await;
            return Ok(Outcome::Exhausted);
        }
        Ok(None) => {
            // The link was deleted between the read and the click.
            outcome("miss");
            orphan(app, &visit).await;
            return Ok(Outcome::Miss);
        }
        Err(e) if limited => return Err(limit_unkept(e)),
        Err(e) => click_unrecorded(app, &span, &link, visitor.kind(), now, e).await?,
    }
    outcome("hit");
    Ok(Outcome::Redirect { location })
}

/// The due redirect's batch: one batch of the outbox to the click database,
/// then one batch of the rollups folded there. A failure (the click
/// database is down) leaves both to the next due redirect or read, logged.
async fn ship(app: &App) {
    if let Err(e) = outbox::ensure_schema(app).await {
        tracing::warn!(error = %e, "outbox not shipped: the click database's schema is not ready");
        return;
    }
    match outbox::ship_batch(app.unrecorded.as_ref(), app.sql.as_ref()).await {
        Ok(_) => {
            if let Err(e) = rollups::fold_batch(app.sql.as_ref()).await {
                tracing::warn!(error = %e, "rollups not folded after a shipped batch");
            }
        }
        Err(e) => tracing::warn!(error = %e, "outbox not shipped: the clicks wait on this replica"),
    }
}

/// A limited link's click that cannot be recorded is refused (503 naming
/// the click store), never tallied: only a recorded click counts against the
/// limit, so serving it would let the limit be exceeded.
fn limit_unkept(error: StoreError) -> AppError {
    tracing::warn!(error = %error, "click of a limited link not recorded: redirect refused");
    AppError::unavailable(Store::Clicks, error)
}

/// The click store refused the click: the redirect is served anyway, and the
/// click is counted in the unrecorded tally (`/metrics`, the link's
/// `unrecorded_clicks`), with a warning event on the request span (the
/// failed SQLite span is the error span). `/health` reports the store as failing.
///
/// A redirect is served only when its click is counted somewhere: when the
/// tally fails too (both databases down, e.g. while Spin shuts down: "channel
/// closed"), the answer is 503 naming the click store, so that served =
/// recorded + unrecorded always holds.
async fn click_unrecorded(
    app: &App,
    span: &tracing::Span,
    link: &Link,
    kind: &'static str,
    now: OffsetDateTime,
    error: StoreError,
) -> Result<(), AppError> {
    // A warning, not an error: the request itself succeeded (its span keeps
    // an unset status); the failed SQLite span below it is the error span.
    tracing::warn!(error = %error, "click not recorded: counted as unrecorded");
    let at_ms = clicks::unix_ms(now);
    let tallied = unrecorded::tally(
        app.unrecorded.as_ref(),
        link.slug.as_str(),
        &links::rfc3339(link.created_at),
        kind,
        at_ms,
    )
    .await;
    if let Err(e) = tallied {
        // Neither recorded nor counted: refuse the redirect (the error
        // mapping logs the click store's error; this logs the tally's).
        tracing::error!(error = %e, "the unrecorded tally failed too: redirect refused");
        return Err(AppError::unavailable(
            Store::Clicks,
            StoreError::new(error.kind, format!("{error}; unrecorded tally: {e}")),
        ));
    }
    span.record(attr::CLICK_OUTCOME, attr::CLICK_UNRECORDED);
    Ok(())
}

/// A failed link read in a redirect: the link store is down (503, naming it).
fn link_store_down(e: links::LinkError) -> AppError {
    match e {
        links::LinkError::Store(source) => AppError::unavailable(Store::Links, source),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";

    fn visit<'a>(user_agent: &'a str, query: Option<&'a str>) -> Visit<'a> {
        Visit {
            slug: None,
            counts: true,
            user_agent,
            referer: None,
            forwarded_for: &[],
            peer: None,
            path: "/x",
            query,
            accept_language: None,
        }
    }

    fn link(rules: Vec<rules::Rule>, forward_query: bool) -> Link {
        let mut link: Link = serde_json::from_str(
            r#"{"slug":"abc","url":"https://e.com/base","created_at":"2030-01-01T00:00:00Z","expires_at":null}"#,
        )
        .unwrap();
        link.rules = rules;
        link.forward_query = forward_query;
        link
    }

    #[test]
    fn the_target_is_the_first_matching_rule_or_the_links_url_with_the_query_appended() {
        let android = rules::Rule {
            url: "https://e.com/android".into(),
            device: Some(rules::DeviceCondition::Android),
            language: None,
            query: Default::default(),
        };
        let ruled = link(vec![android], true);
        assert_eq!(
            target(&ruled, &visit(ANDROID, Some("a=1"))),
            (Some(0), "https://e.com/android?a=1".to_owned())
        );
        assert_eq!(
            target(&ruled, &visit("curl/8", None)),
            (None, "https://e.com/base".to_owned())
        );
        let plain = link(Vec::new(), false);
        assert_eq!(
            target(&plain, &visit(ANDROID, Some("a=1"))),
            (None, "https://e.com/base".to_owned())
        );
    }
}
