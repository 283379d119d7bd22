//! Correlation state of one process: the live requests, the analyses of recently completed
//! ones (bounded), the dependency graph over them, and the completed analyses not yet
//! written to a durable view.
//!
//! The completed analyses and the dependency graph are what API reads need, so they live in
//! `CorrelationReads`, shared with readers: a read touches one map shard or the graph's own
//! lock, never the state the workers hold while they process a batch.

use std::collections::VecDeque;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;

use super::analysis::{RequestAnalysis, analyze};
use super::dependency::DependencyGraph;
use super::tracker::{Completed, Tracker, TrackerConfig};
use crate::enrich::Enriched;

/// Completed analyses kept for /correlate.
pub const MAX_RECENT: usize = 100_000;
/// Minutes of the dependency graph kept.
pub const DEPENDENCY_MINUTES: usize = 24 * 60;
/// Completed analyses waiting for the durable write; beyond it the oldest are dropped
/// (counted) so that a long database outage cannot grow memory without bound.
pub const MAX_PENDING: usize = 100_000;

/// The read side of the correlation state, shared with API readers.
#[derive(Clone)]
pub struct CorrelationReads {
    recent: Arc<DashMap<String, Arc<RequestAnalysis>>>,
    dependencies: Arc<RwLock<DependencyGraph>>,
}

impl CorrelationReads {
    /// A recently completed request's analysis.
    pub fn completed(&self, correlation_id: &str) -> Option<Arc<RequestAnalysis>> {
        self.recent.get(correlation_id).map(|a| Arc::clone(&a))
    }

    /// The dependency graph over requests completed since `since_ns`.
    pub fn dependencies(&self, since_ns: i64, service: Option<&str>) -> super::DependencyView {
        self.dependencies.read().view(since_ns, service)
    }
}

pub(crate) struct Correlations {
    pub(crate) tracker: Tracker,
    reads: CorrelationReads,
    recent_order: VecDeque<String>,
    /// Whether completed analyses are kept for a durable write (`take_pending`).
    persist: bool,
    pending: Vec<RequestAnalysis>,
    pub(crate) dropped_pending: u64,
    pub(crate) completed: u64,
    /// Watermark of the last expiry scan (a scan visits every live request).
    expired_at_ns: i64,
}

impl Correlations {
    pub(crate) fn new(persist: bool) -> Self {
        Correlations {
            tracker: Tracker::new(TrackerConfig::default()),
            reads: CorrelationReads {
                recent: Arc::new(DashMap::new()),
                dependencies: Arc::new(RwLock::new(DependencyGraph::new(DEPENDENCY_MINUTES))),
            },
            recent_order: VecDeque::new(),
            persist,
            pending: Vec::new(),
            dropped_pending: 0,
            completed: 0,
            expired_at_ns: i64::MIN,
        }
    }

    pub(crate) fn reads(&self) -> CorrelationReads {
        self.reads.clone()
    }

    /// Adds one line; completes what the line pushed out of the live set.
    pub(crate) fn observe(&mut self, e: &Enriched) {
        let done = self.tracker.observe(e);
        self.complete(done);
    }

    /// Completes the requests idle before the newest event time seen; at most one scan per
    /// second of event time.
    pub(crate) fn expire(&mut self) {
        let now = self.tracker.watermark_ns;
        if now.saturating_sub(self.expired_at_ns) < 1_000_000_000 {
            return;
        }
        self.expired_at_ns = now;
        let done = self.tracker.expire(now);
        self.complete(done);
    }

    fn complete(&mut self, done: Vec<Completed>) {
        if done.is_empty() {
            return;
        }
        let analyses: Vec<(RequestAnalysis, i64)> = done
            .iter()
            .map(|c| (analyze(&c.request, &self.tracker.services), c.request.first_ns()))
            .collect();
        {
            let mut graph = self.reads.dependencies.write();
            for (a, start_ns) in &analyses {
                graph.add(a, *start_ns);
            }
        }
        for (a, _) in analyses {
            self.completed += 1;
            if self.persist {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                    self.dropped_pending += 1;
                }
                self.pending.push(a.clone());
            }
            let id = a.correlation_id.clone();
            if self.reads.recent.insert(id.clone(), Arc::new(a)).is_none() {
                self.recent_order.push_back(id);
            }
            while self.recent_order.len() > MAX_RECENT {
                if let Some(old) = self.recent_order.pop_front() {
                    self.reads.recent.remove(&old);
                }
            }
        }
    }

    /// The request's analysis and whether it is complete: live requests are analysed as
    /// they stand.
    #[cfg(test)]
    pub(crate) fn lookup(&self, correlation_id: &str) -> Option<(RequestAnalysis, bool)> {
        if let Some(r) = self.tracker.live(correlation_id) {
            return Some((analyze(r, &self.tracker.services), false));
        }
        self.reads.completed(correlation_id).map(|a| ((*a).clone(), true))
    }

    /// Completed analyses for the durable view, oldest first.
    pub(crate) fn take_pending(&mut self) -> Vec<RequestAnalysis> {
        std::mem::take(&mut self.pending)
    }

    /// Puts back analyses whose write failed, ahead of newer ones.
    pub(crate) fn restore_pending(&mut self, mut failed: Vec<RequestAnalysis>) {
        failed.append(&mut self.pending);
        self.pending = failed;
    }
}
