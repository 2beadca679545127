//! The app's shared state: the stores, settings and clock that every
//! handler and use case takes, and how the host assembles them.
//!
//! The host (the Spin shell, or the native test host) opens the stores and
//! calls [`build_app`] once per instance, then [`migrate`]; the router
//! ([`crate::router`]) is built over the [`App`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use crate::config::Settings;
use crate::links::{self, Links};
use crate::migrations;
use crate::storage::{KvStore, SqlStore, StoreError, Traced};
use crate::unrecorded;

/// The label of the key-value store and of the SQLite database.
pub const STORE_LABEL: &str = "default";

/// A source of the current time (swappable in tests).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The socket peer of a request, put into the request's extensions by the
/// host (Spin's `spin-client-addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Everything a request handler needs.
#[derive(Clone)]
pub struct App {
    /// Links (traced).
    pub kv: Arc<dyn KvStore>,
    /// Clicks and registry (traced).
    pub sql: Arc<dyn SqlStore>,
    /// The tally of clicks served but not recorded (traced; a second
    /// database, see [`crate::unrecorded`]).
    pub unrecorded: Arc<dyn SqlStore>,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Now.
    pub clock: Clock,
    /// Random slug candidates.
    pub slugs: links::SlugSource,
    /// Whether [`migrate`] has succeeded on this instance's click database
    /// (see [`App::schema_ready`]).
    pub schema: Arc<AtomicBool>,
}

impl App {
    /// The link store over this app's stores.
    pub fn links(&self) -> Links<'_> {
        Links {
            kv: self.kv.as_ref(),
            sql: self.sql.as_ref(),
            slugs: &self.slugs,
        }
    }

    /// Now, by the app's clock.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Now, in Unix milliseconds (as clicks store their time).
    pub fn now_ms(&self) -> i64 {
        crate::clicks::unix_ms(self.now())
    }

    /// Whether the click database's schema is known to be in place. A host
    /// keeps the router of an instance whose click database was unreachable
    /// at start when clicks go through the outbox (redirects do not need
    /// it); that instance migrates before its first ship.
    pub fn schema_ready(&self) -> bool {
        self.schema.load(Ordering::Acquire)
    }

    /// Records that [`migrate`] succeeded.
    pub fn set_schema_ready(&self) {
        self.schema.store(true, Ordering::Release);
    }
}

/// Builds the app over its stores (links, clicks, and the tally of clicks
/// that could not be recorded), wrapping each in its tracing layer.
pub fn build_app(
    kv: impl KvStore + 'static,
    sql: impl SqlStore + 'static,
    unrecorded: impl SqlStore + 'static,
    settings: Settings,
    clock: Clock,
) -> App {
    let tally = unrecorded::Tally::new(
        Traced::new(unrecorded, unrecorded::TALLY_LABEL),
        settings.sqlite_busy_timeout_ms,
    );
    App {
        kv: Arc::new(Traced::new(kv, STORE_LABEL)),
        sql: Arc::new(Traced::new(sql, STORE_LABEL)),
        unrecorded: Arc::new(tally),
        settings: Arc::new(settings),
        clock,
        slugs: links::random_slugs(),
        schema: Arc::new(AtomicBool::new(false)),
    }
}

/// Applies the busy timeout and the schema (pragmas and pending migrations)
/// to the click database through the app's traced store. Called once per
/// instance, on first use; the tally database sets itself up on its own
/// first use ([`unrecorded::Tally`]).
pub async fn migrate(app: &App) -> Result<i64, StoreError> {
    let now = app.now().unix_timestamp();
    let timeout = unrecorded::busy_timeout(app.settings.sqlite_busy_timeout_ms);
    migrations::apply_pragma(app.sql.as_ref(), &timeout).await;
    let version = migrations::run(app.sql.as_ref(), now).await?;
    app.set_schema_ready();
    Ok(version)
}

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}
