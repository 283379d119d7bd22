//! Counters of what the core found, for the insights and cost dashboards: pattern hits by
//! category and service, alerts raised by kind, unpriced requests by model. Services and
//! models come from logs, so each label keeps a bounded set of values and counts the rest
//! as `other`.

use std::collections::HashSet;

use ailogs_pipeline::Outputs;
use parking_lot::Mutex;
use prometheus::IntCounterVec;

/// Services with their own `pattern_hits` series; the rest are `other`.
const MAX_SERVICES: usize = 100;
/// Models with their own `unpriced_requests` series; the rest are `other`.
const MAX_MODELS: usize = 50;

/// A label's values seen so far, up to `max`.
struct BoundedLabel {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl BoundedLabel {
    fn new(max: usize) -> Self {
        BoundedLabel {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    fn label<'a>(&self, value: &'a str) -> &'a str {
        let mut seen = self.seen.lock();
        if seen.contains(value) {
            return value;
        }
        if seen.len() < self.max {
            seen.insert(value.to_owned());
            return value;
        }
        "other"
    }
}

pub(super) struct InsightCounters {
    pattern_hits: IntCounterVec,
    alerts_raised: IntCounterVec,
    unpriced_requests: IntCounterVec,
    services: BoundedLabel,
    models: BoundedLabel,
}

impl InsightCounters {
    pub(super) fn new(counter: &dyn Fn(&str, &str, &[&str]) -> IntCounterVec) -> Self {
        InsightCounters {
            pattern_hits: counter(
                "ailogs_pattern_hits_total",
                "Lines that matched a catalog pattern, by category and service (at most 100 services, then `other`).",
                &["category", "service"],
            ),
            alerts_raised: counter(
                "ailogs_alerts_raised_total",
                "Alerts raised, by kind (pattern, anomaly, cascade, new_template); repeats folded into an alert are not counted.",
                &["kind"],
            ),
            unpriced_requests: counter(
                "ailogs_unpriced_requests_total",
                "AI requests no price covers, by model (at most 50 models, then `other`): their cost is unknown, not zero.",
                &["model"],
            ),
            services: BoundedLabel::new(MAX_SERVICES),
            models: BoundedLabel::new(MAX_MODELS),
        }
    }

    pub(super) fn count(&self, out: &Outputs) {
        // Tallied per batch first: one counter update per (category, service), not per line.
        let mut hits: Vec<(&str, &str, u64)> = Vec::new();
        for e in out.records.iter().filter(|e| !e.patterns.is_empty()) {
            for p in &e.patterns {
                let (category, service) = (p.category.as_str(), e.record.service.as_ref());
                match hits.iter_mut().find(|(c, s, _)| *c == category && *s == service) {
                    Some((_, _, n)) => *n += 1,
                    None => hits.push((category, service, 1)),
                }
            }
        }
        for (category, service, n) in hits {
            self.pattern_hits
                .with_label_values(&[category, self.services.label(service)])
                .inc_by(n);
        }
        for alert in out.alerts.iter().filter(|a| a.revision == 0) {
            self.alerts_raised.with_label_values(&[alert.kind.as_str()]).inc();
        }
        for (model, n) in &out.unpriced {
            self.unpriced_requests
                .with_label_values(&[self.models.label(model)])
                .inc_by(*n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_keeps_its_first_values_and_calls_the_rest_other() {
        let label = BoundedLabel::new(2);
        assert_eq!(label.label("a"), "a");
        assert_eq!(label.label("b"), "b");
        assert_eq!(label.label("c"), "other");
        assert_eq!(label.label("a"), "a", "a value seen before keeps its series");
    }

    #[test]
    fn unpriced_models_past_the_bound_share_one_series() {
        let m = crate::metrics::Metrics::new();
        let out = Outputs {
            unpriced: (0..MAX_MODELS + 5)
                .map(|i| (std::sync::Arc::from(format!("model-{i}")), 1))
                .chain([(std::sync::Arc::from("model-0"), 2)])
                .collect(),
            ..Outputs::default()
        };
        m.count_outputs(&out);
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("ailogs_unpriced_requests_total{"))
            .count();
        assert_eq!(series, MAX_MODELS + 1, "{text}");
        assert!(text.contains(r#"ailogs_unpriced_requests_total{model="model-0"} 3"#));
        assert!(text.contains(r#"ailogs_unpriced_requests_total{model="other"} 5"#));
    }
}
