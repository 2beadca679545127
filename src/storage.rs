//! The storage ports: the only two things the core asks of its host.
//!
//! * [`KvStore`]: a key-value store (Spin's `default` key-value store in the
//!   component, an in-memory map natively). Links live here.
//! * [`SqlStore`]: one SQL statement at a time against a SQLite database
//!   (Spin's `default` SQLite database in the component, rusqlite natively).
//!   Clicks, rollups and the link registry live here. Every statement the core
//!   sends is a [`Statement`] constant, so the native tests execute exactly the
//!   SQL text the component sends.
//!
//! [`Traced`] wraps either port so that every call runs inside exactly one
//! client span (see [`crate::telemetry`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;

use crate::telemetry::{self, attr};

/// A storage failure. The message is for logs only, never for clients.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} error: {message}")]
pub struct StoreError {
    /// A short, low-cardinality error type (`error.type` on the span).
    pub kind: &'static str,
    /// What the host said.
    pub message: String,
}

impl StoreError {
    /// A new error of `kind` with the host's message.
    pub fn new(kind: &'static str, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    /// The kind the hosts give a call that did not answer within its bound.
    pub const TIMEOUT: &'static str = "timeout";

    /// Whether the store did not answer within its bound: the request may
    /// succeed if tried again.
    pub fn timed_out(&self) -> bool {
        self.kind == Self::TIMEOUT
    }
}

/// A key-value store.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` under `key`, replacing any earlier value.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key` (no error when absent).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// One SQLite value, as Spin's `spin:sqlite` interface carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl SqlValue {
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}
impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Integer(i64::from(v))
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// A SQL statement the core sends, with what its span says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// The exact SQL text (one statement; parameters as `?N`).
    pub sql: &'static str,
    /// `db.operation.name`: `INSERT`, `SELECT`, `DELETE`, `PRAGMA`, ...
    pub operation: &'static str,
    /// `db.collection.name`: the main table, or `""` when there is none.
    pub table: &'static str,
}

impl Statement {
    /// A `PRAGMA` (no table).
    pub const fn pragma(sql: &'static str) -> Self {
        Self {
            sql,
            operation: "PRAGMA",
            table: "",
        }
    }
}

/// The rows a statement returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// One vector of values per row, in column order.
    pub rows: Vec<Vec<SqlValue>>,
}

impl Rows {
    /// The first column of the first row as an integer (0 when absent or NULL).
    pub fn scalar_i64(&self) -> i64 {
        self.rows
            .first()
            .and_then(|r| r.first())
            .and_then(SqlValue::as_i64)
            .unwrap_or(0)
    }
}

/// A SQLite database that runs one statement per call.
#[async_trait]
pub trait SqlStore: Send + Sync {
    /// Runs `statement` with `params` (bound to `?1`, `?2`, ...) as one
    /// atomic statement and returns its rows.
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError>;
}

/// Wraps a store so that every call runs inside exactly one client span.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    namespace: &'static str,
}

impl<S> Traced<S> {
    /// Traces calls to `inner`; `namespace` is the store / database label
    /// (`db.namespace`).
    pub fn new(inner: S, namespace: &'static str) -> Self {
        Self { inner, namespace }
    }
}

async fn traced<T>(
    span: tracing::Span,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        telemetry::fail(&span, e.kind, Some(&e.message));
    }
    result
}

fn kv_span(op: &'static str, namespace: &'static str) -> tracing::Span {
    tracing::info_span!(
        "kv",
        otel.name = op,
        otel.kind = "client",
        { attr::DB_SYSTEM_NAME } = attr::DB_SYSTEM_KV,
        { attr::DB_OPERATION_NAME } = op.trim_start_matches("kv."),
        { attr::DB_NAMESPACE } = namespace,
        { attr::ERROR_TYPE } = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

#[async_trait]
impl<K: KvStore> KvStore for Traced<K> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if crate::ablation::skip(crate::ablation::Part::KvSpan) {
            return self.inner.get(key).await;
        }
        traced(kv_span("kv.get", self.namespace), self.inner.get(key)).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        traced(
            kv_span("kv.set", self.namespace),
            self.inner.set(key, value),
        )
        .await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        traced(kv_span("kv.delete", self.namespace), self.inner.delete(key)).await
    }
}

#[async_trait]
impl<S: SqlStore> SqlStore for Traced<S> {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        if crate::ablation::skip(crate::ablation::Part::SqlSpan) {
            return self.inner.execute(statement, params).await;
        }
        // The statement text is a constant with `?N` placeholders: parameter
        // values (which may carry personal data) never reach the span.
        let span = tracing::info_span!(
            "sqlite",
            otel.name = "sqlite.execute",
            otel.kind = "client",
            { attr::DB_SYSTEM_NAME } = attr::DB_SYSTEM_SQLITE,
            { attr::DB_OPERATION_NAME } = statement.operation,
            { attr::DB_NAMESPACE } = self.namespace,
            { attr::DB_COLLECTION_NAME } = tracing::field::Empty,
            { attr::DB_QUERY_TEXT } = statement.sql,
            { attr::ERROR_TYPE } = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        if !statement.table.is_empty() {
            span.record(attr::DB_COLLECTION_NAME, statement.table);
        }
        traced(span, self.inner.execute(statement, params)).await
    }
}

#[async_trait]
impl<T: KvStore + ?Sized> KvStore for Arc<T> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
}

#[async_trait]
impl<T: SqlStore + ?Sized> SqlStore for Arc<T> {
    async fn execute(
        &self,
        statement: &Statement,
        params: Vec<SqlValue>,
    ) -> Result<Rows, StoreError> {
        (**self).execute(statement, params).await
    }
}
