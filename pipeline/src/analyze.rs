//! `/analyze`: what is wrong, from the views: known pattern hits with their fixes, the
//! busiest and the new templates, anomalies, cascades, and a ranked list of insights.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::anomaly::{Alert, AlertKind};
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::patterns::{Category, Severity};
use crate::record::Level;
use crate::templates::template_key;

#[derive(Debug, Clone, Default)]
pub struct AnalyzeFilter {
    pub services: Vec<String>,
    pub categories: Vec<Category>,
    pub min_severity: Option<Severity>,
}

impl AnalyzeFilter {
    fn service(&self, s: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|x| x == s)
    }

    fn rank(&self, severity: Severity, category: Option<Category>) -> bool {
        self.min_severity.is_none_or(|m| severity >= m)
            && (self.categories.is_empty() || category.is_some_and(|c| self.categories.contains(&c)))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PatternFinding {
    pub id: String,
    pub severity: Severity,
    pub category: Category,
    pub suggestion: String,
    pub count: u64,
    pub services: BTreeMap<String, u64>,
    pub first_seen: String,
    pub last_seen: String,
    pub sample: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateFinding {
    pub id: String,
    pub service: String,
    pub template: String,
    pub count: u64,
    pub errors: u64,
    pub first_seen: String,
    pub sample: String,
}

/// Cascades with the same path of services, as one finding.
#[derive(Debug, Clone, Serialize)]
pub struct CascadeFinding {
    /// Services in the order they first failed: the first is the likely origin.
    pub services: Vec<String>,
    pub requests: u64,
    /// Up to 10 of the requests.
    pub correlation_ids: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub samples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Insight {
    pub rank: usize,
    pub kind: &'static str,
    pub severity: Severity,
    pub title: String,
    /// One line: why it is listed.
    pub explanation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    #[serde(skip)]
    score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnalyzeReport {
    pub lines_examined: usize,
    pub patterns: Vec<PatternFinding>,
    pub top_templates: Vec<TemplateFinding>,
    pub new_templates: Vec<TemplateFinding>,
    pub anomalies: Vec<Alert>,
    pub cascades: Vec<CascadeFinding>,
    pub insights: Vec<Insight>,
}

const TOP_TEMPLATES: usize = 10;
const MAX_INSIGHTS: usize = 20;

/// Severity dominates (squared), the number of lines adds slowly (log): one critical line
/// outranks a handful of medium ones, a flood of them can outrank it.
fn score(s: Severity, count: u64, boost: f64) -> f64 {
    let w = match s {
        Severity::Low => 1.0,
        Severity::Medium => 2.0,
        Severity::High => 3.0,
        Severity::Critical => 4.0,
    };
    w * w * (1.0 + (count.max(1) as f64).ln()) * boost
}

/// `records`: the lines of the window (any order); `alerts`: the alerts raised in it;
/// `template_text`: the current text of a (service, template id).
pub fn analyze(
    records: &[Arc<Enriched>],
    alerts: &[Alert],
    template_text: &dyn Fn(&str, u64) -> Option<String>,
    filter: &AnalyzeFilter,
) -> AnalyzeReport {
    let mut patterns: HashMap<Arc<str>, PatternFinding> = HashMap::new();
    let mut templates: HashMap<(&str, u64), TemplateFinding> = HashMap::new();
    let mut new_templates = Vec::new();
    let mut examined = 0;
    let mut sorted: Vec<&Arc<Enriched>> = records.iter().filter(|r| filter.service(&r.service)).collect();
    sorted.sort_by_key(|r| (r.ts_ns, r.seq));
    for r in sorted {
        examined += 1;
        for m in &r.patterns {
            if !filter.rank(m.severity, Some(m.category)) {
                continue;
            }
            let f = patterns.entry(Arc::clone(&m.id)).or_insert_with(|| PatternFinding {
                id: m.id.to_string(),
                severity: m.severity,
                category: m.category,
                suggestion: m.suggestion.to_string(),
                count: 0,
                services: BTreeMap::new(),
                first_seen: format_rfc3339(r.ts_ns),
                last_seen: String::new(),
                sample: r.message.to_string(),
            });
            f.count += 1;
            *f.services.entry(r.service.to_string()).or_default() += 1;
            f.last_seen = format_rfc3339(r.ts_ns);
        }
        if let Some(t) = r.template {
            let f = templates
                .entry((r.service.as_ref(), t.id))
                .or_insert_with(|| TemplateFinding {
                    id: template_key(t.id),
                    service: r.service.to_string(),
                    template: template_text(&r.service, t.id).unwrap_or_else(|| r.message.to_string()),
                    count: 0,
                    errors: 0,
                    first_seen: format_rfc3339(r.ts_ns),
                    sample: r.message.to_string(),
                });
            f.count += 1;
            f.errors += u64::from(r.level >= Level::Error);
            if t.new {
                new_templates.push((r.service.as_ref(), t.id));
            }
        }
    }
    let mut patterns: Vec<PatternFinding> = patterns.into_values().collect();
    patterns.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.count.cmp(&a.count))
            .then(a.id.cmp(&b.id))
    });
    let mut top: Vec<TemplateFinding> = templates.values().cloned().collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    top.truncate(TOP_TEMPLATES);
    // A new template's counts are what it gathered in the window since it appeared.
    let new_templates: Vec<TemplateFinding> = new_templates
        .iter()
        .filter_map(|key| templates.get(key).cloned())
        .collect();
    let keep = |a: &&Alert| a.services.iter().any(|s| filter.service(s)) && filter.rank(a.severity, a.category);
    let anomalies: Vec<Alert> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Anomaly)
        .filter(keep)
        .cloned()
        .collect();
    let mut by_path: HashMap<Vec<String>, (CascadeFinding, i64, i64)> = HashMap::new();
    for a in alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Cascade)
        .filter(|a| a.services.iter().any(|s| filter.service(s)) && filter.min_severity.is_none_or(|m| a.severity >= m))
    {
        let (f, first, last) = by_path.entry(a.services.clone()).or_insert_with(|| {
            (
                CascadeFinding {
                    services: a.services.clone(),
                    requests: 0,
                    correlation_ids: Vec::new(),
                    first_seen: String::new(),
                    last_seen: String::new(),
                    samples: a.samples.clone(),
                },
                a.first_seen_ns,
                a.last_seen_ns,
            )
        });
        f.requests += 1;
        for c in &a.correlation_ids {
            if f.correlation_ids.len() < 10 && !f.correlation_ids.contains(c) {
                f.correlation_ids.push(c.clone());
            }
        }
        *first = (*first).min(a.first_seen_ns);
        *last = (*last).max(a.last_seen_ns);
    }
    let mut cascades: Vec<CascadeFinding> = by_path
        .into_values()
        .map(|(mut f, first, last)| {
            f.first_seen = format_rfc3339(first);
            f.last_seen = format_rfc3339(last);
            f
        })
        .collect();
    cascades.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.services.cmp(&b.services)));

    let mut insights = Vec::new();
    for c in &cascades {
        insights.push(Insight {
            rank: 0,
            kind: "cascade",
            severity: Severity::High,
            title: format!("Failure spread across {}", c.services.join(" -> ")),
            explanation: format!(
                "in {} requests (e.g. {}) errors in {} were followed by errors in {}",
                c.requests,
                c.correlation_ids.first().map_or("?", String::as_str),
                c.services[0],
                c.services[1..].join(", ")
            ),
            suggestion: Some(format!("start with {}, which failed first", c.services[0])),
            score: score(Severity::High, c.requests, 2.0),
        });
    }
    for a in &anomalies {
        // Template spikes are named by their text, not their id.
        let what = a
            .key
            .strip_prefix("template:")
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .zip(a.services.first())
            .and_then(|(id, service)| template_text(service, id))
            .map_or_else(|| a.key.clone(), |t| format!("\"{t}\""));
        insights.push(Insight {
            rank: 0,
            kind: "anomaly",
            severity: a.severity,
            title: format!("Spike of {what}"),
            explanation: a.summary.clone(),
            suggestion: a.suggestion.clone(),
            score: score(a.severity, a.count, 1.5),
        });
    }
    for p in &patterns {
        let services: Vec<&str> = p.services.keys().map(String::as_str).collect();
        insights.push(Insight {
            rank: 0,
            kind: "pattern",
            severity: p.severity,
            title: format!("{} ({} lines)", p.id, p.count),
            explanation: format!(
                "{} {} problem seen {} times in {} since {}",
                p.severity.as_str(),
                p.category.as_str(),
                p.count,
                services.join(", "),
                p.first_seen
            ),
            suggestion: Some(p.suggestion.clone()),
            score: score(p.severity, p.count, 1.0),
        });
    }
    for n in new_templates.iter().filter(|n| n.errors > 0) {
        insights.push(Insight {
            rank: 0,
            kind: "new_template",
            severity: Severity::Medium,
            title: format!("New error in {}", n.service),
            explanation: format!(
                "a kind of line never seen before, {} times since {}: {}",
                n.count, n.first_seen, n.template
            ),
            suggestion: None,
            score: score(Severity::Medium, n.errors, 1.0),
        });
    }
    insights.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.title.cmp(&b.title)));
    insights.truncate(MAX_INSIGHTS);
    for (i, x) in insights.iter_mut().enumerate() {
        x.rank = i + 1;
    }
    AnalyzeReport {
        lines_examined: examined,
        patterns,
        top_templates: top,
        new_templates,
        anomalies,
        cascades,
        insights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::PatternMatch;
    use crate::record::LogRecord;
    use crate::templates::TemplateTag;

    fn rec(ts: i64, service: &str, level: Level, msg: &str, tag: u64, new: bool) -> Arc<Enriched> {
        let mut e = Enriched::new(LogRecord::new(ts, service, level, msg));
        e.template = Some(TemplateTag { id: tag, new });
        Arc::new(e)
    }

    #[test]
    fn findings_are_counted_filtered_and_ranked() {
        let oom = PatternMatch {
            id: Arc::from("out_of_memory"),
            severity: Severity::Critical,
            category: Category::Infrastructure,
            suggestion: Arc::from("raise the limit"),
        };
        let rl = PatternMatch {
            id: Arc::from("rate_limit_exceeded"),
            severity: Severity::Medium,
            category: Category::Performance,
            suggestion: Arc::from("back off"),
        };
        let mut recs = Vec::new();
        for i in 0..5 {
            let mut e = (*rec(i, "gateway", Level::Warn, "429", 1, i == 0)).clone();
            e.patterns.push(rl.clone());
            recs.push(Arc::new(e));
        }
        let mut e = (*rec(9, "worker", Level::Error, "OOMKilled", 2, true)).clone();
        e.patterns.push(oom.clone());
        recs.push(Arc::new(e));
        recs.push(rec(10, "api", Level::Info, "ok", 3, false));
        let text = |_: &str, id: u64| Some(format!("template {id}"));
        let r = analyze(&recs, &[], &text, &AnalyzeFilter::default());
        assert_eq!(r.lines_examined, 7);
        assert_eq!(
            r.patterns.iter().map(|p| (p.id.as_str(), p.count)).collect::<Vec<_>>(),
            [("out_of_memory", 1), ("rate_limit_exceeded", 5)]
        );
        assert_eq!(r.top_templates[0].count, 5);
        assert_eq!(r.new_templates.len(), 2);
        assert_eq!(
            r.insights[0].title, "out_of_memory (1 lines)",
            "critical first: {:?}",
            r.insights
        );
        assert!(
            r.insights
                .iter()
                .any(|i| i.kind == "new_template" && i.title.contains("worker"))
        );

        let only = AnalyzeFilter {
            categories: vec![Category::Performance],
            ..Default::default()
        };
        let r = analyze(&recs, &[], &text, &only);
        assert_eq!(r.patterns.len(), 1);
        let api = AnalyzeFilter {
            services: vec!["api".into()],
            min_severity: Some(Severity::High),
            ..Default::default()
        };
        let r = analyze(&recs, &[], &text, &api);
        assert_eq!((r.lines_examined, r.patterns.len()), (1, 0));
    }
}
