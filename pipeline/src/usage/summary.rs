//! Workspace and conversation summaries from usage rows, wherever the rows come from
//! (Postgres, or a `UsageBatch` over in-memory lines).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::delta::{Operation, UsageTotals};
use super::is_ai_request;
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::shape::message_shape;

/// One (model, hour) row of a workspace's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub model: String,
    pub hour_ns: i64,
    pub totals: UsageTotals,
}

/// Dollars as a JSON number (for reading) and the exact nano-dollars beside it.
fn money(nano: i64) -> Value {
    json!({ "usd": nano as f64 / 1e9, "nanousd": nano })
}

/// `GET /workspace/{id}/summary`, in the seed's field names. `errors` are the texts of the
/// failing AI operations (counted in `rows` too); `request_errors` those of the workspace's
/// requests' other failing lines (an API's 5xx, a gateway's upstream error), which the usage
/// rows do not count.
pub fn workspace_summary(
    rows: &[UsageRow],
    conversations: i64,
    errors: &[String],
    request_errors: &[String],
    include_costs: bool,
) -> Value {
    let mut total = UsageTotals::default();
    let mut per_model: BTreeMap<&str, UsageTotals> = BTreeMap::new();
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rows {
        add(&mut total, &r.totals);
        add(per_model.entry(&r.model).or_default(), &r.totals);
        *per_hour.entry(r.hour_ns).or_default() += r.totals.requests;
    }
    let mut peaks: Vec<(i64, i64)> = per_hour.into_iter().collect();
    peaks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut error_shapes: BTreeMap<String, i64> = BTreeMap::new();
    for e in errors.iter().chain(request_errors) {
        *error_shapes.entry(message_shape(e)).or_default() += 1;
    }
    let mut top_errors: Vec<(String, i64)> = error_shapes.into_iter().collect();
    top_errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let average = |t: &UsageTotals| (t.timed_requests > 0).then(|| t.duration_ms_sum / t.timed_requests as f64);
    let mut v = json!({
        "total_conversations": conversations,
        "total_requests": total.requests,
        "total_tokens": total.total_tokens,
        "input_tokens": total.input_tokens,
        "output_tokens": total.output_tokens,
        "cached_tokens": total.cached_tokens,
        "error_count": total.errors + request_errors.len() as i64,
        "average_response_time_ms": average(&total),
        "models_used": per_model.iter().map(|(m, t)| json!({
            "model": m, "requests": t.requests, "total_tokens": t.total_tokens, "errors": t.errors,
            "average_response_time_ms": average(t),
        })).collect::<Vec<_>>(),
        "peak_usage_times": peaks.iter().take(3).map(|(h, n)| json!({ "hour": format_rfc3339(*h), "requests": n })).collect::<Vec<_>>(),
        "top_error_patterns": top_errors.iter().take(5).map(|(p, n)| json!({ "pattern": p, "count": n })).collect::<Vec<_>>(),
    });
    if include_costs {
        v["cost_breakdown"] = json!({
            "total": money(total.cost_nanousd),
            "unpriced_requests": total.unpriced_requests,
            "by_model": per_model.iter().map(|(m, t)| json!({
                "model": m, "cost": money(t.cost_nanousd), "unpriced_requests": t.unpriced_requests,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// The failing lines of a workspace's requests that are not AI operations (those are counted
/// from usage), as texts for `workspace_summary`. `named` are the lines that name the
/// workspace; a line belongs to it too when it shares a correlation id with one of them (a
/// gateway's error line rarely carries the workspace) and names no other workspace;
/// `request_lines` gives a request's lines. At most 10,000 requests are followed.
pub fn request_errors(
    workspace: &str,
    named: &[Arc<Enriched>],
    request_lines: impl Fn(&str) -> Vec<Arc<Enriched>>,
) -> Vec<String> {
    const MAX_REQUESTS: usize = 10_000;
    let failing = |r: &Enriched| r.is_failure() && !is_ai_request(r);
    let text = |r: &Enriched| r.error.as_deref().unwrap_or(&r.message).to_owned();
    let mut out: Vec<String> = named
        .iter()
        .filter(|r| failing(r) && r.correlation_id.is_none())
        .map(|r| text(r))
        .collect();
    let requests: BTreeSet<&str> = named
        .iter()
        .filter_map(|r| r.correlation_id.as_deref())
        .take(MAX_REQUESTS)
        .collect();
    for id in requests {
        let lines = request_lines(id);
        out.extend(
            lines
                .iter()
                .filter(|r| failing(r) && r.workspace_id.as_deref().is_none_or(|w| w == workspace))
                .map(|r| text(r)),
        );
    }
    out
}

/// The metrics of one conversation from its requests.
pub fn conversation_metrics(ops: &[Operation]) -> Value {
    let requests = ops.len() as i64;
    let errors = ops
        .iter()
        .filter(|o| o.success == Some(false) || o.error.is_some())
        .count() as i64;
    let durations: Vec<f64> = ops.iter().filter_map(|o| o.duration_ms).collect();
    let mut models: BTreeMap<&str, i64> = BTreeMap::new();
    for o in ops {
        *models.entry(&o.model).or_default() += 1;
    }
    json!({
        "requests": requests,
        "total_tokens": ops.iter().map(|o| o.total_tokens).sum::<i64>(),
        "input_tokens": ops.iter().map(|o| o.input_tokens).sum::<i64>(),
        "output_tokens": ops.iter().map(|o| o.output_tokens).sum::<i64>(),
        "total_cost": money(ops.iter().map(|o| o.cost_nanousd).sum()),
        "unpriced_requests": ops.iter().filter(|o| !o.priced).count(),
        "average_response_time_ms": (!durations.is_empty()).then(|| durations.iter().sum::<f64>() / durations.len() as f64),
        "error_rate": if requests > 0 { errors as f64 / requests as f64 } else { 0.0 },
        "model_distribution": models,
    })
}

fn add(into: &mut UsageTotals, t: &UsageTotals) {
    into.requests += t.requests;
    into.input_tokens += t.input_tokens;
    into.output_tokens += t.output_tokens;
    into.cached_tokens += t.cached_tokens;
    into.total_tokens += t.total_tokens;
    into.cost_nanousd += t.cost_nanousd;
    into.unpriced_requests += t.unpriced_requests;
    into.errors += t.errors;
    into.duration_ms_sum += t.duration_ms_sum;
    into.timed_requests += t.timed_requests;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, hour: i64, requests: i64, tokens: i64, cost: i64) -> UsageRow {
        let totals = UsageTotals {
            requests,
            total_tokens: tokens,
            cost_nanousd: cost,
            duration_ms_sum: 100.0 * requests as f64,
            timed_requests: requests,
            ..Default::default()
        };
        UsageRow {
            model: model.into(),
            hour_ns: hour,
            totals,
        }
    }

    #[test]
    fn sums_models_hours_and_errors() {
        const H: i64 = 3_600_000_000_000;
        let rows = [
            row("a", 0, 2, 100, 5),
            row("b", 0, 1, 50, 0),
            row("a", H, 5, 10, 1_500_000_000),
        ];
        let errors = [
            "timeout after 3s".to_owned(),
            "timeout after 9s".to_owned(),
            "boom".to_owned(),
        ];
        let v = workspace_summary(&rows, 4, &errors, &[], true);
        assert_eq!(v["total_requests"], 8);
        assert_eq!(v["total_tokens"], 160);
        assert_eq!(v["total_conversations"], 4);
        assert_eq!(v["average_response_time_ms"], 100.0);
        assert_eq!(v["peak_usage_times"][0]["requests"], 5);
        assert_eq!(
            v["top_error_patterns"][0],
            json!({"pattern": "timeout after <n>s", "count": 2})
        );
        assert_eq!(v["cost_breakdown"]["total"]["nanousd"], 1_500_000_005_i64);
        assert_eq!(v["models_used"][0]["model"], "a");
        assert!(
            workspace_summary(&rows, 4, &errors, &[], false)
                .get("cost_breakdown")
                .is_none()
        );
    }
}
