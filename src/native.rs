//! The native test host: an in-memory key-value store and a real SQLite
//! (rusqlite) that runs exactly the SQL text the component sends to Spin.
//!
//! [`SqliteStore`] opens its connection the way Spin's SQLite host does
//! (SQLite defaults, 5 s busy timeout); the core then applies the same
//! pragmas it applies in the component. Several stores on one file model
//! several Spin instances.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::storage::{KvStore, Rows, SqlStore, SqlValue, Statement, StoreError};

/// A key-value store in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryKv {
    map: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryKv {
    /// Makes every later call fail (to test error paths) or work again.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every key held (for tests that check what was left behind).
    pub fn keys(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::new("io", "key-value store unavailable (test)"))
        } else {
            Ok(())
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        Ok(self.map().get(key).cloned())
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.map().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.map().remove(key);
        Ok(())
    }
}

/// One SQLite connection (like one Spin instance's).
pub struct SqliteStore {
    conn: Mutex<rusqlite::Connection>,
    failing: std::sync::atomic::AtomicBool,
    losing_answers: std::sync::atomic::AtomicBool,
}

impl SqliteStore {
    /// Opens (creating) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(|e| StoreError::new("open", e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| StoreError::new("open", e))?;
        Ok(Self {
            conn: Mutex::new(conn),
            failing: std::sync::atomic::AtomicBool::new(false),
            losing_answers: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Makes every later statement fail (to test error paths) or work again.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every later statement run (and commit) and then fail as if its
    /// answer were lost on the way back, as a remote database's transport
    /// can fail after the commit (libSQL over HTTP), or work normally again.
    pub fn set_losing_answers(&self, losing: bool) {
        self.losing_answers
            .store(losing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `statement` synchronously.
    pub fn execute_blocking(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("io", "database unavailable (test)"));
        }
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached(statement.sql)
            .map_err(|e| StoreError::new(error_kind(&e), e))?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(to_sql)))
            .map_err(|e| StoreError::new(error_kind(&e), e))?;
        let mut out = Rows::default();
        while let Some(row) = rows
            .next()
            .map_err(|e| StoreError::new(error_kind(&e), e))?
        {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                let v = row
                    .get_ref(i)
                    .map_err(|e| StoreError::new(error_kind(&e), e))?;
                values.push(from_sql(v));
            }
            out.rows.push(values);
        }
        if self
            .losing_answers
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::new("transport", "the answer was lost (test)"));
        }
        Ok(out)
    }
}

fn error_kind(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => "busy",
        Some(rusqlite::ErrorCode::ConstraintViolation) => "constraint",
        Some(_) => "sqlite",
        None => "sqlite",
    }
}

fn to_sql(v: &SqlValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(*i),
        SqlValue::Real(f) => Value::Real(*f),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Blob(b) => Value::Blob(b.clone()),
    }
}

fn from_sql(v: rusqlite::types::ValueRef<'_>) -> SqlValue {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

#[async_trait]
impl SqlStore for SqliteStore {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        self.execute_blocking(statement, params)
    }
}

/// The whole app over native stores, migrated: an in-memory key-value
/// store, the click database and the tally as SQLite files in a folder the
/// caller owns, a clock the caller can move. The one app builder of the
/// native tests, the property suite, the benchmarks and the OpenAPI tests.
pub struct TestHost {
    /// The app (its router: [`TestHost::router`]).
    pub app: crate::App,
    /// The link store.
    pub kv: MemoryKv,
    /// The click database.
    pub sql: Arc<SqliteStore>,
    /// The unrecorded-clicks tally.
    pub unrecorded: Arc<SqliteStore>,
    /// The click database's file.
    pub db_path: std::path::PathBuf,
    /// What the app's clock answers.
    pub now: Arc<Mutex<time::OffsetDateTime>>,
}

impl TestHost {
    /// Builds and migrates the app with `vars` as its Spin variables, its
    /// databases in `dir` (`clicks.db`, `unrecorded.db`) and the clock at
    /// `now`.
    pub async fn start(
        dir: &Path,
        vars: &[(&str, &str)],
        now: time::OffsetDateTime,
    ) -> Result<Self, String> {
        let settings = crate::config::Settings::from_lookup(|k| {
            vars.iter()
                .rev()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .map_err(|e| e.to_string())?;
        let db_path = dir.join("clicks.db");
        let sql = Arc::new(SqliteStore::open(&db_path).map_err(|e| e.to_string())?);
        let unrecorded =
            Arc::new(SqliteStore::open(dir.join("unrecorded.db")).map_err(|e| e.to_string())?);
        let kv = MemoryKv::default();
        let now = Arc::new(Mutex::new(now));
        let clock_now = now.clone();
        let app = crate::build_app(
            kv.clone(),
            sql.clone(),
            unrecorded.clone(),
            settings,
            Arc::new(move || *clock_now.lock().unwrap_or_else(|p| p.into_inner())),
        );
        crate::migrate(&app).await.map_err(|e| e.to_string())?;
        Ok(Self {
            app,
            kv,
            sql,
            unrecorded,
            db_path,
            now,
        })
    }

    /// The app's router.
    pub fn router(&self) -> axum::Router {
        crate::router(self.app.clone())
    }

    /// Moves the clock to `t`.
    pub fn set_now(&self, t: time::OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}
