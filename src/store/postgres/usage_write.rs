//! The usage tables' writers: one batch's usage, operations and conversations, inside the
//! batch's transaction (`ai_operations` partitions created ahead of it).

use ailogs_pipeline::usage::UsageBatch;
use chrono::Datelike;
use sqlx::{PgPool, Postgres as Pg, Transaction};

use super::ts;

pub(crate) async fn write_usage(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
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

pub(crate) fn operation_months(batch: &UsageBatch) -> Vec<(i32, u32)> {
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
pub(crate) async fn ensure_partitions(pool: &PgPool, months: &[(i32, u32)]) -> Result<(), sqlx::Error> {
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

pub(crate) async fn write_operations(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
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

pub(crate) async fn write_conversations(tx: &mut Transaction<'_, Pg>, batch: &UsageBatch) -> Result<(), sqlx::Error> {
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
