//! Correlation state of one process: the live requests, the analyses of recently completed
//! ones (bounded), the dependency graph over them, and the completed analyses not yet
//! written to a durable view.

use std::collections::{HashMap, VecDeque};

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

pub struct Correlations {
    pub tracker: Tracker,
    pub dependencies: DependencyGraph,
    recent: HashMap<String, RequestAnalysis>,
    recent_order: VecDeque<String>,
    /// Whether completed analyses are kept for a durable write (`take_pending`).
    pub persist: bool,
    pending: Vec<RequestAnalysis>,
    pub dropped_pending: u64,
    pub completed: u64,
    /// Watermark of the last expiry scan (a scan visits every live request).
    expired_at_ns: i64,
}

impl Default for Correlations {
    fn default() -> Self {
        Correlations {
            tracker: Tracker::new(TrackerConfig::default()),
            dependencies: DependencyGraph::new(DEPENDENCY_MINUTES),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            persist: false,
            pending: Vec::new(),
            dropped_pending: 0,
            completed: 0,
            expired_at_ns: i64::MIN,
        }
    }
}

impl Correlations {
    /// Adds one line; completes what the line pushed out of the live set.
    pub fn observe(&mut self, e: &Enriched) {
        let done = self.tracker.observe(e);
        self.complete(done);
    }

    /// Completes the requests idle before the newest event time seen; at most one scan per
    /// second of event time.
    pub fn expire(&mut self) {
        let now = self.tracker.watermark_ns;
        if now.saturating_sub(self.expired_at_ns) < 1_000_000_000 {
            return;
        }
        self.expired_at_ns = now;
        let done = self.tracker.expire(now);
        self.complete(done);
    }

    fn complete(&mut self, done: Vec<Completed>) {
        for c in done {
            let a = analyze(&c.request, &self.tracker.services);
            self.completed += 1;
            self.dependencies.add(&a, c.request.first_ns());
            if self.persist {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                    self.dropped_pending += 1;
                }
                self.pending.push(a.clone());
            }
            let id = a.correlation_id.clone();
            if self.recent.insert(id.clone(), a).is_none() {
                self.recent_order.push_back(id);
            }
            while self.recent_order.len() > MAX_RECENT {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
    }

    /// The request's analysis and whether it is complete: live requests are analysed as
    /// they stand.
    pub fn lookup(&self, correlation_id: &str) -> Option<(RequestAnalysis, bool)> {
        if let Some(r) = self.tracker.live(correlation_id) {
            return Some((analyze(r, &self.tracker.services), false));
        }
        self.recent.get(correlation_id).map(|a| (a.clone(), true))
    }

    /// Completed analyses for the durable view, oldest first.
    pub fn take_pending(&mut self) -> Vec<RequestAnalysis> {
        std::mem::take(&mut self.pending)
    }

    /// Puts back analyses whose write failed, ahead of newer ones.
    pub fn restore_pending(&mut self, mut failed: Vec<RequestAnalysis>) {
        failed.append(&mut self.pending);
        self.pending = failed;
    }
}
