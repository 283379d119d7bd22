//! The durable side of the analysis: per batch, the pattern hits per (pattern, service,
//! minute), the templates seen, and the requests completed, written in the same transaction
//! as the batch's offsets (the `detected_patterns`, `log_templates` and `ai_correlations`
//! views).

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::correlate::RequestAnalysis;
use crate::enrich::Enriched;

const MINUTE_NS: i64 = 60 * 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatternMinute {
    pub pattern_id: Arc<str>,
    pub service: String,
    pub minute_ns: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDelta {
    pub service: String,
    /// The template's text when the batch was mined (it may generalize later).
    pub template: String,
    pub first_ns: i64,
    pub last_ns: i64,
    pub count: i64,
}

#[derive(Debug, Default)]
pub struct InsightBatch {
    pub patterns: HashMap<PatternMinute, i64>,
    /// Keyed by stable template id.
    pub templates: HashMap<u64, TemplateDelta>,
    /// Requests completed since the last commit.
    pub correlations: Vec<RequestAnalysis>,
}

impl InsightBatch {
    /// Adds a record's pattern hits and, when it is tagged, its template (text filled in by
    /// `name_templates` once the whole batch is mined).
    pub fn add(&mut self, e: &Enriched) {
        let rec = &e.record;
        let minute_ns = rec.ts_ns.div_euclid(MINUTE_NS) * MINUTE_NS;
        for m in &e.patterns {
            *self
                .patterns
                .entry(PatternMinute {
                    pattern_id: Arc::clone(&m.id),
                    service: rec.service.to_string(),
                    minute_ns,
                })
                .or_default() += 1;
        }
        let Some(tag) = e.template else { return };
        match self.templates.get_mut(&tag.id) {
            Some(t) => {
                t.first_ns = t.first_ns.min(rec.ts_ns);
                t.last_ns = t.last_ns.max(rec.ts_ns);
                t.count += 1;
            }
            None => {
                self.templates.insert(
                    tag.id,
                    TemplateDelta {
                        service: rec.service.to_string(),
                        template: rec.message.to_string(),
                        first_ns: rec.ts_ns,
                        last_ns: rec.ts_ns,
                        count: 1,
                    },
                );
            }
        }
    }

    /// Sets each template's text to its current one (`template_text(service, id)`); a
    /// template already evicted keeps its first line.
    pub fn name_templates(&mut self, template_text: impl Fn(&str, u64) -> Option<String>) {
        for (id, t) in &mut self.templates {
            if let Some(text) = template_text(&t.service, *id) {
                t.template = text;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && self.templates.is_empty() && self.correlations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::record::{Level, LogRecord};

    fn line(ts_s: i64, service: &str, message: &str) -> Enriched {
        Enriched::new(LogRecord::new(ts_s * 1_000_000_000, service, Level::Error, message))
    }

    #[test]
    fn counts_hits_per_minute_and_templates_with_their_final_text() {
        let mut templates = crate::templates::TemplateIndex::new(crate::templates::DrainConfig::default(), 10);
        let mut records = vec![
            line(0, "api", "user 1 failed: connection refused"),
            line(59, "api", "user 2 failed: connection refused"),
            line(60, "api", "user 3 failed: connection refused"),
            line(61, "gw", "cache flushed"),
        ];
        let pattern = crate::patterns::PatternMatch {
            id: Arc::from("connection_refused"),
            severity: crate::patterns::Severity::High,
            category: crate::patterns::Category::Connectivity,
            suggestion: Arc::from("check the peer"),
        };
        for r in &mut records[..3] {
            r.patterns.push(pattern.clone());
        }
        for r in &mut records {
            r.template = Some(templates.tag(&r.record.service, &r.record.message));
        }
        let mut batch = InsightBatch::default();
        for r in &records {
            batch.add(r);
        }
        batch.name_templates(|s, id| templates.template(s, id));
        let key = |minute_ns| PatternMinute {
            pattern_id: Arc::from("connection_refused"),
            service: "api".into(),
            minute_ns,
        };
        assert_eq!(batch.patterns.get(&key(0)), Some(&2));
        assert_eq!(batch.patterns.get(&key(MINUTE_NS)), Some(&1));
        assert_eq!(batch.patterns.len(), 2);
        assert_eq!(batch.templates.len(), 2);
        let api = &batch.templates[&records[0].template.map(|t| t.id).unwrap_or_default()];
        assert_eq!(api.template, "user <*> failed: connection refused");
        assert_eq!((api.first_ns, api.last_ns, api.count), (0, 60 * 1_000_000_000, 3));
    }
}
