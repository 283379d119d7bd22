//! `ailogs billing report`: usage and cost per workspace and model for a month, from
//! `ai_workspace_usage`, reconciled to the token with `ai_operations`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::store::postgres::Postgres;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub workspace_id: String,
    pub model: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub total_tokens: i64,
    pub cost_nanousd: i64,
    pub unpriced_requests: i64,
    pub errors: i64,
    pub price_versions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub month: String,
    pub rows: Vec<ReportRow>,
    /// Empty when usage and operations agree on every row.
    pub mismatches: Vec<String>,
}

/// `YYYY-MM` -> [first instant, first instant of the next month).
pub fn month_bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let bad = || format!("--month {month:?}: expected YYYY-MM, e.g. 2026-11");
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let start = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let end = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(bad);
    Ok((at(start)?, at(end)?))
}

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
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for r in &usage {
        let mut row = ReportRow {
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
        };
        let key = (row.workspace_id.clone(), row.model.clone());
        match from_ops.remove(&key) {
            Some(op) => {
                let same = (
                    op.requests,
                    op.input_tokens,
                    op.output_tokens,
                    op.cached_tokens,
                    op.total_tokens,
                    op.cost_nanousd,
                ) == (
                    row.requests,
                    row.input_tokens,
                    row.output_tokens,
                    row.cached_tokens,
                    row.total_tokens,
                    row.cost_nanousd,
                );
                if !same {
                    mismatches.push(format!(
                        "{}/{}: usage {:?} but operations {:?}",
                        key.0,
                        key.1,
                        totals(&row),
                        totals(&op)
                    ));
                }
                row.price_versions = op.price_versions;
            }
            None => mismatches.push(format!("{}/{}: in usage but no operations", key.0, key.1)),
        }
        rows.push(row);
    }
    for (key, _) in from_ops {
        mismatches.push(format!("{}/{}: in operations but not in usage", key.0, key.1));
    }
    Ok(Report {
        month: month.to_owned(),
        rows,
        mismatches,
    })
}

fn totals(r: &ReportRow) -> (i64, i64, i64, i64, i64, i64) {
    (
        r.requests,
        r.input_tokens,
        r.output_tokens,
        r.cached_tokens,
        r.total_tokens,
        r.cost_nanousd,
    )
}

/// Nano-dollars as a decimal USD string, exactly.
pub fn usd(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let n = nano.unsigned_abs();
    format!("{sign}{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

pub fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "month,workspace_id,model,requests,input_tokens,output_tokens,cached_tokens,total_tokens,cost_usd,unpriced_requests,errors,price_versions\n",
    );
    for r in &report.rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            report.month,
            csv_field(&r.workspace_id),
            csv_field(&r.model),
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cached_tokens,
            r.total_tokens,
            usd(r.cost_nanousd),
            r.unpriced_requests,
            r.errors,
            csv_field(&r.price_versions.join(";"))
        ));
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_money() {
        let (s, e) = month_bounds("2026-12").expect("valid");
        assert_eq!(
            (s.to_rfc3339(), e.to_rfc3339()),
            ("2026-12-01T00:00:00+00:00".into(), "2027-01-01T00:00:00+00:00".into())
        );
        assert!(month_bounds("2026-13").is_err());
        assert!(month_bounds("26-1x").is_err());
        assert_eq!(usd(7_250_000), "0.007250000");
        assert_eq!(usd(12_000_000_001), "12.000000001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
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

/// `2026-11-01`, `2026-11` or RFC3339.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok((start, _)) = month_bounds(s) {
        return Ok(start);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("{s:?} is not a date"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?} is not YYYY-MM, YYYY-MM-DD or RFC3339"))
}
