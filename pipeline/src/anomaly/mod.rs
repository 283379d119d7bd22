//! Anomalies on top of patterns and templates, as lines arrive: rate spikes per
//! (service, pattern) and per (service, template), never-seen templates, and error
//! cascades across services. Each becomes an `Alert`; `AlertBook` keeps them, folding
//! repeats.

pub mod alert;
pub mod book;
pub mod cascade;
pub mod rates;

use std::collections::HashMap;
use std::sync::Arc;

pub use alert::{Alert, AlertKind, MAX_SAMPLES};
pub use book::AlertBook;
pub use cascade::{Cascade, CascadeTracker};
pub use rates::{RateConfig, RateTracker, Spike};

use crate::enrich::Enriched;
use crate::patterns::Severity;
use crate::record::Level;
use crate::templates::template_key;

#[derive(Debug, Clone)]
pub struct DetectorConfig {
    pub rates: RateConfig,
    pub max_rate_keys: usize,
    pub cascade_window_ns: i64,
    pub max_cascade_requests: usize,
    /// New templates are flagged only once their service has sent this many lines (at
    /// start every template is new).
    pub new_template_after_lines: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            rates: RateConfig::default(),
            max_rate_keys: 100_000,
            cascade_window_ns: 60 * 1_000_000_000,
            max_cascade_requests: 100_000,
            new_template_after_lines: 2_000,
        }
    }
}

pub struct Detector {
    config: DetectorConfig,
    pattern_rates: RateTracker<(String, Arc<str>)>,
    template_rates: RateTracker<(String, u64)>,
    /// Failing requests per cascade path (`gateway -> api`) and minute.
    cascade_rates: RateTracker<String>,
    cascades: CascadeTracker,
    lines_per_service: HashMap<String, u64>,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Self {
        Detector {
            pattern_rates: RateTracker::new(config.rates, config.max_rate_keys),
            template_rates: RateTracker::new(config.rates, config.max_rate_keys),
            cascade_rates: RateTracker::new(config.rates, config.max_rate_keys),
            cascades: CascadeTracker::new(config.cascade_window_ns, config.max_cascade_requests),
            lines_per_service: HashMap::new(),
            config,
        }
    }

    /// The alerts this record raises (usually none).
    pub fn observe(&mut self, e: &Enriched) -> Vec<Alert> {
        let mut out = Vec::new();
        let r = &e.record;
        // No key allocation per line once the service is known.
        let seen = match self.lines_per_service.get_mut(&*r.service) {
            Some(n) => n,
            None => self.lines_per_service.entry(r.service.to_string()).or_insert(0),
        };
        *seen += 1;
        let warmed_up = *seen > self.config.new_template_after_lines;
        for m in &e.patterns {
            if let Some(s) = self
                .pattern_rates
                .observe(&(r.service.to_string(), Arc::clone(&m.id)), r.ts_ns)
            {
                let mut a = Alert::for_line(
                    e,
                    AlertKind::Anomaly,
                    m.severity,
                    m.id.to_string(),
                    spike_text(&m.id, &r.service, &s),
                );
                a.category = Some(m.category);
                a.suggestion = Some(m.suggestion.to_string());
                a.count = s.count;
                a.first_seen_ns = s.bucket_start_ns;
                out.push(a);
            }
        }
        if let Some(t) = e.template {
            if r.level >= Level::Warn
                && let Some(s) = self.template_rates.observe(&(r.service.to_string(), t.id), r.ts_ns)
            {
                let key = format!("template:{}", template_key(t.id));
                let severity = if r.level >= Level::Error {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut a = Alert::for_line(
                    e,
                    AlertKind::Anomaly,
                    severity,
                    key.clone(),
                    spike_text(&key, &r.service, &s),
                );
                a.count = s.count;
                a.first_seen_ns = s.bucket_start_ns;
                out.push(a);
            }
            if t.new && warmed_up {
                let severity = if r.level >= Level::Error {
                    Severity::Medium
                } else {
                    Severity::Low
                };
                let summary = format!("{} logged a line of a kind never seen before", r.service);
                out.push(Alert::for_line(
                    e,
                    AlertKind::NewTemplate,
                    severity,
                    format!("template:{}", template_key(t.id)),
                    summary,
                ));
            }
        }
        if r.is_failure()
            && let Some(id) = &r.correlation_id
            && let Some(c) = self.cascades.error(id, &r.service, r.ts_ns, &r.message)
        {
            let services: Vec<String> = c.steps.iter().map(|s| s.service.clone()).collect();
            // One failing request is the request analysis' business; many along one path in
            // a minute, against its own history, is an incident.
            let path = services.join(" -> ");
            if let Some(s) = self.cascade_rates.observe(&path, r.ts_ns) {
                let mut a = Alert::for_line(
                    e,
                    AlertKind::Anomaly,
                    Severity::High,
                    format!("cascade:{path}"),
                    spike_text(&format!("requests failing along {path}"), &services[0], &s),
                );
                a.count = s.count;
                a.first_seen_ns = s.bucket_start_ns;
                a.services = services.clone();
                out.push(a);
            }
            let summary = format!(
                "errors spread over {} under request {}: {} failed first",
                services.join(" -> "),
                c.correlation_id,
                services[0]
            );
            let mut a = Alert::for_line(
                e,
                AlertKind::Cascade,
                Severity::High,
                format!("cascade:{}", c.correlation_id),
                summary,
            );
            a.first_seen_ns = c.steps[0].first_error_ns;
            a.count = c.steps.len() as u64;
            a.services = services;
            a.samples = c.steps.iter().map(|s| s.message.clone()).take(MAX_SAMPLES).collect();
            out.push(a);
        }
        out
    }
}

fn spike_text(what: &str, service: &str, s: &Spike) -> String {
    format!(
        "{what} in {service}: {} lines this minute against {:.1} a minute before",
        s.count, s.baseline_mean
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::{Category, PatternMatch};
    use crate::record::LogRecord;
    use crate::templates::TemplateTag;

    const MIN: i64 = 60_000_000_000;
    const S: i64 = 1_000_000_000;

    fn rec(ts: i64, service: &str, level: Level, msg: &str) -> Enriched {
        Enriched::new(LogRecord::new(ts, service, level, msg))
    }

    /// Lines of one request arrive out of event-time order (per-stream pushes): the cascade,
    /// and the alert the book holds for it, name the service that failed first in event time,
    /// revised when an earlier line arrives late.
    #[test]
    fn a_late_earlier_error_revises_the_cascade_origin() {
        let mut d = Detector::new(DetectorConfig::default());
        let mut book = AlertBook::new(100, 60 * 1_000_000_000);
        let line = |ts: i64, service: &str| {
            let mut e = rec(ts, service, Level::Error, &format!("{service} failed"));
            e.record.correlation_id = Some("r7".into());
            e
        };
        let mut published = Vec::new();
        for e in [line(13 * S, "api"), line(12 * S, "gateway"), line(11 * S, "api")] {
            for a in d.observe(&e).into_iter().filter(|a| a.kind == AlertKind::Cascade) {
                published.extend(book.add(a));
            }
        }
        let last = published.last().expect("a cascade was published");
        assert_eq!(published[0].services, ["gateway", "api"], "first as the lines stood");
        assert_eq!(
            last.services,
            ["api", "gateway"],
            "revised: api's earlier error arrived late"
        );
        assert_eq!(last.revision, 1);
        assert!(last.summary.contains("api failed first"), "{}", last.summary);
        assert_eq!(last.first_seen_ns, 11 * S);
    }

    /// One failing request is no incident; many failing along one path in a minute, against
    /// that path's own history, is.
    #[test]
    fn a_cascade_path_is_an_anomaly_when_its_rate_spikes() {
        let mut d = Detector::new(DetectorConfig::default());
        let mut request = 0;
        let mut fail = |d: &mut Detector, ts: i64| -> Vec<Alert> {
            request += 1;
            let id = format!("r{request}");
            let mut out = Vec::new();
            for (service, at) in [("gateway", ts), ("api", ts + 1)] {
                let mut e = rec(at, service, Level::Error, "failed");
                e.record.correlation_id = Some(id.as_str().into());
                out.extend(d.observe(&e));
            }
            out.retain(|a| a.key.starts_with("cascade:gateway"));
            out
        };
        for m in 0..10 {
            assert!(
                fail(&mut d, m * MIN).is_empty(),
                "one failing request a minute is the baseline"
            );
        }
        let spike: Vec<Alert> = (0..20).flat_map(|i| fail(&mut d, 10 * MIN + i * S)).collect();
        assert_eq!(spike.len(), 1, "{spike:?}");
        assert_eq!(
            (spike[0].kind, spike[0].key.as_str()),
            (AlertKind::Anomaly, "cascade:gateway -> api")
        );
        assert_eq!(spike[0].services, ["gateway", "api"]);
    }

    #[test]
    fn pattern_spike_cascade_and_new_template() {
        let mut d = Detector::new(DetectorConfig {
            new_template_after_lines: 3,
            ..DetectorConfig::default()
        });
        let hit = PatternMatch {
            id: Arc::from("rate_limit_exceeded"),
            severity: Severity::Medium,
            category: Category::Performance,
            suggestion: Arc::from("back off"),
        };
        let mut alerts = Vec::new();
        for m in 0..10 {
            let mut e = rec(m * MIN, "gateway", Level::Warn, "429");
            e.patterns.push(hit.clone());
            alerts.extend(d.observe(&e));
        }
        assert!(alerts.is_empty(), "one a minute is the baseline");
        for i in 0..20 {
            let mut e = rec(10 * MIN + i, "gateway", Level::Warn, "429");
            e.patterns.push(hit.clone());
            alerts.extend(d.observe(&e));
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].kind, alerts[0].key.as_str()),
            (AlertKind::Anomaly, "rate_limit_exceeded")
        );
        assert_eq!(alerts[0].suggestion.as_deref(), Some("back off"));

        let mut a = rec(11 * MIN, "api", Level::Error, "504");
        a.record.correlation_id = Some("r1".into());
        let mut g = rec(11 * MIN - 5_000_000_000, "gateway", Level::Error, "model timeout");
        g.record.correlation_id = Some("r1".into());
        assert!(d.observe(&a).iter().all(|x| x.kind != AlertKind::Cascade));
        let c: Vec<_> = d
            .observe(&g)
            .into_iter()
            .filter(|x| x.kind == AlertKind::Cascade)
            .collect();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].services, ["gateway", "api"]);

        let mut n = rec(12 * MIN, "api", Level::Error, "brand new failure");
        n.template = Some(TemplateTag { id: 7, new: true });
        for _ in 0..3 {
            d.observe(&rec(12 * MIN, "api", Level::Info, "warm"));
        }
        let new: Vec<_> = d
            .observe(&n)
            .into_iter()
            .filter(|x| x.kind == AlertKind::NewTemplate)
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].severity, Severity::Medium);
    }
}
