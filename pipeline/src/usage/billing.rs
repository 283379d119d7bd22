//! The billing report, pure: usage rows per workspace and model reconciled to the token
//! with the per-request operations they were summed from, as CSV or JSON. The `ailogs`
//! crate reads the rows from Postgres (`billing::report`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

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

/// Reconciles the usage rows with the operations' sums per (workspace, model): every row
/// must match to the token and the nano-dollar, and neither side may have a row the other
/// lacks; what does not is listed in `mismatches`. The rows take the operations' price
/// versions.
pub fn reconcile(month: &str, usage: Vec<ReportRow>, mut from_ops: BTreeMap<(String, String), ReportRow>) -> Report {
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for mut row in usage {
        let key = (row.workspace_id.clone(), row.model.clone());
        match from_ops.remove(&key) {
            Some(op) => {
                if totals(&op) != totals(&row) {
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
    Report {
        month: month.to_owned(),
        rows,
        mismatches,
    }
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

    #[test]
    fn reconciliation_lists_every_difference() {
        let row = |ws: &str, model: &str, tokens: i64| ReportRow {
            workspace_id: ws.into(),
            model: model.into(),
            requests: 1,
            total_tokens: tokens,
            ..Default::default()
        };
        let ops: BTreeMap<(String, String), ReportRow> = [row("a", "m", 10), row("b", "m", 5), row("c", "m", 1)]
            .into_iter()
            .map(|r| ((r.workspace_id.clone(), r.model.clone()), r))
            .collect();
        let report = reconcile(
            "2026-12",
            vec![row("a", "m", 10), row("b", "m", 6), row("d", "m", 1)],
            ops,
        );
        assert_eq!(report.rows.len(), 3);
        assert_eq!(report.mismatches.len(), 3, "{:?}", report.mismatches);
        assert!(report.mismatches[0].starts_with("b/m: usage"));
        assert!(report.mismatches[1].starts_with("d/m: in usage but no operations"));
        assert!(report.mismatches[2].starts_with("c/m: in operations but not in usage"));
        let clean = reconcile(
            "2026-12",
            vec![row("a", "m", 10)],
            [(("a".into(), "m".into()), row("a", "m", 10))].into(),
        );
        assert!(clean.mismatches.is_empty());
    }
}
