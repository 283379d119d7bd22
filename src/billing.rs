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
