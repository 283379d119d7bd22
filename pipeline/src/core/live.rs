//! The per-line analysis that needs state across lines: templates, anomalies and the
//! alerts they raise, request correlation. Private to `Core`, which sequences it.

use crate::anomaly::{Alert, AlertBook, AlertKind, Detector, DetectorConfig};
use crate::correlate::Correlations;
use crate::enrich::Enriched;
use crate::templates::{DrainConfig, TemplateIndex};

use super::CoreConfig;

pub(super) struct LiveAnalysis {
    pub(super) templates: TemplateIndex,
    detector: Detector,
    pub(super) alerts: AlertBook,
    pub(super) correlations: Correlations,
}

impl LiveAnalysis {
    pub(super) fn new(config: &CoreConfig) -> Self {
        LiveAnalysis {
            templates: TemplateIndex::new(DrainConfig::default(), config.max_template_services),
            detector: Detector::new(DetectorConfig::default()),
            alerts: AlertBook::new(config.max_alerts, config.alert_fold_window_ns),
            correlations: Correlations::new(config.durable),
        }
    }

    /// Tags each record with its template. Mining a line twice (a batch re-read after a
    /// failed commit) only strengthens its template.
    pub(super) fn tag(&mut self, records: &mut [Enriched]) {
        for r in records {
            r.template = Some(self.templates.tag(&r.record.service, &r.record.message));
        }
    }

    /// Feeds tagged records to the anomaly detector and the correlation tracker; records the
    /// alerts they raise (pattern hits too) and returns those to publish: new ones, and folded
    /// ones that keep firing, with their count, at most every 10 s. A single request's cascade
    /// is kept for `/analyze` but not published: the detector publishes a cascade path when
    /// its rate spikes. Once per line: a consumer calls it after its batch is committed. The
    /// bool says whether the book changed.
    pub(super) fn observe(&mut self, records: &[Enriched]) -> (Vec<Alert>, bool) {
        let mut raised = Vec::new();
        let mut changed = false;
        for r in records {
            for a in pattern_alerts(r).chain(self.detector.observe(r)) {
                changed = true;
                if let Some(publish) = self.alerts.add(a)
                    && publish.kind != AlertKind::Cascade
                {
                    raised.push(publish);
                }
            }
            self.correlations.observe(r);
        }
        self.correlations.expire();
        (raised, changed)
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
