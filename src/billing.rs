//! `ailogs billing report`: usage and cost per workspace and model for a month, from
//! `ai_workspace_usage`, reconciled to the token with `ai_operations`.

use std::collections::BTreeMap;

pub use ailogs_pipeline::usage::billing::{Report, ReportRow, month_bounds, parse_instant, reconcile, to_csv, usd};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::store::postgres::Postgres;

pub async fn report(pg: &Postgres, month: &str, workspace: Option<&str>) -> anyhow::Result<Report> {
    let (start, end) = month_bounds(month).map_err(anyhow::Error::msg)?;
    let usage = sqlx::query(
        "SELECT workspace_id, model, SUM(requests)::int8, SUM(input_tokens)::int8, SUM(output_tokens)::int8, \
         SUM(cached_tokens)::int8, SUM(total_tokens)::int8, SUM(cost_nanousd)::int8, SUM(unpriced_requests)::int8, \
         SUM(errors)::int8 FROM ai_workspace_usage WHERE hour >= $1 AND hour < $2 AND ($3::text IS NULL OR workspace_id = $3) \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(start)
    .bind(end)
    .bind(workspace)
    .fetch_all(pg.pool())
    .await?;
    let ops = sqlx::query(
        "SELECT workspace_id, model, COUNT(*)::int8, SUM(input_tokens)::int8, SUM(output_tokens)::int8, \
         SUM(cached_tokens)::int8, SUM(total_tokens)::int8, SUM(cost_nanousd)::int8, \
         COALESCE(array_agg(DISTINCT price_version) FILTER (WHERE price_version IS NOT NULL), '{}') \
         FROM ai_operations WHERE event_time >= $1 AND event_time < $2 AND ($3::text IS NULL OR workspace_id = $3) \
         GROUP BY 1, 2",
    )
    .bind(start)
    .bind(end)
    .bind(workspace)
    .fetch_all(pg.pool())
    .await?;
    let mut from_ops: BTreeMap<(String, String), ReportRow> = BTreeMap::new();
    for r in &ops {
        let row = ReportRow {
            workspace_id: r.get(0),
            model: r.get(1),
            requests: r.get(2),
            input_tokens: r.get(3),
            output_tokens: r.get(4),
            cached_tokens: r.get(5),
            total_tokens: r.get(6),
            cost_nanousd: r.get(7),
            price_versions: r.get(8),
            ..Default::default()
        };
        from_ops.insert((row.workspace_id.clone(), row.model.clone()), row);
    }
    let usage = usage
        .iter()
        .map(|r| ReportRow {
            workspace_id: r.get(0),
            model: r.get(1),
            requests: r.get(2),
            input_tokens: r.get(3),
            output_tokens: r.get(4),
            cached_tokens: r.get(5),
            total_tokens: r.get(6),
            cost_nanousd: r.get(7),
            unpriced_requests: r.get(8),
            errors: r.get(9),
            price_versions: Vec::new(),
        })
        .collect();
    Ok(reconcile(month, usage, from_ops))
}

/// What a re-pricing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repriced {
    pub operations: usize,
    pub changed: usize,
    pub cost_before_nanousd: i64,
    pub cost_after_nanousd: i64,
}

/// New costs of the requests whose price changed, column by column for an UNNEST update.
#[derive(Default)]
struct ChangedCosts {
    at: Vec<DateTime<Utc>>,
    topic: Vec<String>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    cost: Vec<i64>,
    priced: Vec<bool>,
    version: Vec<Option<String>>,
}

/// Recomputes the cost of every AI request in [from, to) (widened to whole hours) with the
/// current `model_prices`, then rebuilds the usage and conversation costs from the requests.
/// Provider-reported costs are kept. One transaction; consumers' writes wait for it.
pub async fn reprice(pg: &Postgres, from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<Repriced> {
    use ailogs_pipeline::{Level, LogRecord};
    let prices = pg.load_prices().await?;
    let mut tx = pg.pool().begin().await?;
    sqlx::query("LOCK TABLE ai_operations, ai_workspace_usage, ai_conversations IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let (from, to): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT date_trunc('hour', $1::timestamptz), date_trunc('hour', $2::timestamptz + interval '1 hour' - interval '1 microsecond')",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await?;
    let rows = sqlx::query(
        "SELECT event_time, source_topic, source_partition, source_offset, model, input_tokens, output_tokens, cached_tokens, \
         total_tokens, cost_nanousd, price_version FROM ai_operations WHERE event_time >= $1 AND event_time < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = ChangedCosts::default();
    let (mut before, mut after) = (0i64, 0i64);
    for r in &rows {
        let at: DateTime<Utc> = r.get(0);
        let old_cost: i64 = r.get(9);
        let old_version: Option<String> = r.get(10);
        before += old_cost;
        if old_version.as_deref() == Some("provider-reported") {
            after += old_cost;
            continue;
        }
        let mut rec = LogRecord::new(at.timestamp_nanos_opt().unwrap_or(0), "", Level::Info, "");
        rec.model = Some(r.get(4));
        let (input, output, cached, total): (i64, i64, i64, i64) = (r.get(5), r.get(6), r.get(7), r.get(8));
        let count = |v: i64| u64::try_from(v).ok();
        if input > 0 || output > 0 {
            rec.input_tokens = count(input);
            rec.output_tokens = count(output);
        }
        rec.cached_tokens = count(cached);
        rec.tokens_used = count(total);
        let p = prices.price(&rec);
        after += p.cost_nanousd;
        if p.cost_nanousd != old_cost || p.version != old_version {
            changed.at.push(at);
            changed.topic.push(r.get(1));
            changed.partition.push(r.get(2));
            changed.offset.push(r.get(3));
            changed.cost.push(p.cost_nanousd);
            changed.priced.push(p.priced);
            changed.version.push(p.version);
        }
    }
    let n_changed = changed.at.len();
    sqlx::query(
        "UPDATE ai_operations o SET cost_nanousd = c.cost, priced = c.priced, price_version = c.version \
         FROM UNNEST($1::timestamptz[], $2::text[], $3::int4[], $4::int8[], $5::int8[], $6::bool[], $7::text[]) \
         AS c(event_time, topic, part, off, cost, priced, version) \
         WHERE o.event_time = c.event_time AND o.source_topic = c.topic AND o.source_partition = c.part AND o.source_offset = c.off",
    )
    .bind(changed.at)
    .bind(changed.topic)
    .bind(changed.partition)
    .bind(changed.offset)
    .bind(changed.cost)
    .bind(changed.priced)
    .bind(changed.version)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ai_workspace_usage u SET cost_nanousd = s.cost, unpriced_requests = s.unpriced FROM \
         (SELECT workspace_id, model, date_trunc('hour', event_time) AS hour, SUM(cost_nanousd)::int8 AS cost, \
          COUNT(*) FILTER (WHERE NOT priced) AS unpriced FROM ai_operations WHERE event_time >= $1 AND event_time < $2 \
          GROUP BY 1, 2, 3) s \
         WHERE u.workspace_id = s.workspace_id AND u.model = s.model AND u.hour = s.hour",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ai_conversations c SET cost_nanousd = s.cost FROM \
         (SELECT conversation_id, SUM(cost_nanousd)::int8 AS cost FROM ai_operations WHERE conversation_id IN \
          (SELECT DISTINCT conversation_id FROM ai_operations WHERE event_time >= $1 AND event_time < $2 AND conversation_id IS NOT NULL) \
          GROUP BY 1) s WHERE c.conversation_id = s.conversation_id",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Repriced {
        operations: rows.len(),
        changed: n_changed,
        cost_before_nanousd: before,
        cost_after_nanousd: after,
    })
}
