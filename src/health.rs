//! Health: every store probed the way the product uses it, and the
//! variables the app refuses to run with. `/health` answers the report
//! ([`check`]); `/metrics` uses the same probes for `shortener_store_up`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::names;
use crate::storage::{Statement, StoreError};

/// [`Health::status`] when every store answered and nothing is refused.
pub const OK: &str = "ok";

/// [`Health::status`] of a replica with a click outbox whose click database
/// is down: it serves redirects (200), their clicks waiting in its outbox.
pub const DEGRADED: &str = "degraded";

/// The key the key-value probe reads (it never writes).
const PROBE_KEY: &str = "health:probe";

/// The probe of the click database: a real one-row write, so a lock held
/// elsewhere, a read-only file or a full disk fail it like a click.
pub const WRITE_PROBE: Statement = Statement {
    sql: "INSERT INTO health_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    operation: "INSERT",
    table: "health_probe",
};

/// The probe of the tally database (a read: the tally is written only when
/// clicks are lost).
pub const TALLY_PROBE: Statement = Statement {
    sql: "SELECT count(*) FROM unrecorded_clicks WHERE 0",
    operation: "SELECT",
    table: "unrecorded_clicks",
};

/// The answer of `/health`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` when every store answered and no variable is refused (200);
    /// `degraded` (200) with a click outbox when only the click database
    /// failed; else `unavailable` when a store failed, `misconfigured` when
    /// only a variable is refused (both with a 503).
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = "ok"))]
    pub status: String,
    /// Per store (`kv`, `sqlite`: the click database, written to by the
    /// probe, `sqlite_unrecorded`: the unrecorded-clicks tally): `ok` or `error`.
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = json!({"kv": "ok", "sqlite": "ok", "sqlite_unrecorded": "ok"})))]
    pub checks: BTreeMap<String, String>,
    /// Variables the app refuses to run with, each with the reason (absent
    /// when none): `visitor_salt` when it is unset, a placeholder or shorter
    /// than 32 bytes (redirects are served, their clicks counted as
    /// unrecorded). Never the value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(not(target_arch = "wasm32"), schema(example = json!({"visitor_salt": "visitor_salt is a placeholder (it starts with `change-me`): ..."})))]
    pub refused: BTreeMap<String, String>,
    /// With a click outbox (`click_outbox`): this replica's clicks waiting
    /// for the click database. While that database is down the replica
    /// still serves redirects (their clicks wait here): `status` is then
    /// `degraded`, with a 200, so that proxies and orchestrators keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<crate::outbox::Lag>,
}

/// A key-value read.
pub async fn probe_kv(app: &App) -> Result<(), StoreError> {
    app.kv.get(PROBE_KEY).await.map(|_| ())
}

/// The one-row write to the click database.
pub async fn probe_clicks(app: &App) -> Result<(), StoreError> {
    app.sql
        .execute(&WRITE_PROBE, vec![app.now_ms().into()])
        .await
        .map(|_| ())
}

/// A read of the tally.
pub async fn probe_tally(app: &App) -> Result<(), StoreError> {
    app.unrecorded
        .execute(&TALLY_PROBE, vec![])
        .await
        .map(|_| ())
}

/// Probes every store and the refused variables; each failure is logged
/// with its cause, which the report never carries.
pub async fn check(app: &App) -> Health {
    let probes = [
        ("kv", probe_kv(app).await),
        ("sqlite", probe_clicks(app).await),
        ("sqlite_unrecorded", probe_tally(app).await),
    ];
    let mut checks = BTreeMap::new();
    let mut healthy = true;
    for (name, result) in probes {
        if let Err(e) = &result {
            eprintln!("shortener: health: {name} failed: {e}");
            healthy = false;
        }
        let word = if result.is_ok() { "ok" } else { "error" };
        checks.insert(name.to_owned(), word.to_owned());
    }
    let mut refused = BTreeMap::new();
    if let Some(reason) = app.settings.visitor_salt_refused {
        eprintln!("shortener: health: {reason}");
        refused.insert(names::VISITOR_SALT.to_owned(), reason.to_owned());
    }
    let outbox = crate::outbox::lag(app).await;
    // With an outbox, only the click database down still serves redirects.
    let only_clicks_down = outbox.is_some()
        && checks
            .iter()
            .all(|(name, word)| name == "sqlite" || word == "ok");
    let status = match (healthy, refused.is_empty()) {
        (true, true) => OK,
        (false, _) if only_clicks_down && refused.is_empty() => DEGRADED,
        (false, _) => "unavailable",
        (true, false) => "misconfigured",
    };
    Health {
        status: status.to_owned(),
        checks,
        refused,
        outbox,
    }
}
