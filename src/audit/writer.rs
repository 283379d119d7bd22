//! Inserts audit rows into `ai_query_history` in batches: one statement per batch of up to
//! 500 rows, so a burst of queries costs Postgres a few round trips, not one each.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;

use super::AuditEntry;

const BATCH: usize = 500;

pub async fn run(pool: PgPool, mut rx: mpsc::Receiver<AuditEntry>, metrics: Arc<crate::metrics::Metrics>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len() as u64;
        match insert(&pool, &batch).await {
            Ok(()) => metrics.audit_rows.with_label_values(&["written"]).inc_by(n),
            Err(e) => {
                metrics.audit_rows.with_label_values(&["failed"]).inc_by(n);
                tracing::warn!(error = %e, rows = n, "writing audit rows to Postgres failed; they are in the in-memory log only");
            }
        }
        batch.clear();
    }
}

pub async fn insert(pool: &PgPool, rows: &[AuditEntry]) -> Result<(), sqlx::Error> {
    let mut q = sqlx::QueryBuilder::new(
        "INSERT INTO ai_query_history (at, api_key_id, key_name, method, endpoint, tool, scope, params, status, duration_ms, returned) ",
    );
    q.push_values(rows, |mut b, e| {
        b.push_bind(e.at)
            .push_bind(e.key_id)
            .push_bind(&e.key_name)
            .push_bind(&e.method)
            .push_bind(&e.endpoint)
            .push_bind(&e.tool)
            .push_bind(&e.scope)
            .push_bind(&e.params)
            .push_bind(i32::from(e.status))
            .push_bind(e.duration_ms)
            .push_bind(e.returned.map(|r| i32::try_from(r).unwrap_or(i32::MAX)));
    });
    q.build().execute(pool).await.map(|_| ())
}

/// The newest `limit` rows, optionally of one key holder.
pub async fn recent(pool: &PgPool, limit: i64, key_name: Option<&str>) -> Result<Vec<AuditEntry>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT at, api_key_id, key_name, method, endpoint, tool, scope, params, status, duration_ms, returned
         FROM ai_query_history WHERE ($2::text IS NULL OR key_name = $2) ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .bind(key_name)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                key_id: r.try_get("api_key_id")?,
                key_name: r.try_get("key_name")?,
                method: r.try_get("method")?,
                endpoint: r.try_get("endpoint")?,
                tool: r.try_get("tool")?,
                scope: r.try_get("scope")?,
                params: r.try_get("params")?,
                status: u16::try_from(r.try_get::<i32, _>("status")?).unwrap_or(0),
                duration_ms: r.try_get("duration_ms")?,
                returned: r.try_get::<Option<i32>, _>("returned")?.map(|n| n.max(0) as u64),
            })
        })
        .collect()
}
