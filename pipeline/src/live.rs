//! The per-line analysis that needs state across lines: templates, anomalies and the
//! alerts they raise, request correlation. One per process (the embedded workers share it
//! under a lock taken once per batch; a Kafka consumer owns its own).

use crate::anomaly::{Alert, AlertBook, AlertKind, Detector, DetectorConfig};
use crate::correlate::Correlations;
use crate::enrich::Enriched;
use crate::templates::{DrainConfig, TemplateIndex};

/// Services with their own template miner; lines of further services share one.
pub const MAX_TEMPLATE_SERVICES: usize = 1000;
/// Alerts kept for /analyze and, later, resuming stream subscribers.
pub const MAX_ALERTS: usize = 10_000;
/// Repeats of an alert within this window fold into it.
pub const ALERT_FOLD_WINDOW_NS: i64 = 5 * 60 * 1_000_000_000;

pub struct LiveAnalysis {
    pub templates: TemplateIndex,
    pub detector: Detector,
    pub alerts: AlertBook,
    pub correlations: Correlations,
}

impl Default for LiveAnalysis {
    fn default() -> Self {
        LiveAnalysis {
            templates: TemplateIndex::new(DrainConfig::default(), MAX_TEMPLATE_SERVICES),
            detector: Detector::new(DetectorConfig::default()),
            alerts: AlertBook::new(MAX_ALERTS, ALERT_FOLD_WINDOW_NS),
            correlations: Correlations::default(),
        }
    }
}

impl LiveAnalysis {
    /// Tags each record with its template and records the alerts it raises, in order.
    pub fn process(&mut self, records: &mut [Enriched]) -> Vec<Alert> {
        self.tag(records);
        self.observe(records)
    }

    /// Tags each record with its template. Mining a line twice (a batch re-read after a
    /// failed commit) only strengthens its template.
    pub fn tag(&mut self, records: &mut [Enriched]) {
        for r in records {
            r.template = Some(self.templates.tag(&r.record.service, &r.record.message));
        }
    }

    /// Feeds tagged records to the anomaly detector and the correlation tracker; records the
    /// alerts they raise (pattern hits too) and returns those to publish: new ones, and folded
    /// ones that keep firing, with their count, at most every 10 s. Once per line: a consumer
    /// calls it after its batch is committed.
    pub fn observe(&mut self, records: &[Enriched]) -> Vec<Alert> {
        let mut raised = Vec::new();
        for r in records {
            for a in pattern_alerts(r).chain(self.detector.observe(r)) {
                if let Some(publish) = self.alerts.add(a) {
                    raised.push(publish);
                }
            }
            self.correlations.observe(r);
        }
        self.correlations.expire();
        raised
    }
}

/// One alert per pattern a line matched.
fn pattern_alerts(r: &Enriched) -> impl Iterator<Item = Alert> + '_ {
    r.patterns.iter().map(move |m| Alert {
        category: Some(m.category),
        suggestion: Some(m.suggestion.to_string()),
        ..Alert::for_line(
            r,
            AlertKind::Pattern,
            m.severity,
            m.id.to_string(),
            format!("{} in {}", m.id, r.record.service),
        )
    })
}
