//! Turns selected lines into the answer an agent reads: lines per verbosity, groups,
//! conversations, performance stats, a timeline or a narrative, and a one-line summary.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::selection::{Context, Entry, Group, Window};
use super::spec::{Format, Mode, QuerySpec, Verbosity};
use crate::classify::highlights;
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::record::{Level, LogRecord};

/// What a query found. The caller wraps it in the envelope (source, freshness, window).
#[derive(Debug, Serialize)]
pub struct QueryOutcome {
    pub mode: Mode,
    pub format: Format,
    /// Lines that matched every filter, before de-duplication and `limit`.
    pub total_matched: usize,
    /// Entries in this answer (lines, or groups with an aggregation).
    pub returned: usize,
    /// True when `limit` left matching entries out.
    pub truncated: bool,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversations: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
}

impl QueryOutcome {
    /// The structured lines, or an empty slice for other shapes.
    pub fn lines_ref(&self) -> &[Value] {
        self.lines.as_deref().unwrap_or(&[])
    }
}

fn outcome(spec: &QuerySpec, total_matched: usize, returned: usize, truncated: bool, summary: String) -> QueryOutcome {
    QueryOutcome {
        mode: spec.mode,
        format: spec.format,
        total_matched,
        returned,
        truncated,
        summary,
        lines: None,
        conversations: None,
        groups: None,
        stats: None,
        timeline: None,
        narrative: None,
    }
}

pub(super) fn lines(
    spec: &QuerySpec,
    window: Window,
    matched: &[&Arc<Enriched>],
    total_matched: usize,
    distinct: usize,
    entries: Vec<Entry<'_>>,
    context: &Context<'_>,
) -> QueryOutcome {
    let truncated = entries.len() < distinct;
    let mut out = outcome(spec, total_matched, entries.len(), truncated, summary(spec, matched));
    if spec.mode == Mode::Performance {
        out.stats = Some(performance_stats(matched));
    }
    match spec.format {
        Format::Structured => {
            let rendered: Vec<Value> = entries.iter().map(|e| entry_json(spec, e, context)).collect();
            if spec.mode == Mode::Conversation {
                out.conversations = Some(conversations(spec, matched, &entries, rendered));
            } else {
                out.lines = Some(rendered);
            }
        }
        Format::Timeline => out.timeline = Some(timeline(&entries)),
        Format::Narrative => out.narrative = Some(narrative(spec, window, matched, &entries)),
    }
    out
}

pub(super) fn groups(
    spec: &QuerySpec,
    window: Window,
    matched: &[&Arc<Enriched>],
    groups: Vec<Group<'_>>,
) -> QueryOutcome {
    let distinct = groups.len();
    let kept = &groups[..distinct.min(spec.limit)];
    let mut out = outcome(
        spec,
        matched.len(),
        kept.len(),
        kept.len() < distinct,
        summary(spec, matched),
    );
    match spec.format {
        Format::Structured => out.groups = Some(kept.iter().map(|g| group_json(spec, g)).collect()),
        Format::Timeline => {
            let mut rows: Vec<&Group<'_>> = kept.iter().collect();
            rows.sort_by_key(|g| first_last(&g.lines).0);
            out.timeline = Some(rows.into_iter().map(|g| group_json(spec, g)).collect());
        }
        Format::Narrative => {
            let mut text = narrative_head(spec, window, matched);
            for g in kept.iter().take(10) {
                let (first, last) = first_last(&g.lines);
                let _ = write!(
                    text,
                    " {} ×{} ({}–{}).",
                    g.key,
                    g.lines.len(),
                    clock(first),
                    clock(last)
                );
            }
            out.narrative = Some(text);
        }
    }
    out
}

fn first_last(lines: &[&Arc<Enriched>]) -> (i64, i64) {
    let first = lines.iter().map(|r| r.ts_ns).min().unwrap_or(0);
    let last = lines.iter().map(|r| r.ts_ns).max().unwrap_or(0);
    (first, last)
}

fn group_json(spec: &QuerySpec, g: &Group<'_>) -> Value {
    let (first, last) = first_last(&g.lines);
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    let mut services: Vec<&str> = Vec::new();
    let mut correlation_ids: Vec<&str> = Vec::new();
    for r in &g.lines {
        *levels.entry(r.level.as_str()).or_default() += 1;
        if !services.contains(&r.service.as_str()) {
            services.push(&r.service);
        }
        if let Some(c) = r.correlation_id.as_deref()
            && correlation_ids.len() < 5
            && !correlation_ids.contains(&c)
        {
            correlation_ids.push(c);
        }
    }
    let mut v = json!({
        "key": g.key,
        "count": g.lines.len(),
        "first_seen": format_rfc3339(first),
        "last_seen": format_rfc3339(last),
        "levels": levels,
        "services": services,
        "sample": line_json(spec.verbosity.min(Verbosity::Standard), g.lines[0]),
    });
    if !correlation_ids.is_empty() {
        v["correlation_ids"] = json!(correlation_ids);
    }
    v
}

fn entry_json(spec: &QuerySpec, e: &Entry<'_>, context: &Context<'_>) -> Value {
    let mut v = line_json(spec.verbosity, e.rec);
    let obj = v.as_object_mut().expect("line_json builds an object");
    if e.count > 1 {
        obj.insert("repeat_count".into(), e.count.into());
        obj.insert("first_seen".into(), format_rfc3339(e.first_ns).into());
        obj.insert("last_seen".into(), format_rfc3339(e.last_ns).into());
    }
    if spec.mode == Mode::Audit
        && let Some(category) = e.rec.audit
    {
        obj.insert("audit_category".into(), json!(category));
    }
    if spec.highlight {
        obj.insert("highlights".into(), json!(highlights(e.rec)));
    }
    if context.enabled() {
        let (before, after) = context.around(e.rec);
        let minimal = |rs: Vec<Arc<Enriched>>| rs.iter().map(|r| line_json(Verbosity::Minimal, r)).collect::<Vec<_>>();
        obj.insert(
            "context".into(),
            json!({ "before": minimal(before), "after": minimal(after) }),
        );
    }
    v
}

/// One line as JSON; `verbosity` decides how many fields.
pub fn line_json(verbosity: Verbosity, r: &LogRecord) -> Value {
    let mut m = Map::new();
    m.insert("t".into(), format_rfc3339(r.ts_ns).into());
    m.insert("service".into(), r.service.clone().into());
    m.insert("level".into(), r.level.as_str().into());
    m.insert("message".into(), r.message.clone().into());
    if verbosity >= Verbosity::Standard {
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.into(), v);
            }
        };
        put("correlation_id", json!(r.correlation_id));
        put("conversation_id", json!(r.conversation_id));
        put("session_id", json!(r.session_id));
        put("workspace_id", json!(r.workspace_id));
        put("user_id", json!(r.user_id));
        put("request_type", json!(r.request_type));
        put("model", json!(r.model));
        put("input_tokens", json!(r.input_tokens));
        put("output_tokens", json!(r.output_tokens));
        put("tokens_used", json!(r.tokens_used));
        put("duration_ms", json!(r.duration_ms));
        put("success", json!(r.success));
        put("error", json!(r.error));
        if verbosity >= Verbosity::Detailed {
            put("ts_ns", json!(r.ts_ns));
            put("cached_tokens", json!(r.cached_tokens));
            put("cost_usd", json!(r.cost_usd));
            put("prompt_hash", json!(r.prompt_hash));
            put("format", json!(r.format));
            if !r.labels.is_empty() {
                put("labels", json!(r.labels));
            }
            if !r.metadata.is_empty() {
                put("metadata", json!(r.metadata));
            }
            if !r.extra.is_empty() {
                put("extra", json!(r.extra));
            }
            if r.dropped_fields > 0 {
                put("dropped_fields", json!(r.dropped_fields));
            }
        }
    }
    Value::Object(m)
}

fn timeline(entries: &[Entry<'_>]) -> Vec<Value> {
    let mut sorted: Vec<&Entry<'_>> = entries.iter().collect();
    sorted.sort_by_key(|e| e.first_ns);
    let start = sorted.first().map_or(0, |e| e.first_ns);
    sorted
        .into_iter()
        .map(|e| {
            let r = e.rec;
            let mut v = json!({
                "t": format_rfc3339(e.first_ns),
                "offset_ms": (e.first_ns - start) / 1_000_000,
                "service": r.service,
                "level": r.level,
                "message": r.message,
            });
            if let Some(c) = &r.correlation_id {
                v["correlation_id"] = json!(c);
            }
            if let Some(c) = &r.conversation_id {
                v["conversation_id"] = json!(c);
            }
            if let Some(d) = r.duration_ms {
                v["duration_ms"] = json!(d);
            }
            if e.count > 1 {
                v["repeat_count"] = json!(e.count);
            }
            v
        })
        .collect()
}

fn conversations(
    spec: &QuerySpec,
    matched: &[&Arc<Enriched>],
    entries: &[Entry<'_>],
    rendered: Vec<Value>,
) -> Vec<Value> {
    let mut totals: HashMap<&str, Vec<&Arc<Enriched>>> = HashMap::default();
    for r in matched {
        totals
            .entry(r.conversation_id.as_deref().unwrap_or(""))
            .or_default()
            .push(r);
    }
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<&str> = None;
    for (e, line) in entries.iter().zip(rendered) {
        let id = e.rec.conversation_id.as_deref().unwrap_or("");
        if current != Some(id) {
            current = Some(id);
            let all = totals.get(id).map(Vec::as_slice).unwrap_or(&[]);
            out.push(conversation_json(spec, id, all));
        }
        if let Some(last) = out.last_mut()
            && let Some(lines) = last["lines"].as_array_mut()
        {
            lines.push(line);
        }
    }
    out
}

fn conversation_json(spec: &QuerySpec, id: &str, all: &[&Arc<Enriched>]) -> Value {
    let (first, last) = first_last(all);
    let mut services: Vec<&str> = Vec::new();
    let mut models: BTreeMap<&str, usize> = BTreeMap::new();
    let mut workspace = None;
    for r in all {
        if !services.contains(&r.service.as_str()) {
            services.push(&r.service);
        }
        if let Some(m) = r.model.as_deref() {
            *models.entry(m).or_default() += 1;
        }
        workspace = workspace.or(r.workspace_id.as_deref());
    }
    let _ = spec;
    json!({
        "conversation_id": id,
        "workspace_id": workspace,
        "first_seen": format_rfc3339(first),
        "last_seen": format_rfc3339(last),
        "lines_total": all.len(),
        "errors": all.iter().filter(|r| r.is_failure()).count(),
        "tokens_used": all.iter().filter_map(|r| r.tokens_used).sum::<u64>(),
        "models": models,
        "services": services,
        "lines": [],
    })
}

/// Duration percentiles per (service, operation); operation is the request type, else model.
fn performance_stats(matched: &[&Arc<Enriched>]) -> Vec<Value> {
    let mut by_op: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for r in matched {
        if let Some(d) = r.duration_ms {
            let op = r.request_type.as_deref().or(r.model.as_deref()).unwrap_or("-");
            by_op.entry((&r.service, op)).or_default().push(d);
        }
    }
    let mut rows: Vec<(f64, Value)> = by_op
        .into_iter()
        .map(|((service, op), mut ds)| {
            ds.sort_by(f64::total_cmp);
            let p95 = percentile(&ds, 95.0);
            let row = json!({
                "service": service,
                "operation": op,
                "count": ds.len(),
                "p50_ms": percentile(&ds, 50.0),
                "p95_ms": p95,
                "p99_ms": percentile(&ds, 99.0),
                "max_ms": ds.last().copied().unwrap_or(0.0),
                "mean_ms": ds.iter().sum::<f64>() / ds.len() as f64,
            });
            (p95, row)
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    rows.into_iter().map(|(_, v)| v).collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Counts per service, most lines first.
fn per_service(matched: &[&Arc<Enriched>]) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::default();
    for r in matched {
        *counts.entry(&r.service).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().map(|(s, n)| (s.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn top_shapes(matched: &[&Arc<Enriched>], n: usize) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::default();
    for r in matched.iter().take(20_000) {
        *counts.entry(r.shape.clone()).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn list_services(services: &[(String, usize)], max: usize) -> String {
    let mut s: Vec<String> = services
        .iter()
        .take(max)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if services.len() > max {
        s.push(format!("{} more", services.len() - max));
    }
    s.join(", ")
}

/// The first thing an agent reads: one or two sentences.
fn summary(spec: &QuerySpec, matched: &[&Arc<Enriched>]) -> String {
    let n = matched.len();
    let scope = if spec.services.is_empty() {
        "all services".to_owned()
    } else {
        spec.services.join(", ")
    };
    if n == 0 {
        let when = if spec.scoped_to_id() && !spec.time_range_given {
            "among all retained lines".to_owned()
        } else {
            format!("in the last {}", spec.time_range)
        };
        return format!("No matching lines {when} for {scope}.");
    }
    let services = per_service(matched);
    let top = top_shapes(matched, 1);
    let top = top
        .first()
        .map(|(s, c)| format!(" Most frequent: \"{s}\" ×{c}."))
        .unwrap_or_default();
    match spec.mode {
        Mode::Errors => {
            let fatal = matched.iter().filter(|r| r.level == Level::Fatal).count();
            format!(
                "{n} error lines ({fatal} fatal) in the last {}: {}.{top}",
                spec.time_range,
                list_services(&services, 5)
            )
        }
        Mode::Troubleshoot => {
            let errors = matched.iter().filter(|r| r.level >= Level::Error).count();
            format!(
                "{n} lines at {} or above in the last {} ({errors} errors, {} warnings): {}.{top}",
                spec.min_level(),
                spec.time_range,
                n - errors,
                list_services(&services, 5)
            )
        }
        Mode::Performance => {
            let slowest = matched[0];
            let slow = matched
                .iter()
                .filter(|r| r.duration_ms.unwrap_or(0.0) >= crate::classify::SLOW_MS)
                .count();
            format!(
                "{n} timed operations in the last {}, {slow} at or over {} ms. Slowest: {} {} ms ({}).",
                spec.time_range,
                crate::classify::SLOW_MS,
                slowest.service,
                slowest.duration_ms.unwrap_or(0.0).round(),
                crate::normalize::level::prefix(&slowest.message, 80)
            )
        }
        Mode::Audit => {
            let mut cats: BTreeMap<String, usize> = BTreeMap::new();
            for r in matched {
                if let Some(c) = r.audit {
                    *cats.entry(format!("{c:?}").to_lowercase()).or_default() += 1;
                }
            }
            let cats: Vec<String> = cats.iter().map(|(c, k)| format!("{c} {k}")).collect();
            format!(
                "{n} audit events in the last {}: {}. Services: {}.",
                spec.time_range,
                cats.join(", "),
                list_services(&services, 5)
            )
        }
        Mode::Conversation => {
            let mut convs: HashMap<&str, bool> = HashMap::default();
            for r in matched {
                let failed = convs.entry(r.conversation_id.as_deref().unwrap_or("")).or_default();
                *failed |= r.is_failure();
            }
            let failing = convs.values().filter(|f| **f).count();
            format!(
                "{} conversations with {n} lines in the last {}; {failing} with errors.",
                convs.len(),
                spec.time_range
            )
        }
    }
}

fn clock(ts_ns: i64) -> String {
    format_rfc3339(ts_ns)
}

fn narrative_head(spec: &QuerySpec, window: Window, matched: &[&Arc<Enriched>]) -> String {
    let services = per_service(matched);
    let span = if window.is_unbounded() {
        "Among all retained lines".to_owned()
    } else {
        format!("Between {} and {}", clock(window.start_ns), clock(window.end_ns))
    };
    let mut text = format!("{span}, {} lines matched in {} mode", matched.len(), spec.mode.as_str());
    if services.is_empty() {
        text.push('.');
    } else {
        let noun = if services.len() == 1 { "service" } else { "services" };
        let _ = write!(
            text,
            " across {} {noun} ({}).",
            services.len(),
            list_services(&services, 8)
        );
    }
    text
}

fn narrative(spec: &QuerySpec, window: Window, matched: &[&Arc<Enriched>], entries: &[Entry<'_>]) -> String {
    let mut text = narrative_head(spec, window, matched);
    if matched.is_empty() {
        return text;
    }
    let shapes = top_shapes(matched, 3);
    if !shapes.is_empty() {
        let list: Vec<String> = shapes.iter().map(|(s, c)| format!("\"{s}\" ×{c}")).collect();
        let _ = write!(text, " Most frequent: {}.", list.join("; "));
    }
    let (first, last) = first_last(matched);
    let _ = write!(text, " First at {}, latest at {}.", clock(first), clock(last));
    let notable: Vec<String> = entries
        .iter()
        .take(5)
        .map(|e| {
            let r = e.rec;
            let mut s = format!(
                "[{}] {} {}: {}",
                clock(r.ts_ns),
                r.service,
                r.level.as_str().to_uppercase(),
                crate::normalize::level::prefix(&r.message, 160)
            );
            if let Some(c) = &r.correlation_id {
                let _ = write!(s, " (correlation {c})");
            }
            if let Some(d) = r.duration_ms {
                let _ = write!(s, " took {d:.0} ms");
            }
            if spec.highlight {
                let tags = highlights(r);
                if !tags.is_empty() {
                    let _ = write!(s, " **{}**", tags.join(", "));
                }
            }
            s
        })
        .collect();
    let _ = write!(text, " Notable: {}", notable.join("; "));
    text.push('.');
    text
}
