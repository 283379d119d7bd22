//! Turns selected lines into the answer an agent reads: lines per verbosity, groups,
//! conversations, performance stats, a timeline or a narrative, and a one-line summary.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::digest::{ConversationTotals, Digest, GroupDigest};
use super::selection::{Context, Entry, Neighbours, Selected, Window};
use super::spec::{Aggregation, Format, Mode, QuerySpec, Verbosity};
use super::summary::{narrative, narrative_head, summary};
use crate::classify::highlights;
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::record::LogRecord;

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

/// Renders what a source selected: lines (or conversations), groups, a timeline or a
/// narrative, with the summary and, in performance mode, the latency table.
pub fn render(spec: &QuerySpec, window: Window, selected: Selected, context: &Context<'_>) -> QueryOutcome {
    if spec.aggregation != Aggregation::None {
        return groups(spec, window, selected);
    }
    let Selected {
        digest,
        entries,
        distinct,
        ..
    } = selected;
    let truncated = entries.len() < distinct;
    let best = entries.first().map(|e| &*e.rec);
    let mut out = outcome(
        spec,
        digest.total,
        entries.len(),
        truncated,
        summary(spec, &digest, best),
    );
    if spec.mode == Mode::Performance {
        out.stats = Some(digest.latency.iter().map(|r| json!(r)).collect());
    }
    match spec.format {
        Format::Structured => {
            let recs: Vec<&Arc<Enriched>> = entries.iter().map(|e| &e.rec).collect();
            let mut around = if context.enabled() {
                context.around_each(&recs).into_iter().map(Some).collect()
            } else {
                vec![None; entries.len()]
            };
            let rendered: Vec<Value> = entries
                .iter()
                .zip(around.iter_mut())
                .map(|(e, n)| entry_json(spec, e, n.take()))
                .collect();
            if spec.mode == Mode::Conversation {
                out.conversations = Some(conversations(&digest, &entries, rendered));
            } else {
                out.lines = Some(rendered);
            }
        }
        Format::Timeline => out.timeline = Some(timeline(&entries)),
        Format::Narrative => out.narrative = Some(narrative(spec, window, &digest, &entries)),
    }
    out
}

fn groups(spec: &QuerySpec, window: Window, selected: Selected) -> QueryOutcome {
    let Selected {
        digest,
        groups: kept,
        distinct_groups,
        ..
    } = selected;
    let slowest = kept
        .iter()
        .map(|g| &*g.sample)
        .max_by(|a, b| a.duration_ms.unwrap_or(0.0).total_cmp(&b.duration_ms.unwrap_or(0.0)));
    let mut out = outcome(
        spec,
        digest.total,
        kept.len(),
        kept.len() < distinct_groups,
        summary(spec, &digest, slowest),
    );
    match spec.format {
        Format::Structured => out.groups = Some(kept.iter().map(|g| group_json(spec, g)).collect()),
        Format::Timeline => {
            let mut rows: Vec<&GroupDigest> = kept.iter().collect();
            rows.sort_by_key(|g| g.first_ns);
            out.timeline = Some(rows.into_iter().map(|g| group_json(spec, g)).collect());
        }
        Format::Narrative => {
            let mut text = narrative_head(spec, window, &digest);
            for g in kept.iter().take(10) {
                let _ = write!(
                    text,
                    " {} ×{} ({}–{}).",
                    g.key,
                    g.count,
                    format_rfc3339(g.first_ns),
                    format_rfc3339(g.last_ns)
                );
            }
            out.narrative = Some(text);
        }
    }
    out
}

fn group_json(spec: &QuerySpec, g: &GroupDigest) -> Value {
    let mut v = json!({
        "key": g.key,
        "count": g.count,
        "first_seen": format_rfc3339(g.first_ns),
        "last_seen": format_rfc3339(g.last_ns),
        "levels": g.levels,
        "services": g.services,
        "sample": line_json(spec.verbosity.min(Verbosity::Standard), &g.sample),
    });
    if !g.correlation_ids.is_empty() {
        v["correlation_ids"] = json!(g.correlation_ids);
    }
    v
}

fn entry_json(spec: &QuerySpec, e: &Entry, context: Option<Neighbours>) -> Value {
    let mut v = line_json(spec.verbosity, &e.rec);
    let obj = v.as_object_mut().expect("line_json builds an object");
    if e.count > 1 {
        obj.insert("repeat_count".into(), e.count.into());
        obj.insert("first_seen".into(), format_rfc3339(e.first_ns).into());
        obj.insert("last_seen".into(), format_rfc3339(e.last_ns).into());
    }
    // The enrichments, whichever store the line came from (views or Loki).
    if spec.verbosity >= Verbosity::Standard {
        if !e.rec.patterns.is_empty() {
            let ids: Vec<&str> = e.rec.patterns.iter().map(|p| p.id.as_ref()).collect();
            obj.insert("patterns".into(), json!(ids));
        }
        if let Some(t) = e.rec.template {
            obj.insert("template_id".into(), crate::templates::template_key(t.id).into());
        }
    }
    if spec.mode == Mode::Audit
        && let Some(category) = e.rec.audit
    {
        obj.insert("audit_category".into(), json!(category));
    }
    if spec.highlight {
        obj.insert("highlights".into(), json!(highlights(&e.rec)));
    }
    if let Some((before, after)) = context {
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
    m.insert("service".into(), (*r.service).into());
    m.insert("level".into(), r.level.as_str().into());
    m.insert("message".into(), (*r.message).into());
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
            if let Some(metadata) = &r.metadata {
                put("metadata", json!(metadata));
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

fn timeline(entries: &[Entry]) -> Vec<Value> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.first_ns);
    let start = sorted.first().map_or(0, |e| e.first_ns);
    sorted
        .into_iter()
        .map(|e| {
            let r = &e.rec;
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

fn conversations(digest: &Digest, entries: &[Entry], rendered: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut current: Option<&str> = None;
    for (e, line) in entries.iter().zip(rendered) {
        let id = e.rec.conversation_id.as_deref().unwrap_or("");
        if current != Some(id) {
            current = Some(id);
            out.push(conversation_json(id, digest.conversations.get(id)));
        }
        if let Some(last) = out.last_mut()
            && let Some(lines) = last["lines"].as_array_mut()
        {
            lines.push(line);
        }
    }
    out
}

fn conversation_json(id: &str, totals: Option<&ConversationTotals>) -> Value {
    let empty = ConversationTotals::default();
    let c = totals.unwrap_or(&empty);
    json!({
        "conversation_id": id,
        "workspace_id": c.workspace_id,
        "first_seen": format_rfc3339(c.first_ns),
        "last_seen": format_rfc3339(c.last_ns),
        "lines_total": c.lines,
        "errors": c.errors,
        "tokens_used": c.tokens_used,
        "models": c.models,
        "services": c.services,
        "lines": [],
    })
}
