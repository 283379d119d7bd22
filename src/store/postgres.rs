//! Postgres: migrations, prices, and the transactional write of a batch's deltas together
//! with the Kafka offsets they cover.
//!
//! Offsets are fenced: a batch commits only if each partition's stored offset is still the
//! one the batch started from. A consumer that lost its partitions in a rebalance (or a
//! zombie after a crash) cannot double-count: its commit is refused and it re-reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::usage::{Price, PriceBook, UsageBatch};
use chrono::{DateTime, Datelike, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres as Pg, Row, Transaction};

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Months whose `ai_operations` partition a committed transaction has seen.
    partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
}

/// One partition's part of a batch: the offset it started from (as stored, `None` when the
/// partition had no stored offset) and the offset after its last message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCommit {
    pub topic: String,
    pub partition: i32,
    pub expected: Option<i64>,
    pub next: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("partition {topic}/{partition} was advanced by another consumer")]
    Fenced { topic: String, partition: i32 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A nanosecond Unix time as Postgres binds it.
pub(crate) fn ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

impl Postgres {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
        })
    }

    /// A pool that connects on first use: Postgres may be down when a process starts.
    pub fn connect_lazy(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)?;
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(&self.pool).await
    }

    /// Stored next offsets of a group's partitions of `topic`.
    pub async fn stored_offsets(&self, group: &str, topic: &str) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2")
                .bind(group)
                .bind(topic)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get::<i32, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Inserts price rows that are not there yet; returns how many were added.
    pub async fn seed_prices(&self, book: &PriceBook) -> Result<u64, sqlx::Error> {
        let mut added = 0;
        for p in book.prices() {
            added += sqlx::query(
                "INSERT INTO model_prices (model_pattern, provider, valid_from, input_nanousd_per_mtok, \
                 output_nanousd_per_mtok, cached_input_nanousd_per_mtok, version) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (model_pattern, valid_from) DO NOTHING",
            )
            .bind(&p.model_pattern)
            .bind(&p.provider)
            .bind(ts(p.valid_from_ns))
            .bind(p.input_nanousd_per_mtok)
            .bind(p.output_nanousd_per_mtok)
            .bind(p.cached_input_nanousd_per_mtok)
            .bind(&p.version)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(added)
    }

    pub async fn load_prices(&self) -> Result<PriceBook, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT model_pattern, provider, valid_from, input_nanousd_per_mtok, output_nanousd_per_mtok, \
             cached_input_nanousd_per_mtok, version FROM model_prices",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(PriceBook::new(
            rows.iter()
                .map(|r| Price {
                    model_pattern: r.get(0),
                    provider: r.get(1),
                    valid_from_ns: r.get::<DateTime<Utc>, _>(2).timestamp_nanos_opt().unwrap_or(i64::MIN),
                    input_nanousd_per_mtok: r.get(3),
                    output_nanousd_per_mtok: r.get(4),
                    cached_input_nanousd_per_mtok: r.get(5),
                    version: r.get(6),
                })
                .collect(),
        ))
    }

    /// Writes a batch's deltas (usage, operations, conversations, pattern hits, templates) and advances its partitions' offsets in one transaction.
    pub async fn commit_batch(
        &self,
        group: &str,
        commits: &[PartitionCommit],
        batch: &UsageBatch,
        insights: &InsightBatch,
    ) -> Result<(), CommitError> {
        // Partitions first, in their own statements: DDL inside the batch transaction would
        // make concurrent consumers wait on (or fail against) each other's creation.
        let new_months: Vec<(i32, u32)> = {
            let known = self.partitions.lock();
            operation_months(batch)
                .into_iter()
                .filter(|m| !known.contains(m))
                .collect()
        };
        ensure_partitions(&self.pool, &new_months).await?;
        self.partitions.lock().extend(new_months);
        let mut tx = self.pool.begin().await?;
        for c in commits {
            advance_offset(&mut tx, group, c).await?;
        }
        write_usage(&mut tx, batch).await?;
        write_operations(&mut tx, batch).await?;
        write_conversations(&mut tx, batch).await?;
        super::insights::write(&mut tx, insights).await?;
        super::correlations::write(&mut tx, &insights.correlations).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn advance_offset(tx: &mut Transaction<'_, Pg>, group: &str, c: &PartitionCommit) -> Result<(), CommitError> {
    let affected = match c.expected {
        None => sqlx::query(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(&c.topic)
        .bind(c.partition)
        .bind(c.next)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        Some(expected) => sqlx::query(
            "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() \
             WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
        )
        .bind(group)
        .bind(&c.topic)
        .bind(c.partition)
        .bind(c.next)
        .bind(expected)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    };
    if affected == 1 {
        Ok(())
    } else {
        Err(CommitError::Fenced {
            topic: c.topic.clone(),
            partition: c.partition,
        })
    }
}

async fn write_usage(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
    if batch.usage.is_empty() {
        return Ok(());
    }
    // Sorted keys: concurrent consumers lock rows in the same order and cannot deadlock.
    let mut rows: Vec<_> = batch.usage.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let col =
        |f: &dyn Fn(&ailogs_pipeline::usage::UsageTotals) -> i64| rows.iter().map(|(_, u)| f(u)).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO ai_workspace_usage (workspace_id, model, hour, requests, input_tokens, output_tokens, cached_tokens, \
         total_tokens, cost_nanousd, unpriced_requests, errors, duration_ms_sum, timed_requests) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[], $13::int8[]) \
         ON CONFLICT (workspace_id, model, hour) DO UPDATE SET \
         requests = ai_workspace_usage.requests + EXCLUDED.requests, \
         input_tokens = ai_workspace_usage.input_tokens + EXCLUDED.input_tokens, \
         output_tokens = ai_workspace_usage.output_tokens + EXCLUDED.output_tokens, \
         cached_tokens = ai_workspace_usage.cached_tokens + EXCLUDED.cached_tokens, \
         total_tokens = ai_workspace_usage.total_tokens + EXCLUDED.total_tokens, \
         cost_nanousd = ai_workspace_usage.cost_nanousd + EXCLUDED.cost_nanousd, \
         unpriced_requests = ai_workspace_usage.unpriced_requests + EXCLUDED.unpriced_requests, \
         errors = ai_workspace_usage.errors + EXCLUDED.errors, \
         duration_ms_sum = ai_workspace_usage.duration_ms_sum + EXCLUDED.duration_ms_sum, \
         timed_requests = ai_workspace_usage.timed_requests + EXCLUDED.timed_requests",
    )
    .bind(rows.iter().map(|(k, _)| k.workspace_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(k, _)| k.model.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(k, _)| ts(k.hour_ns)).collect::<Vec<_>>())
    .bind(col(&|u| u.requests))
    .bind(col(&|u| u.input_tokens))
    .bind(col(&|u| u.output_tokens))
    .bind(col(&|u| u.cached_tokens))
    .bind(col(&|u| u.total_tokens))
    .bind(col(&|u| u.cost_nanousd))
    .bind(col(&|u| u.unpriced_requests))
    .bind(col(&|u| u.errors))
    .bind(rows.iter().map(|(_, u)| u.duration_ms_sum).collect::<Vec<f64>>())
    .bind(col(&|u| u.timed_requests))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn operation_months(batch: &UsageBatch) -> Vec<(i32, u32)> {
    let mut months: Vec<(i32, u32)> = batch
        .operations
        .iter()
        .map(|o| {
            let t = ts(o.ts_ns);
            (t.year(), t.month())
        })
        .collect();
    months.sort_unstable();
    months.dedup();
    months
}

/// Creates the monthly partitions of `ai_operations` that may not exist yet.
async fn ensure_partitions(pool: &PgPool, months: &[(i32, u32)]) -> Result<(), sqlx::Error> {
    for &(year, month) in months {
        let first_day = chrono::NaiveDate::from_ymd_opt(year, month, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        if let Some(first_day) = first_day {
            sqlx::query("SELECT ensure_ai_operations_partition($1)")
                .bind(first_day.and_utc())
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

async fn write_operations(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
    if batch.operations.is_empty() {
        return Ok(());
    }
    let ops = &batch.operations;
    let text = |f: &dyn Fn(&ailogs_pipeline::usage::Operation) -> Option<String>| {
        ops.iter().map(f).collect::<Vec<Option<String>>>()
    };
    let int = |f: &dyn Fn(&ailogs_pipeline::usage::Operation) -> i64| ops.iter().map(f).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO ai_operations (event_time, source_topic, source_partition, source_offset, workspace_id, model, service, \
         request_type, correlation_id, conversation_id, user_id, input_tokens, output_tokens, cached_tokens, total_tokens, \
         cost_nanousd, priced, price_version, success, duration_ms, error, prompt_hash) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::int4[], $4::int8[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::int8[], \
         $17::bool[], $18::text[], $19::bool[], $20::float8[], $21::text[], $22::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ops.iter().map(|o| ts(o.ts_ns)).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.source.topic.clone()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.source.partition).collect::<Vec<_>>())
    .bind(int(&|o| o.source.offset))
    .bind(ops.iter().map(|o| o.workspace_id.clone()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.model.clone()).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.service.clone()).collect::<Vec<_>>())
    .bind(text(&|o| o.request_type.clone()))
    .bind(text(&|o| o.correlation_id.clone()))
    .bind(text(&|o| o.conversation_id.clone()))
    .bind(text(&|o| o.user_id.clone()))
    .bind(int(&|o| o.input_tokens))
    .bind(int(&|o| o.output_tokens))
    .bind(int(&|o| o.cached_tokens))
    .bind(int(&|o| o.total_tokens))
    .bind(int(&|o| o.cost_nanousd))
    .bind(ops.iter().map(|o| o.priced).collect::<Vec<_>>())
    .bind(text(&|o| o.price_version.clone()))
    .bind(ops.iter().map(|o| o.success).collect::<Vec<_>>())
    .bind(ops.iter().map(|o| o.duration_ms).collect::<Vec<_>>())
    .bind(text(&|o| o.error.clone()))
    .bind(text(&|o| o.prompt_hash.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_conversations(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
    if batch.conversations.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = batch.conversations.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let int = |f: &dyn Fn(&ailogs_pipeline::usage::ConversationDelta) -> i64| {
        rows.iter().map(|(_, c)| f(c)).collect::<Vec<i64>>()
    };
    sqlx::query(
        "INSERT INTO ai_conversations (conversation_id, workspace_id, user_id, first_seen, last_seen, lines, requests,          errors, input_tokens, output_tokens, total_tokens, cost_nanousd, duration_ms_sum, timed_requests, models, prompt_hashes)          SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int8[], $7::int8[],          $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::float8[], $14::int8[], $15::jsonb[], $16::jsonb[])          ON CONFLICT (conversation_id) DO UPDATE SET          workspace_id = COALESCE(ai_conversations.workspace_id, EXCLUDED.workspace_id),          user_id = COALESCE(ai_conversations.user_id, EXCLUDED.user_id),          first_seen = LEAST(ai_conversations.first_seen, EXCLUDED.first_seen),          last_seen = GREATEST(ai_conversations.last_seen, EXCLUDED.last_seen),          lines = ai_conversations.lines + EXCLUDED.lines,          requests = ai_conversations.requests + EXCLUDED.requests,          errors = ai_conversations.errors + EXCLUDED.errors,          input_tokens = ai_conversations.input_tokens + EXCLUDED.input_tokens,          output_tokens = ai_conversations.output_tokens + EXCLUDED.output_tokens,          total_tokens = ai_conversations.total_tokens + EXCLUDED.total_tokens,          cost_nanousd = ai_conversations.cost_nanousd + EXCLUDED.cost_nanousd,          duration_ms_sum = ai_conversations.duration_ms_sum + EXCLUDED.duration_ms_sum,          timed_requests = ai_conversations.timed_requests + EXCLUDED.timed_requests,          models = (SELECT COALESCE(jsonb_object_agg(k, COALESCE((ai_conversations.models->>k)::bigint, 0) \
             + COALESCE((EXCLUDED.models->>k)::bigint, 0)), '{}'::jsonb) \
             FROM jsonb_object_keys(ai_conversations.models || EXCLUDED.models) AS k),          prompt_hashes = (SELECT COALESCE(jsonb_agg(h), '[]'::jsonb) FROM (SELECT DISTINCT h FROM \
             jsonb_array_elements(ai_conversations.prompt_hashes || EXCLUDED.prompt_hashes) AS h LIMIT 50) AS x)",
    )
    .bind(rows.iter().map(|(id, _)| (*id).clone()).collect::<Vec<String>>())
    .bind(rows.iter().map(|(_, c)| c.workspace_id.clone()).collect::<Vec<Option<String>>>())
    .bind(rows.iter().map(|(_, c)| c.user_id.clone()).collect::<Vec<Option<String>>>())
    .bind(rows.iter().map(|(_, c)| ts(c.first_seen_ns)).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, c)| ts(c.last_seen_ns)).collect::<Vec<_>>())
    .bind(int(&|c| c.lines))
    .bind(int(&|c| c.requests))
    .bind(int(&|c| c.errors))
    .bind(int(&|c| c.input_tokens))
    .bind(int(&|c| c.output_tokens))
    .bind(int(&|c| c.total_tokens))
    .bind(int(&|c| c.cost_nanousd))
    .bind(rows.iter().map(|(_, c)| c.duration_ms_sum).collect::<Vec<f64>>())
    .bind(int(&|c| c.timed_requests))
    .bind(rows.iter().map(|(_, c)| serde_json::json!(c.models)).collect::<Vec<serde_json::Value>>())
    .bind(rows.iter().map(|(_, c)| serde_json::json!(c.prompt_hashes)).collect::<Vec<serde_json::Value>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
    pub async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT workspace_id, user_id, first_seen, last_seen, lines, prompt_hashes FROM ai_conversations WHERE conversation_id = $1",
        )
        .bind(id)
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
    ) -> Result<Vec<ailogs_pipeline::usage::Operation>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT event_time, source_topic, source_partition, source_offset, workspace_id, model, service, request_type, \
             correlation_id, conversation_id, user_id, input_tokens, output_tokens, cached_tokens, total_tokens, cost_nanousd, \
             priced, price_version, success, duration_ms, error, prompt_hash FROM ai_operations \
             WHERE conversation_id = $1 ORDER BY event_time LIMIT 10000",
        )
        .bind(id)
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
