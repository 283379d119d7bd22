//! The sentences of an answer: the one-line summary every answer starts with, and the
//! narrative format. Written from the digest and the returned lines only.

use std::fmt::Write as _;

use super::digest::Digest;
use super::selection::{Entry, Window};
use super::spec::{Mode, QuerySpec};
use crate::classify::{SLOW_MS, highlights};
use crate::enrich::Enriched;
use crate::normalize::level::prefix;
use crate::normalize::time::format_rfc3339;
use crate::record::Level;

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

/// The first thing an agent reads: one or two sentences. `slowest` is the best-ranked
/// line of a performance answer.
pub fn summary(spec: &QuerySpec, d: &Digest, slowest: Option<&Enriched>) -> String {
    let n = d.total;
    let scope = if spec.services.is_empty() {
        "all services".to_owned()
    } else {
        spec.services.join(", ")
    };
    if n == 0 {
        let when = if spec.scoped_to_id() && !spec.time_range_given && !spec.is_absolute() {
            "among all retained lines".to_owned()
        } else {
            spec.window_phrase()
        };
        return format!("No matching lines {when} for {scope}.");
    }
    let top = d
        .top_shapes
        .first()
        .map(|(s, c)| format!(" Most frequent: \"{s}\" ×{c}."))
        .unwrap_or_default();
    let services = list_services(&d.services, 5);
    match spec.mode {
        Mode::Errors => {
            let fatal = d.levels[Level::Fatal as usize];
            format!(
                "{n} error lines ({fatal} fatal) {}: {services}.{top}",
                spec.window_phrase()
            )
        }
        Mode::Troubleshoot => {
            let errors = d.errors();
            format!(
                "{n} lines at {} or above {} ({errors} errors, {} warnings): {services}.{top}",
                spec.min_level(),
                spec.window_phrase(),
                n - errors,
            )
        }
        Mode::Performance => {
            let slowest = slowest
                .map(|r| {
                    format!(
                        " Slowest: {} {} ms ({}).",
                        r.service,
                        r.duration_ms.unwrap_or(0.0).round(),
                        prefix(&r.message, 80)
                    )
                })
                .unwrap_or_default();
            format!(
                "{n} timed operations {}, {} at or over {SLOW_MS} ms.{slowest}",
                spec.window_phrase(),
                d.slow,
            )
        }
        Mode::Audit => {
            let cats: Vec<String> = d.audit.iter().map(|(c, k)| format!("{c} {k}")).collect();
            format!(
                "{n} audit events {}: {}. Services: {services}.",
                spec.window_phrase(),
                cats.join(", "),
            )
        }
        Mode::Conversation => {
            format!(
                "{} conversations with {n} lines {}; {} with errors.",
                d.conversation_count,
                spec.window_phrase(),
                d.conversations_failing
            )
        }
    }
}

pub fn narrative_head(spec: &QuerySpec, window: Window, d: &Digest) -> String {
    let span = if window.is_unbounded() {
        "Among all retained lines".to_owned()
    } else {
        format!(
            "Between {} and {}",
            format_rfc3339(window.start_ns),
            format_rfc3339(window.end_ns)
        )
    };
    let mut text = format!("{span}, {} lines matched in {} mode", d.total, spec.mode.as_str());
    if d.services.is_empty() {
        text.push('.');
    } else {
        let noun = if d.services.len() == 1 { "service" } else { "services" };
        let _ = write!(
            text,
            " across {} {noun} ({}).",
            d.services.len(),
            list_services(&d.services, 8)
        );
    }
    text
}

pub fn narrative(spec: &QuerySpec, window: Window, d: &Digest, entries: &[Entry]) -> String {
    let mut text = narrative_head(spec, window, d);
    if d.total == 0 {
        return text;
    }
    if !d.top_shapes.is_empty() {
        let list: Vec<String> = d.top_shapes.iter().map(|(s, c)| format!("\"{s}\" ×{c}")).collect();
        let _ = write!(text, " Most frequent: {}.", list.join("; "));
    }
    let _ = write!(
        text,
        " First at {}, latest at {}.",
        format_rfc3339(d.first_ns),
        format_rfc3339(d.last_ns)
    );
    let notable: Vec<String> = entries
        .iter()
        .take(5)
        .map(|e| {
            let r = &e.rec;
            let mut s = format!(
                "[{}] {} {}: {}",
                format_rfc3339(r.ts_ns),
                r.service,
                r.level.as_str().to_uppercase(),
                prefix(&r.message, 160)
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
