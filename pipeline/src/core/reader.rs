//! The core's published side: what API reads need, kept where a reader never takes the
//! lock the workers hold. Counters and alerts are swapped in whole (`ArcSwap`, as the
//! pattern matcher is); template names and completed requests are concurrent maps the core
//! writes as it goes.

use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use serde::Serialize;

use crate::anomaly::Alert;
use crate::correlate::{CorrelationReads, DependencyView, RequestAnalysis};

/// Correlation and template counters for /health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CoreStats {
    pub live_requests: u64,
    pub completed_total: u64,
    pub evicted_total: u64,
    pub lines_without_correlation_id: u64,
    pub unwritten_dropped_total: u64,
    pub templates: u64,
}

#[derive(Clone)]
pub struct CoreReader {
    stats: Arc<ArcSwap<CoreStats>>,
    alerts: Arc<ArcSwap<Vec<Alert>>>,
    templates: Arc<DashMap<u64, Arc<str>>>,
    correlations: CorrelationReads,
}

impl CoreReader {
    pub(super) fn new(correlations: CorrelationReads) -> Self {
        CoreReader {
            stats: Arc::default(),
            alerts: Arc::default(),
            templates: Arc::new(DashMap::new()),
            correlations,
        }
    }

    pub fn stats(&self) -> Arc<CoreStats> {
        self.stats.load_full()
    }

    /// Alerts whose last sighting is at or after `since_ns`, oldest first.
    pub fn alerts_since(&self, since_ns: i64) -> Vec<Alert> {
        self.alerts
            .load()
            .iter()
            .filter(|a| a.last_seen_ns >= since_ns)
            .cloned()
            .collect()
    }

    /// The current text of a template (by its stable id).
    pub fn template(&self, id: u64) -> Option<String> {
        self.templates.get(&id).map(|t| t.to_string())
    }

    /// A recently completed request's analysis.
    pub fn completed_request(&self, correlation_id: &str) -> Option<Arc<RequestAnalysis>> {
        self.correlations.completed(correlation_id)
    }

    /// The dependency graph over requests completed since `since_ns`.
    pub fn dependencies(&self, since_ns: i64, service: Option<&str>) -> DependencyView {
        self.correlations.dependencies(since_ns, service)
    }

    pub(super) fn template_names(&self) -> &DashMap<u64, Arc<str>> {
        &self.templates
    }

    pub(super) fn publish_stats(&self, stats: CoreStats) {
        if **self.stats.load() != stats {
            self.stats.store(Arc::new(stats));
        }
    }

    pub(super) fn publish_alerts(&self, alerts: Vec<Alert>) {
        self.alerts.store(Arc::new(alerts));
    }
}
