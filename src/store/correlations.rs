//! The `ai_correlations` view: completed requests' analyses, written inside a batch's offset
//! transaction, read back by /correlate.

use ailogs_pipeline::correlate::RequestAnalysis;
use chrono::{DateTime, Utc};
use sqlx::{Postgres as Pg, Transaction};

use super::postgres::{Postgres, ts};

/// Upserts the analyses. A request completed twice (lines arriving after its idle timeout)
/// adds up its lines and errors, widens its times, unions its services and keeps the
/// analysis of the larger part.
pub async fn write(tx: &mut Transaction<'_, Pg>, done: &[RequestAnalysis]) -> Result<(), sqlx::Error> {
    if done.is_empty() {
        return Ok(());
    }
    // One row per id per statement (ON CONFLICT cannot touch a row twice); sorted ids lock
    // rows in the same order in every consumer.
    let mut rows: Vec<&RequestAnalysis> = done.iter().collect();
    rows.sort_by(|a, b| a.correlation_id.cmp(&b.correlation_id).then(b.lines.cmp(&a.lines)));
    rows.dedup_by(|a, b| a.correlation_id == b.correlation_id);
    let graphs: Vec<serde_json::Value> = rows
        .iter()
        .map(|a| serde_json::to_value(a).unwrap_or(serde_json::Value::Null))
        .collect();
    // Arrays of arrays do not bind; each row's services go as a text[] literal.
    let services: Vec<String> = rows
        .iter()
        .map(|a| array_literal(a.request_flow.nodes.iter().map(|n| n.service.as_str())))
        .collect();
    sqlx::query(
        "INSERT INTO ai_correlations (correlation_id, first_seen, last_seen, services, lines, errors, graph, root_cause, duration_ms) \
         SELECT id, f, l, s::text[], n, e, g, r, d FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], \
         $5::int8[], $6::int8[], $7::jsonb[], $8::text[], $9::float8[]) AS t(id, f, l, s, n, e, g, r, d) \
         ON CONFLICT (correlation_id) DO UPDATE SET \
         first_seen = LEAST(ai_correlations.first_seen, EXCLUDED.first_seen), \
         last_seen = GREATEST(ai_correlations.last_seen, EXCLUDED.last_seen), \
         services = ARRAY(SELECT DISTINCT unnest(ai_correlations.services || EXCLUDED.services)), \
         graph = CASE WHEN EXCLUDED.lines >= ai_correlations.lines THEN EXCLUDED.graph ELSE ai_correlations.graph END, \
         root_cause = CASE WHEN EXCLUDED.lines >= ai_correlations.lines THEN EXCLUDED.root_cause ELSE ai_correlations.root_cause END, \
         lines = ai_correlations.lines + EXCLUDED.lines, \
         errors = ai_correlations.errors + EXCLUDED.errors, \
         duration_ms = GREATEST(ai_correlations.duration_ms, EXCLUDED.duration_ms)",
    )
    .bind(rows.iter().map(|a| a.correlation_id.clone()).collect::<Vec<_>>())
    .bind(rows.iter().map(|a| ts(a.first_ns)).collect::<Vec<_>>())
    .bind(rows.iter().map(|a| ts(a.last_ns)).collect::<Vec<_>>())
    .bind(services)
    .bind(rows.iter().map(|a| a.lines as i64).collect::<Vec<_>>())
    .bind(rows.iter().map(|a| a.errors.iter().map(|e| i64::from(e.count)).sum::<i64>()).collect::<Vec<_>>())
    .bind(graphs)
    .bind(rows.iter().map(|a| a.root_cause.as_ref().map(|r| r.service.clone())).collect::<Vec<_>>())
    .bind(rows.iter().map(|a| a.total_duration_ms).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored analysis of a request, as JSON.
pub async fn read(pg: &Postgres, correlation_id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT graph FROM ai_correlations WHERE correlation_id = $1")
        .bind(correlation_id)
        .fetch_optional(pg.pool())
        .await
        .map(Option::flatten)
}

/// `{"a","b"}` with quotes and backslashes escaped, as Postgres parses a text[] literal.
fn array_literal<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// Requests that ended at or after `since_ns` and touched `service`, for the dependency
/// graph across every consumer: (start, analysis), newest first, at most `limit`.
pub async fn around(
    pg: &Postgres,
    service: &str,
    since_ns: i64,
    limit: i64,
) -> Result<Vec<(i64, RequestAnalysis)>, sqlx::Error> {
    let rows: Vec<(DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "SELECT first_seen, graph FROM ai_correlations WHERE last_seen >= $1 AND services @> ARRAY[$2] \
         ORDER BY last_seen DESC LIMIT $3",
    )
    .bind(ts(since_ns))
    .bind(service)
    .bind(limit)
    .fetch_all(pg.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(first, graph)| {
            let a: RequestAnalysis = serde_json::from_value(graph).ok()?;
            Some((first.timestamp_nanos_opt().unwrap_or(0), a))
        })
        .collect())
}
