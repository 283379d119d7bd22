//! The in-memory views: `ailogs_pipeline::views::HeldLines` (the lines and their indexes)
//! behind one lock, with eviction by count and age, pattern counts and metrics.
//!
//! Writers hold the lock for a batch insert; readers only for an index walk, which costs
//! what the answer costs (see `HeldLines::answer`), never for rendering.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ailogs_pipeline::Enriched;
use ailogs_pipeline::patterns::PatternStats;
use ailogs_pipeline::query::{ContextSource, Neighbours, QuerySpec, Selected, Window};
use ailogs_pipeline::views::{HeldLines, HeldStats};
use parking_lot::RwLock;

use crate::metrics::Metrics;

pub use ailogs_pipeline::views::Selection;

#[derive(Debug, Clone, Copy)]
pub struct ViewLimits {
    pub max_lines: usize,
    pub max_age: Duration,
}

/// What the views hold, their bound, and when they last took a line.
#[derive(Debug, Clone, Default)]
pub struct ViewStats {
    pub held: HeldStats,
    pub max_lines: usize,
    pub last_insert: Option<SystemTime>,
}

#[derive(Default)]
struct Inner {
    held: HeldLines,
    last_insert: Option<SystemTime>,
    /// Per catalog pattern, over every line inserted since start (not only those held).
    pattern_stats: PatternStats,
}

pub struct MemoryViews {
    inner: RwLock<Inner>,
    limits: ViewLimits,
    metrics: Arc<Metrics>,
    /// Arrival times are kept as milliseconds since this instant.
    epoch: Instant,
}

impl MemoryViews {
    pub fn new(limits: ViewLimits, metrics: Arc<Metrics>) -> Self {
        MemoryViews {
            inner: RwLock::new(Inner::default()),
            limits,
            metrics,
            epoch: Instant::now(),
        }
    }

    fn millis(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Adds a batch of records (one lock for the batch), evicting what no longer fits.
    /// Returns the records as stored (shared, for the stream hub).
    pub fn insert(&self, records: Vec<Enriched>, now: Instant) -> Vec<Arc<Enriched>> {
        if records.is_empty() {
            return Vec::new();
        }
        let arrived = self.millis(now);
        let mut inner = self.inner.write();
        let mut stored = Vec::with_capacity(records.len());
        for rec in records {
            inner.pattern_stats.observe(&rec);
            stored.push(inner.held.insert(rec, arrived));
        }
        inner.last_insert = Some(SystemTime::now());
        let evicted = inner.held.evict_over(self.limits.max_lines);
        self.count_evictions(&inner, evicted, "count");
        self.expire_locked(&mut inner, now);
        stored
    }

    /// Pattern counts over every line inserted since the process started.
    pub fn pattern_stats(&self) -> PatternStats {
        self.inner.read().pattern_stats.clone()
    }

    /// Evicts lines that arrived more than `max_age` ago.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.inner.write();
        self.expire_locked(&mut inner, now);
    }

    fn expire_locked(&self, inner: &mut Inner, now: Instant) {
        let max_age = self.limits.max_age.as_millis() as u64;
        let evicted = inner
            .held
            .evict_arrived_before(self.millis(now).saturating_sub(max_age));
        self.count_evictions(inner, evicted, "age");
    }

    fn count_evictions(&self, inner: &Inner, n: usize, reason: &str) {
        if n > 0 {
            self.metrics
                .view_evictions
                .with_label_values(&[reason])
                .inc_by(n as u64);
        }
        self.metrics.view_lines.set(inner.held.len() as i64);
    }

    /// The views' answer to `spec` from their indexes; `spec` must pass `views::indexed`.
    pub fn answer(&self, spec: &QuerySpec, window: Window) -> Selected {
        self.inner.read().held.answer(spec, window)
    }

    /// Records that may match `sel` and pass `keep`, through the narrowest index available.
    /// `keep` runs under the read lock, before any record is shared with the caller.
    pub fn select(&self, sel: &Selection<'_>, keep: impl Fn(&Enriched) -> bool) -> Vec<Arc<Enriched>> {
        self.inner.read().held.select(sel, keep)
    }

    /// `select` without a predicate.
    pub fn select_all(&self, sel: &Selection<'_>) -> Vec<Arc<Enriched>> {
        self.select(sel, |_| true)
    }

    pub fn stats(&self) -> ViewStats {
        let inner = self.inner.read();
        ViewStats {
            held: inner.held.stats(),
            max_lines: self.limits.max_lines,
            last_insert: inner.last_insert,
        }
    }

    /// Distinct services with lines in the views.
    pub fn services(&self) -> Vec<String> {
        self.inner.read().held.services()
    }
}

impl ContextSource for MemoryViews {
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        self.inner.read().held.around(rec, n)
    }

    fn around_each(&self, recs: &[&Arc<Enriched>], n: usize) -> Vec<Neighbours> {
        let inner = self.inner.read();
        recs.iter().map(|r| inner.held.around(r, n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ailogs_pipeline::Level;

    fn rec(t: i64, service: &str, level: Level, corr: Option<&str>) -> Enriched {
        let mut r = ailogs_pipeline::LogRecord::new(t, service, level, format!("line {t}"));
        r.correlation_id = corr.map(str::to_owned).map(Into::into);
        Enriched::new(r)
    }

    fn views(max_lines: usize, max_age: Duration) -> MemoryViews {
        MemoryViews::new(ViewLimits { max_lines, max_age }, Arc::new(Metrics::new()))
    }

    #[test]
    fn indexes_select_and_count_eviction() {
        let v = views(3, Duration::from_secs(60));
        let now = Instant::now();
        v.insert(
            vec![
                rec(1, "api", Level::Error, Some("c1")),
                rec(2, "api", Level::Info, Some("c1")),
            ],
            now,
        );
        v.insert(
            vec![
                rec(3, "worker", Level::Error, None),
                rec(4, "api", Level::Error, Some("c2")),
            ],
            now,
        );
        let stats = v.stats();
        assert_eq!(
            (
                stats.held.lines,
                stats.held.evicted_total,
                stats.held.evicted_newest_event_ns
            ),
            (3, 1, Some(1))
        );
        let c1 = v.select_all(&Selection {
            correlation_id: Some("c1"),
            ..Default::default()
        });
        assert_eq!(
            c1.iter().map(|r| r.ts_ns).collect::<Vec<_>>(),
            vec![2],
            "evicted line left the index"
        );
        let services = ["api".to_string()];
        let mut errs = v.select_all(&Selection {
            services: &services,
            min_level: Some(Level::Error),
            ..Default::default()
        });
        errs.sort_by_key(|r| r.ts_ns);
        assert_eq!(errs.iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![4]);
        assert_eq!(v.metrics.view_evictions.with_label_values(&["count"]).get(), 1);
        assert_eq!(v.services(), vec!["api", "worker"]);
    }

    #[test]
    fn context_is_the_service_neighbourhood() {
        let v = views(100, Duration::from_secs(60));
        let now = Instant::now();
        v.insert(
            (1..=6)
                .map(|t| rec(t, if t == 3 { "other" } else { "api" }, Level::Info, None))
                .collect(),
            now,
        );
        let all = v.select_all(&Selection::default());
        let four = all.iter().find(|r| r.ts_ns == 4).expect("line 4");
        let (before, after) = v.around(four, 2);
        assert_eq!(before.iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(after.iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![5, 6]);
    }

    #[test]
    fn age_eviction() {
        let v = views(100, Duration::from_secs(10));
        let t0 = Instant::now();
        v.insert(
            vec![rec(0, "gone", Level::Info, None), rec(1, "api", Level::Info, Some("c"))],
            t0,
        );
        v.insert(vec![rec(2, "api", Level::Info, Some("c"))], t0 + Duration::from_secs(8));
        v.expire(t0 + Duration::from_secs(11));
        assert_eq!(v.stats().held.lines, 1);
        assert_eq!(v.services(), vec!["api"], "evicted services leave every index");
        assert_eq!(
            v.select_all(&Selection {
                correlation_id: Some("c"),
                ..Default::default()
            })
            .len(),
            1
        );
        assert_eq!(v.metrics.view_evictions.with_label_values(&["age"]).get(), 2);
    }
}
