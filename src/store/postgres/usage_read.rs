//! The usage tables' readers, for the API and billing.

use ailogs_pipeline::scope::Scope;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Postgres, ts};

/// Readers for the API.
impl Postgres {
    pub async fn usage_rows(
        &self,
        workspace: &str,
        since_ns: i64,
    ) -> Result<Vec<ailogs_pipeline::usage::UsageRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT model, hour, requests, input_tokens, output_tokens, cached_tokens, total_tokens, cost_nanousd, \
             unpriced_requests, errors, duration_ms_sum, timed_requests FROM ai_workspace_usage \
             WHERE workspace_id = $1 AND hour >= date_trunc('hour', $2::timestamptz)",
        )
        .bind(workspace)
        .bind(ts(since_ns))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ailogs_pipeline::usage::UsageRow {
                model: r.get(0),
                hour_ns: r.get::<DateTime<Utc>, _>(1).timestamp_nanos_opt().unwrap_or(0),
                totals: ailogs_pipeline::usage::UsageTotals {
                    requests: r.get(2),
                    input_tokens: r.get(3),
                    output_tokens: r.get(4),
                    cached_tokens: r.get(5),
                    total_tokens: r.get(6),
                    cost_nanousd: r.get(7),
                    unpriced_requests: r.get(8),
                    errors: r.get(9),
                    duration_ms_sum: r.get(10),
                    timed_requests: r.get(11),
                },
            })
            .collect())
    }

    pub async fn conversation_count(&self, workspace: &str, since_ns: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM ai_conversations WHERE workspace_id = $1 AND last_seen >= $2")
            .bind(workspace)
            .bind(ts(since_ns))
            .fetch_one(&self.pool)
            .await
    }

    /// Error texts of the workspace's failed requests, newest first.
    pub async fn recent_errors(&self, workspace: &str, since_ns: i64, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COALESCE(error, 'failed without an error message') FROM ai_operations WHERE workspace_id = $1 \
             AND event_time >= $2 AND (error IS NOT NULL OR success = false) ORDER BY event_time DESC LIMIT $3",
        )
        .bind(workspace)
        .bind(ts(since_ns))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// (workspace, user, first seen ns, last seen ns, lines, prompt hashes) of a conversation.
    /// The conversation, if `scope` may see its workspace (else None, as for an unknown id).
    pub async fn conversation(&self, id: &str, scope: &Scope) -> Result<Option<ConversationRow>, sqlx::Error> {
        let (ids, unscoped) = scope_binds(scope);
        let row = sqlx::query(
            "SELECT workspace_id, user_id, first_seen, last_seen, lines, prompt_hashes FROM ai_conversations \
             WHERE conversation_id = $1 AND ($2::text[] IS NULL OR workspace_id = ANY($2) OR ($3 AND workspace_id IS NULL))",
        )
        .bind(id)
        .bind(ids)
        .bind(unscoped)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ConversationRow {
            workspace_id: r.get(0),
            user_id: r.get(1),
            first_seen_ns: r.get::<DateTime<Utc>, _>(2).timestamp_nanos_opt().unwrap_or(0),
            last_seen_ns: r.get::<DateTime<Utc>, _>(3).timestamp_nanos_opt().unwrap_or(0),
            lines: r.get(4),
            prompt_hashes: r.get::<sqlx::types::Json<Vec<String>>, _>(5).0,
        }))
    }

    pub async fn conversation_operations(
        &self,
        id: &str,
        scope: &Scope,
    ) -> Result<Vec<ailogs_pipeline::usage::Operation>, sqlx::Error> {
        let (ids, unscoped) = scope_binds(scope);
        let rows = sqlx::query(
            "SELECT event_time, source_topic, source_partition, source_offset, workspace_id, model, service, request_type, \
             correlation_id, conversation_id, user_id, input_tokens, output_tokens, cached_tokens, total_tokens, cost_nanousd, \
             priced, price_version, success, duration_ms, error, prompt_hash FROM ai_operations \
             WHERE conversation_id = $1 AND ($2::text[] IS NULL OR workspace_id = ANY($2) OR ($3 AND workspace_id = $4)) \
             ORDER BY event_time LIMIT 10000",
        )
        .bind(id)
        .bind(ids)
        .bind(unscoped)
        .bind(ailogs_pipeline::usage::NO_WORKSPACE)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ailogs_pipeline::usage::Operation {
                ts_ns: r.get::<DateTime<Utc>, _>(0).timestamp_nanos_opt().unwrap_or(0),
                source: ailogs_pipeline::usage::SourcePos {
                    topic: r.get(1),
                    partition: r.get(2),
                    offset: r.get(3),
                },
                workspace_id: r.get(4),
                model: r.get(5),
                service: r.get(6),
                request_type: r.get(7),
                correlation_id: r.get(8),
                conversation_id: r.get(9),
                user_id: r.get(10),
                input_tokens: r.get(11),
                output_tokens: r.get(12),
                cached_tokens: r.get(13),
                total_tokens: r.get(14),
                cost_nanousd: r.get(15),
                priced: r.get(16),
                price_version: r.get(17),
                success: r.get(18),
                duration_ms: r.get(19),
                error: r.get(20),
                prompt_hash: r.get(21),
            })
            .collect())
    }
}

#[derive(Debug, Clone)]
pub struct ConversationRow {
    pub workspace_id: Option<String>,
    pub user_id: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub lines: i64,
    pub prompt_hashes: Vec<String>,
}

/// A scope as SQL binds: the workspace list (NULL: all) and whether rows without a workspace
/// are visible. Queries put them in their WHERE clause.
pub fn scope_binds(scope: &Scope) -> (Option<Vec<String>>, bool) {
    (scope.workspaces().map(<[String]>::to_vec), scope.sees_unscoped())
}
