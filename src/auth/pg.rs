//! Keys kept in Postgres (`api_keys`): created, listed and revoked by `ailogs api-key`, and
//! reloaded by every serving process.

use std::sync::Arc;
use std::time::Duration;

use ailogs_pipeline::scope::Scope;
use sqlx::{PgPool, Row};

use super::{KeyStore, Principal, StoredKey};
use crate::config::{KeyLimits, Role};

/// One row of `ailogs api-key list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    /// Empty: every workspace.
    pub workspaces: Vec<String>,
    pub limits: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Stores a new key's hash; returns its id.
pub async fn insert(
    pool: &PgPool,
    name: &str,
    sha256: &str,
    role: Role,
    workspaces: &[String],
    limits: &KeyLimits,
) -> Result<i64, sqlx::Error> {
    let limits = serde_json::to_value(limits).unwrap_or_default();
    sqlx::query_scalar(
        "INSERT INTO api_keys (name, key_hash, role, workspaces, limits) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(sha256)
    .bind(role.as_str())
    .bind(workspaces)
    .bind(limits)
    .fetch_one(pool)
    .await
}

/// Every key, newest first, revoked ones included.
pub async fn list(pool: &PgPool) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, name, role, workspaces, limits, created_at, revoked_at FROM api_keys ORDER BY id DESC")
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                workspaces: r.try_get("workspaces")?,
                limits: r.try_get("limits")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes the key with this id, or every active key with this name; how many were revoked.
pub async fn revoke(pool: &PgPool, id_or_name: &str) -> Result<u64, sqlx::Error> {
    let done = match id_or_name.parse::<i64>() {
        Ok(id) => {
            sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .execute(pool)
                .await?
        }
        Err(_) => {
            sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL")
                .bind(id_or_name)
                .execute(pool)
                .await?
        }
    };
    Ok(done.rows_affected())
}

/// The active keys, as the key store holds them.
pub async fn active(pool: &PgPool, unscoped: bool) -> Result<Vec<StoredKey>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, name, key_hash, role, workspaces, limits FROM api_keys WHERE revoked_at IS NULL")
            .fetch_all(pool)
            .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        let hash: String = r.try_get("key_hash")?;
        let mut sha256 = [0u8; 32];
        if hex::decode_to_slice(hash.trim(), &mut sha256).is_err() {
            tracing::warn!(
                id = r.try_get::<i64, _>("id").unwrap_or_default(),
                "api_keys row with a malformed key_hash; skipped"
            );
            continue;
        }
        let role: String = r.try_get("role")?;
        let workspaces: Vec<String> = r.try_get("workspaces")?;
        let limits: serde_json::Value = r.try_get("limits")?;
        let name: String = r.try_get("name")?;
        keys.push(StoredKey {
            sha256,
            principal: Principal {
                name: Arc::from(name.as_str()),
                key_id: Some(r.try_get("id")?),
                // The table's CHECK keeps roles to the three names; an unknown one reads least.
                role: Role::parse(&role).unwrap_or(Role::Ingest),
                scope: Scope::of(&workspaces, unscoped),
                limits: serde_json::from_value(limits).unwrap_or_default(),
            },
        });
    }
    Ok(keys)
}

/// Reloads the stored keys every `every` until the process ends. A failed read keeps the
/// keys last read (a Postgres outage must not lock every key holder out), and is logged.
pub async fn reload_forever(pool: PgPool, store: Arc<KeyStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match active(&pool, store.scoped_keys_see_unscoped()).await {
            Ok(keys) => store.replace_stored(keys),
            Err(e) => tracing::warn!(error = %e, "reloading api keys from Postgres failed; keeping the keys last read"),
        }
    }
}
