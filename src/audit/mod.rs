//! The query audit: every API and MCP call made with a key (who, which route or tool, which
//! workspaces, the parameters without secrets, status, time, rows returned). Recording is a
//! push onto a bounded in-memory log and, with Postgres, a `try_send` to a writer that inserts
//! in batches, so auditing never makes a query wait; a full channel drops the row and counts it.

pub mod commands;
pub mod writer;

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub key_name: String,
    pub key_id: Option<i64>,
    pub method: String,
    /// The matched route (`/api/v1/ai_logs/workspace/{id}/summary`), not the raw path.
    pub endpoint: String,
    /// The MCP tool when the call came from one.
    pub tool: Option<String>,
    /// `["*"]` for every workspace.
    pub scope: Vec<String>,
    /// The query string as an object, without secrets (`api_key`).
    pub params: serde_json::Value,
    pub status: u16,
    pub duration_ms: f64,
    pub returned: Option<u64>,
}

/// Rows a handler returned, set on its response for the audit.
#[derive(Debug, Clone, Copy)]
pub struct Returned(pub u64);

/// A request body's parameters (export's filters), set on the response for the audit; they
/// join the query string's in the row.
#[derive(Debug, Clone)]
pub struct BodyParams(pub serde_json::Value);

/// Rows kept in memory (embedded mode's whole audit log; with Postgres, a recent cache).
const MEMORY_ROWS: usize = 10_000;
/// Rows waiting for the Postgres writer before new ones are dropped.
const CHANNEL_ROWS: usize = 10_000;

pub struct AuditLog {
    recent: Mutex<VecDeque<AuditEntry>>,
    to_postgres: Option<mpsc::Sender<AuditEntry>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl AuditLog {
    /// With `pg`, starts the batch writer on the current runtime.
    pub fn new(pg: Option<&crate::store::postgres::Postgres>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let to_postgres = pg.map(|pg| {
            let (tx, rx) = mpsc::channel(CHANNEL_ROWS);
            tokio::spawn(writer::run(pg.pool().clone(), rx, Arc::clone(&metrics)));
            tx
        });
        AuditLog {
            recent: Mutex::new(VecDeque::with_capacity(1024)),
            to_postgres,
            metrics,
        }
    }

    pub fn record(&self, entry: AuditEntry) {
        if let Some(tx) = &self.to_postgres
            && tx.try_send(entry.clone()).is_err()
        {
            self.metrics.audit_rows.with_label_values(&["dropped"]).inc();
        }
        let mut recent = self.recent.lock();
        if recent.len() == MEMORY_ROWS {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    /// The newest `limit` calls, newest first, optionally of one key holder.
    pub fn recent(&self, limit: usize, key_name: Option<&str>) -> Vec<AuditEntry> {
        self.recent
            .lock()
            .iter()
            .rev()
            .filter(|e| key_name.is_none_or(|k| e.key_name == k))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// The query string as a JSON object; repeated keys become arrays; secrets are left out.
pub fn params_of(query: Option<&str>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "api_key" {
            continue;
        }
        let v: String = v.chars().take(500).collect();
        match map.get_mut(k.as_ref()) {
            Some(serde_json::Value::Array(list)) => list.push(v.into()),
            Some(one) => *one = serde_json::Value::Array(vec![one.take(), v.into()]),
            None => {
                map.insert(k.into_owned(), v.into());
            }
        }
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_drop_secrets_and_keep_repeats() {
        let p = params_of(Some("services=a&services=b&api_key=ailk_x&mode=errors"));
        assert_eq!(p, serde_json::json!({"services": ["a", "b"], "mode": "errors"}));
    }
}
