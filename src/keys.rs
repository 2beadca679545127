//! API keys with roles: who may call the API, and for what.
//!
//! A key is `shk_<id>_<secret>`: a 12-character base62 id, by which it is
//! found, and a 32-character base62 secret (about 190 bits). Only the
//! SHA-256 of the whole key is stored (`api_keys` in the click database), so
//! the key is shown once, when it is made; a high-entropy key needs no slow
//! hash. The presented key's digest is compared with the stored one in
//! constant time. A revoked key's row is deleted, so it fails on every
//! replica at its next request; nothing is cached.
//!
//! Roles are ordered: `viewer` (every read under `/api`) < `editor` (plus
//! creating, changing and deleting links) < `admin` (plus keys). The
//! `admin_token` variable stays the bootstrap admin key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::ErrorCode;
use crate::links::{self, random_base62};
use crate::storage::{SqlStore, SqlValue, Statement, StoreError};

/// What a key may do; each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every `GET` under `/api`.
    Viewer,
    /// Viewer, plus creating, editing and deleting links.
    Editor,
    /// Editor, plus keys.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// Its name on the wire and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The role named `raw` (exactly).
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or(KeyError::InvalidRole)
    }
}

/// A refused key request.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A name that is empty, too long or not printable.
    #[error("`name` must be 1 to {MAX_NAME_CHARS} printable characters.")]
    InvalidName,
    /// A role other than the three.
    #[error("`role` must be `viewer`, `editor` or `admin`.")]
    InvalidRole,
    /// A bad `expires_at`.
    #[error(transparent)]
    Expiry(#[from] links::LinkError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeyError {
    /// The API's `error.code` of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            KeyError::InvalidName => ErrorCode::InvalidName,
            KeyError::InvalidRole => ErrorCode::InvalidRole,
            KeyError::Expiry(e) => e.code(),
            KeyError::Store(_) => ErrorCode::Internal,
        }
    }
}

/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// What every key starts with (tells a key from the `admin_token`).
pub const PREFIX: &str = "shk_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 32;
/// `last_used_at` is written at most this often per key (seconds).
pub const LAST_USED_EVERY_SECS: i64 = 60;

/// A key's name: 1 to [`MAX_NAME_CHARS`] characters, no control characters,
/// surrounding white space dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(KeyError::InvalidName);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// Its id (the part after `shk_`, before the secret).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// RFC 3339.
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime))]
    pub created_at: String,
    /// RFC 3339; `null`: never expires.
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime, required = true))]
    pub expires_at: Option<String>,
    /// RFC 3339, to the minute; `null`: never used.
    #[cfg_attr(not(target_arch = "wasm32"), schema(format = DateTime, required = true))]
    pub last_used_at: Option<String>,
}

/// A key that presented itself: its id and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's id, or `admin_token` for the bootstrap token.
    pub key_id: String,
    /// What it may do.
    pub role: Role,
}

/// Why a presented key was refused (each a 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such key, or a wrong secret.
    Unknown,
    /// Past its `expires_at`.
    Expired,
}

const INSERT: Statement = Statement {
    sql: "INSERT INTO api_keys (id, name, role, key_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    operation: "INSERT",
    table: "api_keys",
};
const LIST: Statement = Statement {
    sql: "SELECT id, name, role, created_at, expires_at, last_used_at FROM api_keys ORDER BY created_at, id",
    operation: "SELECT",
    table: "api_keys",
};
const REVOKE: Statement = Statement {
    sql: "DELETE FROM api_keys WHERE id = ?1 RETURNING id",
    operation: "DELETE",
    table: "api_keys",
};
const FIND: Statement = Statement {
    sql: "SELECT role, key_hash, expires_at, last_used_at FROM api_keys WHERE id = ?1",
    operation: "SELECT",
    table: "api_keys",
};
const TOUCH: Statement = Statement {
    sql: "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
    operation: "UPDATE",
    table: "api_keys",
};

fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of a presented key, if it has a key's shape.
fn id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    (id.len() == ID_LEN && secret.len() == SECRET_LEN && base62(id) && base62(secret)).then_some(id)
}

/// Whether `presented` looks like a key (rather than the `admin_token`).
pub fn is_key(presented: &str) -> bool {
    presented.starts_with(PREFIX)
}

/// Makes a key: stores its digest and returns its listing and the key,
/// which is never shown again.
pub async fn create(
    sql: &dyn SqlStore,
    name: &KeyName,
    role: Role,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(KeyInfo, String), KeyError> {
    let (id, key) = {
        let mut rng = rand::rng();
        let id = random_base62(ID_LEN, &mut rng);
        let key = format!("{PREFIX}{id}_{}", random_base62(SECRET_LEN, &mut rng));
        (id, key)
    };
    let created = now.replace_nanosecond(0).unwrap_or(now);
    sql.execute(
        &INSERT,
        vec![
            id.clone().into(),
            name.as_str().into(),
            role.as_str().into(),
            digest_hex(&key).into(),
            created.unix_timestamp().into(),
            expires_at.map(|t| t.unix_timestamp()).into(),
        ],
    )
    .await?;
    let info = KeyInfo {
        id,
        name: name.as_str().to_owned(),
        role,
        created_at: links::rfc3339(created),
        expires_at: expires_at.map(links::rfc3339),
        last_used_at: None,
    };
    Ok((info, key))
}

fn instant(v: Option<&SqlValue>) -> Option<String> {
    v.and_then(SqlValue::as_i64)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map(links::rfc3339)
}

/// Every key, oldest first.
pub async fn list(sql: &dyn SqlStore) -> Result<Vec<KeyInfo>, StoreError> {
    let rows = sql.execute(&LIST, vec![]).await?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|row| {
            Some(KeyInfo {
                id: row.first()?.as_str()?.to_owned(),
                name: row.get(1)?.as_str()?.to_owned(),
                role: Role::parse(row.get(2)?.as_str()?).ok()?,
                created_at: instant(row.get(3))?,
                expires_at: instant(row.get(4)),
                last_used_at: instant(row.get(5)),
            })
        })
        .collect())
}

/// Revokes the key `id`; `false` when there is none.
pub async fn revoke(sql: &dyn SqlStore, id: &str) -> Result<bool, StoreError> {
    Ok(!sql.execute(&REVOKE, vec![id.into()]).await?.rows.is_empty())
}

/// The caller a presented key stands for, or why it is refused. Notes the
/// use (at most once a minute per key).
pub async fn authenticate(
    sql: &dyn SqlStore,
    presented: &str,
    now: OffsetDateTime,
) -> Result<Result<Caller, Refusal>, StoreError> {
    let Some(id) = id_of(presented) else {
        return Ok(Err(Refusal::Unknown));
    };
    let rows = sql.execute(&FIND, vec![id.into()]).await?;
    let Some(row) = rows.rows.first() else {
        return Ok(Err(Refusal::Unknown));
    };
    let stored = row.get(1).and_then(SqlValue::as_str).unwrap_or_default();
    let digest = digest_hex(presented);
    if !bool::from(digest.as_bytes().ct_eq(stored.as_bytes())) {
        return Ok(Err(Refusal::Unknown));
    }
    let Some(role) = row
        .first()
        .and_then(SqlValue::as_str)
        .and_then(|r| Role::parse(r).ok())
    else {
        return Ok(Err(Refusal::Unknown));
    };
    let now_unix = now.unix_timestamp();
    if row
        .get(2)
        .and_then(SqlValue::as_i64)
        .is_some_and(|expires| now_unix >= expires)
    {
        return Ok(Err(Refusal::Expired));
    }
    let last_used = row.get(3).and_then(SqlValue::as_i64).unwrap_or(i64::MIN);
    if now_unix.saturating_sub(last_used) >= LAST_USED_EVERY_SECS {
        // Best effort: a failed note of the use does not refuse the call.
        if let Err(e) = sql.execute(&TOUCH, vec![id.into(), now_unix.into()]).await {
            eprintln!("shortener: key {id}: last_used_at not written: {e}");
        }
    }
    Ok(Ok(Caller {
        key_id: id.to_owned(),
        role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_only_their_own_names() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        for bad in ["", "Admin", "owner", " viewer"] {
            assert!(Role::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(KeyName::parse("  grafana ").unwrap().as_str(), "grafana");
        assert!(KeyName::parse(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert!(KeyName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_key_of_the_right_shape_has_an_id() {
        let mut rng = rand::rng();
        let id = random_base62(ID_LEN, &mut rng);
        let key = format!("{PREFIX}{id}_{}", random_base62(SECRET_LEN, &mut rng));
        assert_eq!(id_of(&key), Some(id.as_str()));
        for bad in [
            "shk_",
            "shk_abc_def",
            &format!("{PREFIX}{id}"),
            &format!("{PREFIX}{id}_{}", "x".repeat(SECRET_LEN - 1)),
            &format!("{PREFIX}{id}_{}!", "x".repeat(SECRET_LEN - 1)),
            &key.replacen(PREFIX, "shx_", 1),
        ] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
    }
}
