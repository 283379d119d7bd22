//! Each tool: one or two REST calls, then the answer cut to what an agent needs first.

use serde_json::{Value, json};

use super::answer::ToolAnswer;
use super::api::{Api, Caller};
use super::inputs::{
    ExplainTemplate, GetConversation, GetRequest, ListPatterns, QueryLogs, RecentAlerts, ServiceHealth, WorkspaceUsage,
};

const API: &str = "/api/v1/ai_logs";
const LINE_FIELDS: &[&str] = &[
    "t",
    "service",
    "level",
    "message",
    "error",
    "correlation_id",
    "conversation_id",
    "workspace_id",
    "model",
    "duration_ms",
    "patterns",
    "template_id",
    "count",
];

fn push(q: &mut Vec<(&'static str, String)>, name: &'static str, v: &Option<String>) {
    if let Some(v) = v {
        q.push((name, v.clone()));
    }
}

fn array<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn text(body: &Value, key: &str) -> String {
    body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub async fn query_logs(api: &Api, key: &Caller, p: QueryLogs) -> Result<ToolAnswer, String> {
    let limit = p.limit.unwrap_or(20).clamp(1, 200);
    let mut q = vec![("limit", limit.to_string()), ("verbosity", "standard".to_owned())];
    push(&mut q, "mode", &p.mode);
    push(&mut q, "time_range", &p.time_range);
    push(&mut q, "start", &p.start);
    push(&mut q, "end", &p.end);
    push(&mut q, "correlation_id", &p.correlation_id);
    push(&mut q, "conversation_id", &p.conversation_id);
    push(&mut q, "session_id", &p.session_id);
    push(&mut q, "workspace_id", &p.workspace_id);
    push(&mut q, "template_id", &p.template_id);
    push(&mut q, "severity_threshold", &p.severity_threshold);
    if let Some(services) = &p.services {
        q.push(("services", services.join(",")));
    }
    for x in p.exclude_patterns.iter().flatten() {
        q.push(("exclude_patterns", x.clone()));
    }
    let body = api.get(&format!("{API}/query"), &q, key).await?;
    let summary = match body.get("summary") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // Conversation mode groups lines by conversation; every other mode lists lines.
    let (items, fields): (&[Value], &[&str]) = if body.get("conversations").is_some() {
        (
            array(&body, "conversations"),
            &[
                "conversation_id",
                "workspace_id",
                "errors",
                "lines_total",
                "first_seen",
                "last_seen",
                "services",
                "models",
                "tokens_used",
            ],
        )
    } else {
        (array(&body, "lines"), LINE_FIELDS)
    };
    let total = body.get("total_matched").and_then(Value::as_u64);
    Ok(ToolAnswer::new(summary)
        .envelope(&body)
        .items(items, fields, limit)
        .total(total)
        .detail("coverage", body.get("coverage").cloned().unwrap_or(Value::Null))
        .detail("window", body.get("window").cloned().unwrap_or(Value::Null))
        .next_if_truncated(
            "more lines matched: narrow with services, a shorter time_range, severity_threshold or an id, or raise limit (at most 200)",
        )
        .fit(p.budget.bytes()))
}

pub async fn get_request(api: &Api, key: &Caller, p: GetRequest) -> Result<ToolAnswer, String> {
    let body = api
        .get(
            &format!("{API}/correlate"),
            &[("correlation_id", p.correlation_id.clone())],
            key,
        )
        .await?;
    let root = body.get("root_cause").filter(|r| !r.is_null());
    let summary = format!(
        "request {} ({}): {} lines across {}; {}",
        p.correlation_id,
        text(&body, "status"),
        body.get("lines").and_then(Value::as_u64).unwrap_or(0),
        array(&body, "critical_path")
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" -> "),
        match root {
            Some(r) => format!("root cause: {} ({})", text(r, "service"), text(r, "reason")),
            None => "no error".to_owned(),
        }
    );
    let errors = array(&body, "errors");
    Ok(ToolAnswer::new(summary)
        .envelope(&body)
        .items(errors, &[], 10)
        .total(Some(errors.len() as u64))
        .detail("root_cause", root.cloned().unwrap_or(Value::Null))
        .detail(
            "critical_path",
            body.get("critical_path").cloned().unwrap_or(Value::Null),
        )
        .detail(
            "total_duration_ms",
            body.get("total_duration_ms").cloned().unwrap_or(Value::Null),
        )
        .detail(
            "bottlenecks",
            json!(array(&body, "bottlenecks").iter().take(3).collect::<Vec<_>>()),
        )
        .detail(
            "recommendations",
            body.get("recommendations").cloned().unwrap_or(Value::Null),
        )
        .detail(
            "independent_failures",
            body.get("independent_failures").cloned().unwrap_or(Value::Null),
        )
        .next_if_truncated("query_logs with this correlation_id lists every line of the request")
        .fit(p.budget.bytes()))
}

pub async fn service_health(api: &Api, key: &Caller, p: ServiceHealth) -> Result<ToolAnswer, String> {
    let mut q = vec![("services", p.service.clone())];
    push(&mut q, "time_range", &p.time_range);
    let body = api.get(&format!("{API}/analyze"), &q, key).await?;
    let insights = array(&body, "insights");
    let pick = |key: &str, fields: &[&str]| -> Value {
        json!(
            array(&body, key)
                .iter()
                .take(5)
                .map(|v| {
                    let mut o = serde_json::Map::new();
                    for f in fields {
                        if let Some(x) = v.get(*f) {
                            o.insert((*f).to_owned(), x.clone());
                        }
                    }
                    Value::Object(o)
                })
                .collect::<Vec<_>>()
        )
    };
    let summary = match insights.first() {
        Some(top) => format!(
            "{}: {} lines examined; top insight: {} ({})",
            p.service,
            body.get("lines_examined").and_then(Value::as_u64).unwrap_or(0),
            text(top, "title"),
            text(top, "severity")
        ),
        None => format!(
            "{}: {} lines examined, nothing stands out",
            p.service,
            body.get("lines_examined").and_then(Value::as_u64).unwrap_or(0)
        ),
    };
    Ok(ToolAnswer::new(summary)
        .envelope(&body)
        .items(
            insights,
            &["rank", "kind", "severity", "title", "explanation", "suggestion"],
            5,
        )
        .total(Some(insights.len() as u64))
        .detail(
            "patterns",
            pick("patterns", &["id", "category", "severity", "count", "sample"]),
        )
        .detail(
            "anomalies",
            pick("anomalies", &["key", "severity", "summary", "correlation_ids"]),
        )
        .detail(
            "new_templates",
            pick("new_templates", &["id", "template", "count", "errors", "first_seen"]),
        )
        .detail(
            "top_templates",
            pick("top_templates", &["id", "template", "count", "errors"]),
        )
        .detail(
            "dependencies",
            pick("cascades", &["requests", "services", "correlation_ids"]),
        )
        .detail("window", body.get("window").cloned().unwrap_or(Value::Null))
        .next_if_truncated("explain_template with an id above, or get_request with a correlation id, drills down")
        .fit(p.budget.bytes()))
}

pub async fn get_conversation(api: &Api, key: &Caller, p: GetConversation) -> Result<ToolAnswer, String> {
    let path = format!(
        "{API}/conversations/{}",
        form_urlencoded::byte_serialize(p.conversation_id.as_bytes()).collect::<String>()
    );
    let body = api.get(&path, &[], key).await?;
    let metrics = body.get("metrics").cloned().unwrap_or(Value::Null);
    let summary = format!(
        "conversation {} in workspace {}: {} requests, {} lines, error rate {}, cost ${}",
        p.conversation_id,
        text(&body, "workspace_id"),
        body.get("requests").and_then(Value::as_u64).unwrap_or(0),
        body.get("lines").and_then(Value::as_u64).unwrap_or(0),
        metrics.get("error_rate").cloned().unwrap_or(json!(0)),
        metrics.pointer("/total_cost/usd").cloned().unwrap_or(json!(0))
    );
    let related = array(&body, "related_logs");
    let mut details = body.clone();
    if let Some(o) = details.as_object_mut() {
        for k in ["related_logs", "source", "windows", "missing"] {
            o.remove(k);
        }
    }
    let total = body.get("related_logs_total").and_then(Value::as_u64);
    let mut answer = ToolAnswer::new(summary)
        .envelope(&body)
        .items(related, LINE_FIELDS, 20)
        .total(total.or(Some(related.len() as u64)));
    if let Value::Object(d) = details {
        answer.details = d;
    }
    Ok(answer
        .next_if_truncated("query_logs with this conversation_id lists its lines")
        .fit(p.budget.bytes()))
}

pub async fn workspace_usage(api: &Api, key: &Caller, p: WorkspaceUsage) -> Result<ToolAnswer, String> {
    let range = p.time_range.clone().unwrap_or_else(|| "24h".to_owned());
    let id = form_urlencoded::byte_serialize(p.workspace_id.as_bytes()).collect::<String>();
    let body = api
        .get(
            &format!("{API}/workspace/{id}/summary"),
            &[("time_range", range.clone())],
            key,
        )
        .await?;
    let by_day = api
        .get(
            &format!("{API}/metrics"),
            &[
                ("time_range", range.clone()),
                ("step", "1d".to_owned()),
                ("group_by", "model".to_owned()),
                ("workspace_id", p.workspace_id.clone()),
            ],
            key,
        )
        .await?;
    let days: Vec<Value> = array(&by_day, "buckets")
        .iter()
        .filter(|b| !array(b, "groups").is_empty())
        .map(|b| {
            json!({
                "day": b["start"],
                "by_model": array(b, "groups").iter().map(|g| json!({
                    "model": g["group"], "requests": g["requests"], "input_tokens": g["input_tokens"],
                    "output_tokens": g["output_tokens"], "cost_usd": g["cost_usd"], "errors": g["errors"],
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let summary = format!(
        "workspace {} over {range}: {} requests, {} tokens, ${} ({} errors)",
        p.workspace_id,
        body.get("total_requests").cloned().unwrap_or(json!(0)),
        body.get("total_tokens").cloned().unwrap_or(json!(0)),
        body.pointer("/cost_breakdown/total/usd").cloned().unwrap_or(json!(0)),
        body.get("error_count").cloned().unwrap_or(json!(0)),
    );
    let models = array(&body, "models_used");
    Ok(ToolAnswer::new(summary)
        .envelope(&body)
        .items(models, &[], 10)
        .total(Some(models.len() as u64))
        .detail(
            "cost_by_model",
            body.pointer("/cost_breakdown/by_model").cloned().unwrap_or(Value::Null),
        )
        .detail("by_day", json!(days))
        .detail(
            "peak_usage_times",
            body.get("peak_usage_times").cloned().unwrap_or(Value::Null),
        )
        .detail(
            "top_error_patterns",
            body.get("top_error_patterns").cloned().unwrap_or(Value::Null),
        )
        .detail("window", body.get("window").cloned().unwrap_or(Value::Null))
        .next_if_truncated("narrow time_range, or query_logs with workspace_id for its lines")
        .fit(p.budget.bytes()))
}

pub async fn list_patterns(api: &Api, key: &Caller, p: ListPatterns) -> Result<ToolAnswer, String> {
    let mut q = Vec::new();
    if let Some(c) = &p.categories {
        q.push(("category", c.join(",")));
    }
    push(&mut q, "min_severity", &p.min_severity);
    let body = api.get(&format!("{API}/patterns"), &q, key).await?;
    let mut patterns: Vec<Value> = array(&body, "patterns").to_vec();
    patterns.sort_by_key(|v| std::cmp::Reverse(v.get("count").and_then(Value::as_u64).unwrap_or(0)));
    let matched = patterns
        .iter()
        .filter(|v| v.get("count").and_then(Value::as_u64).unwrap_or(0) > 0)
        .count();
    let summary = format!(
        "{} patterns (catalog {}), {} matched since {}",
        patterns.len(),
        text(&body, "catalog_version"),
        matched,
        text(&body, "counts_since")
    );
    Ok(ToolAnswer::new(summary)
        .items(
            &patterns,
            &[
                "id",
                "category",
                "severity",
                "count",
                "last_seen",
                "suggestion",
                "source",
            ],
            p.limit.unwrap_or(20).clamp(1, 500),
        )
        .total(Some(patterns.len() as u64))
        .next_if_truncated("raise limit, or filter by categories or min_severity")
        .fit(p.budget.bytes()))
}

pub async fn explain_template(api: &Api, key: &Caller, p: ExplainTemplate) -> Result<ToolAnswer, String> {
    let range = p.time_range.clone().unwrap_or_else(|| "1h".to_owned());
    let samples = api
        .get(
            &format!("{API}/query"),
            &[
                ("template_id", p.template_id.clone()),
                ("time_range", range.clone()),
                ("severity_threshold", "trace".to_owned()),
                ("limit", "5".to_owned()),
            ],
            key,
        )
        .await?;
    let lines = array(&samples, "lines");
    let service = lines.first().map(|l| text(l, "service"));
    let mut q = vec![("time_range", range.clone())];
    if let Some(s) = &service {
        q.push(("services", s.clone()));
    }
    let analysis = api.get(&format!("{API}/analyze"), &q, key).await?;
    let template = ["top_templates", "new_templates"]
        .iter()
        .flat_map(|k| array(&analysis, k))
        .find(|t| t.get("id").and_then(Value::as_str) == Some(p.template_id.as_str()))
        .cloned();
    let total = samples.get("total_matched").and_then(Value::as_u64);
    let summary = match &template {
        Some(t) => format!(
            "template {} in {}: \"{}\", {} lines ({} errors) since {}",
            p.template_id,
            text(t, "service"),
            text(t, "template"),
            t.get("count").cloned().unwrap_or(json!(0)),
            t.get("errors").cloned().unwrap_or(json!(0)),
            text(t, "first_seen")
        ),
        None if lines.is_empty() => format!("no line of template {} in the last {range}", p.template_id),
        None => format!(
            "template {}: {} lines in the last {range} (not among the service's top templates)",
            p.template_id,
            total.unwrap_or(0)
        ),
    };
    Ok(ToolAnswer::new(summary)
        .envelope(&samples)
        .items(lines, LINE_FIELDS, 5)
        .total(total)
        .detail("template", template.unwrap_or(Value::Null))
        .next_if_truncated("query_logs with this template_id lists more of its lines")
        .fit(p.budget.bytes()))
}

pub async fn recent_alerts(api: &Api, key: &Caller, p: RecentAlerts) -> Result<ToolAnswer, String> {
    let mut q = Vec::new();
    push(&mut q, "time_range", &p.time_range);
    push(&mut q, "services", &p.service);
    let body = api.get(&format!("{API}/analyze"), &q, key).await?;
    let after: i64 = match &p.cursor {
        Some(c) => c
            .parse()
            .map_err(|_| format!("cursor `{c}` is not one this tool gave: pass the `cursor` of a previous answer"))?,
        None => i64::MIN,
    };
    let seen = |a: &Value| a.get("last_seen_ns").and_then(Value::as_i64).unwrap_or(0);
    let mut alerts: Vec<Value> = array(&body, "anomalies")
        .iter()
        .filter(|a| seen(a) > after)
        .cloned()
        .collect();
    alerts.sort_by_key(|a| std::cmp::Reverse(seen(a)));
    let cursor = alerts.first().map(seen).unwrap_or(after.max(0));
    let summary = match alerts.first() {
        Some(a) => format!("{} alerts; newest: {}", alerts.len(), text(a, "summary")),
        None => "no new alerts".to_owned(),
    };
    Ok(ToolAnswer::new(summary)
        .envelope(&body)
        .items(
            &alerts,
            &[
                "key",
                "kind",
                "severity",
                "summary",
                "services",
                "count",
                "correlation_ids",
                "suggestion",
                "last_seen_ns",
            ],
            p.limit.unwrap_or(20).clamp(1, 200),
        )
        .total(Some(alerts.len() as u64))
        .detail("cursor", json!(cursor.to_string()))
        .next_if_truncated("raise limit, or pass service to narrow")
        .fit(p.budget.bytes()))
}
