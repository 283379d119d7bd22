//! The `detected_patterns` and `log_templates` views: a batch's pattern hits and templates,
//! written inside the batch's offset transaction (`store::batch::commit`), and read back
//! for the API.

use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::patterns::PatternStats;
use ailogs_pipeline::templates::template_key;
use chrono::{DateTime, Utc};
use sqlx::{Postgres as Pg, Transaction};

use super::postgres::{Postgres, ts};

pub async fn write(tx: &mut Transaction<'_, Pg>, batch: &InsightBatch) -> Result<(), sqlx::Error> {
    if !batch.patterns.is_empty() {
        // Sorted keys: concurrent consumers lock rows in the same order and cannot deadlock.
        let mut rows: Vec<_> = batch.patterns.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        sqlx::query(
            "INSERT INTO detected_patterns (pattern_id, service, minute, count) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::int8[]) \
             ON CONFLICT (pattern_id, service, minute) DO UPDATE SET \
             count = detected_patterns.count + EXCLUDED.count",
        )
        .bind(rows.iter().map(|(k, _)| k.pattern_id.to_string()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(k, _)| k.service.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(k, _)| ts(k.minute_ns)).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, n)| **n).collect::<Vec<i64>>())
        .execute(&mut **tx)
        .await?;
    }
    if !batch.templates.is_empty() {
        let mut rows: Vec<_> = batch.templates.iter().map(|(id, t)| (template_key(*id), t)).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        sqlx::query(
            "INSERT INTO log_templates (template_id, service, template, first_seen, last_seen, count) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int8[]) \
             ON CONFLICT (template_id) DO UPDATE SET \
             template = EXCLUDED.template, \
             first_seen = LEAST(log_templates.first_seen, EXCLUDED.first_seen), \
             last_seen = GREATEST(log_templates.last_seen, EXCLUDED.last_seen), \
             count = log_templates.count + EXCLUDED.count",
        )
        .bind(rows.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, t)| t.service.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, t)| t.template.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, t)| ts(t.first_ns)).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, t)| ts(t.last_ns)).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, t)| t.count).collect::<Vec<i64>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// pattern id, service, first minute, end of the last minute, count.
type PatternRow = (String, String, DateTime<Utc>, DateTime<Utc>, i64);

/// Pattern counts over everything `detected_patterns` holds (all consumers, all time):
/// first and last seen at minute precision.
pub async fn pattern_stats(pg: &Postgres) -> Result<PatternStats, sqlx::Error> {
    let rows: Vec<PatternRow> = sqlx::query_as(
        "SELECT pattern_id, service, MIN(minute), MAX(minute) + interval '59.999999 seconds', SUM(count)::int8 \
         FROM detected_patterns GROUP BY 1, 2 ORDER BY 1, 5 DESC",
    )
    .fetch_all(pg.pool())
    .await?;
    let mut stats = PatternStats::default();
    for (id, service, first, last, count) in rows {
        let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
        stats.add_counts(&id, &service, ns(first), ns(last), count.max(0) as u64);
    }
    Ok(stats)
}
