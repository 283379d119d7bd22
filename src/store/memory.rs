//! In-memory views of recent lines: by (service, level), by service, by correlation id and
//! by conversation id, over one arrival-ordered ring bounded by line count and age.
//!
//! Every index holds ring sequence numbers in arrival order, so evicting the ring's oldest
//! slot only ever pops the front of the (at most four) index lists that slot is in.
//! Context lines are a line's neighbours in its service's arrival order: shippers send each
//! stream in time order, so that is time order up to batching.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ailogs_pipeline::patterns::PatternStats;
use ailogs_pipeline::query::ContextSource;
use ailogs_pipeline::{Enriched, Level};
use parking_lot::RwLock;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy)]
pub struct ViewLimits {
    pub max_lines: usize,
    pub max_age: Duration,
}

/// What a query wants the views to narrow down: a superset is fine, the query engine
/// filters again.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub services: &'a [String],
    pub min_level: Option<Level>,
    pub correlation_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub since_ns: i64,
}

/// Counts and times describing what the views hold.
#[derive(Debug, Clone, Default)]
pub struct ViewStats {
    pub lines: usize,
    pub max_lines: usize,
    pub newest_event_ns: Option<i64>,
    pub oldest_event_ns: Option<i64>,
    /// Newest event time among evicted lines: windows starting before it are incomplete.
    pub evicted_newest_event_ns: Option<i64>,
    pub last_insert: Option<SystemTime>,
    pub inserted_total: u64,
    pub evicted_total: u64,
}

struct Slot {
    rec: Arc<Enriched>,
    arrived: Instant,
}

#[derive(Default)]
struct Inner {
    ring: VecDeque<Slot>,
    front_seq: u64,
    by_service_level: HashMap<(String, Level), VecDeque<u64>>,
    by_service: HashMap<String, VecDeque<u64>>,
    by_correlation: HashMap<String, VecDeque<u64>>,
    by_conversation: HashMap<String, VecDeque<u64>>,
    newest_event_ns: Option<i64>,
    evicted_newest_event_ns: Option<i64>,
    last_insert: Option<SystemTime>,
    inserted_total: u64,
    evicted_total: u64,
    /// Per catalog pattern, over every line inserted since start (not only those held).
    pattern_stats: PatternStats,
}

pub struct MemoryViews {
    inner: RwLock<Inner>,
    limits: ViewLimits,
    metrics: Arc<Metrics>,
}

impl MemoryViews {
    pub fn new(limits: ViewLimits, metrics: Arc<Metrics>) -> Self {
        MemoryViews {
            inner: RwLock::new(Inner::default()),
            limits,
            metrics,
        }
    }

    /// Adds a batch of records (one lock for the batch), evicting what no longer fits.
    /// Returns the records as stored (shared, for the stream hub).
    pub fn insert(&self, records: Vec<Enriched>, now: Instant) -> Vec<Arc<Enriched>> {
        if records.is_empty() {
            return Vec::new();
        }
        let mut stored = Vec::with_capacity(records.len());
        let mut inner = self.inner.write();
        for mut rec in records {
            let seq = inner.front_seq + inner.ring.len() as u64;
            rec.seq = seq;
            let rec = Arc::new(rec);
            stored.push(Arc::clone(&rec));
            let service = rec.service.clone();
            inner
                .by_service_level
                .entry((service.clone(), rec.level))
                .or_default()
                .push_back(seq);
            inner.by_service.entry(service).or_default().push_back(seq);
            if let Some(id) = &rec.correlation_id {
                inner.by_correlation.entry(id.clone()).or_default().push_back(seq);
            }
            if let Some(id) = &rec.conversation_id {
                inner.by_conversation.entry(id.clone()).or_default().push_back(seq);
            }
            inner.pattern_stats.observe(&rec);
            inner.newest_event_ns = Some(inner.newest_event_ns.map_or(rec.ts_ns, |n| n.max(rec.ts_ns)));
            inner.ring.push_back(Slot { rec, arrived: now });
            inner.inserted_total += 1;
        }
        inner.last_insert = Some(SystemTime::now());
        let over = inner.ring.len().saturating_sub(self.limits.max_lines);
        let evicted = (0..over).filter(|_| inner.evict_front()).count();
        self.count_evictions(&mut inner, evicted, "count");
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
        let mut evicted = 0;
        while inner
            .ring
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.arrived) > self.limits.max_age)
        {
            inner.evict_front();
            evicted += 1;
        }
        self.count_evictions(inner, evicted, "age");
    }

    fn count_evictions(&self, inner: &mut Inner, n: usize, reason: &str) {
        if n > 0 {
            inner.evicted_total += n as u64;
            self.metrics
                .view_evictions
                .with_label_values(&[reason])
                .inc_by(n as u64);
        }
        self.metrics.view_lines.set(inner.ring.len() as i64);
    }

    /// Records that may match `sel` and pass `keep`, through the narrowest index available.
    /// `keep` runs under the read lock, before any record is shared with the caller.
    pub fn select(&self, sel: &Selection<'_>, keep: impl Fn(&Enriched) -> bool) -> Vec<Arc<Enriched>> {
        let inner = self.inner.read();
        let min_level = sel.min_level.unwrap_or(Level::Trace);
        let keep = |r: &Enriched| r.ts_ns >= sel.since_ns && r.level >= min_level && keep(r);
        let by_id = sel
            .correlation_id
            .map(|id| inner.by_correlation.get(id))
            .or_else(|| sel.conversation_id.map(|id| inner.by_conversation.get(id)));
        let mut out = Vec::new();
        match by_id {
            Some(seqs) => out.extend(inner.resolve(seqs.into_iter().flatten()).filter(|r| keep(r))),
            None => {
                for ((service, level), seqs) in &inner.by_service_level {
                    if *level >= min_level && (sel.services.is_empty() || sel.services.contains(service)) {
                        out.extend(inner.resolve(seqs.iter()).filter(|r| keep(r)));
                    }
                }
            }
        }
        out
    }

    /// `select` without a predicate.
    pub fn select_all(&self, sel: &Selection<'_>) -> Vec<Arc<Enriched>> {
        self.select(sel, |_| true)
    }

    pub fn stats(&self) -> ViewStats {
        let inner = self.inner.read();
        ViewStats {
            lines: inner.ring.len(),
            max_lines: self.limits.max_lines,
            newest_event_ns: inner.newest_event_ns,
            oldest_event_ns: inner.ring.iter().map(|s| s.rec.ts_ns).min(),
            evicted_newest_event_ns: inner.evicted_newest_event_ns,
            last_insert: inner.last_insert,
            inserted_total: inner.inserted_total,
            evicted_total: inner.evicted_total,
        }
    }

    /// Distinct services with lines in the views.
    pub fn services(&self) -> Vec<String> {
        let inner = self.inner.read();
        let mut v: Vec<String> = inner.by_service_level.keys().map(|(s, _)| s.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

impl ContextSource for MemoryViews {
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        let inner = self.inner.read();
        let Some(seqs) = inner.by_service.get(rec.service.as_str()) else {
            return (Vec::new(), Vec::new());
        };
        let Ok(pos) = seqs.binary_search(&rec.seq) else {
            return (Vec::new(), Vec::new());
        };
        let mut before: Vec<_> = inner.resolve(seqs.range(pos.saturating_sub(n)..pos)).collect();
        let mut after: Vec<_> = inner
            .resolve(seqs.range(pos + 1..(pos + 1 + n).min(seqs.len())))
            .collect();
        before.sort_by_key(|r| r.ts_ns);
        after.sort_by_key(|r| r.ts_ns);
        (before, after)
    }
}

impl Inner {
    fn resolve<'a>(&'a self, seqs: impl Iterator<Item = &'a u64> + 'a) -> impl Iterator<Item = Arc<Enriched>> + 'a {
        seqs.filter_map(move |seq| {
            let idx = seq.checked_sub(self.front_seq)?;
            self.ring.get(idx as usize).map(|s| Arc::clone(&s.rec))
        })
    }

    /// Removes the oldest slot and its index entries. Returns false when empty.
    fn evict_front(&mut self) -> bool {
        let Some(slot) = self.ring.pop_front() else {
            return false;
        };
        let seq = self.front_seq;
        self.front_seq += 1;
        let rec = &slot.rec;
        pop_index(&mut self.by_service_level, &(rec.service.clone(), rec.level), seq);
        pop_index(&mut self.by_service, rec.service.as_str(), seq);
        if let Some(id) = &rec.correlation_id {
            pop_index(&mut self.by_correlation, id, seq);
        }
        if let Some(id) = &rec.conversation_id {
            pop_index(&mut self.by_conversation, id, seq);
        }
        self.evicted_newest_event_ns = Some(self.evicted_newest_event_ns.map_or(rec.ts_ns, |n| n.max(rec.ts_ns)));
        true
    }
}

fn pop_index<K, Q>(index: &mut HashMap<K, VecDeque<u64>>, key: &Q, seq: u64)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(list) = index.get_mut(key) {
        if list.front() == Some(&seq) {
            list.pop_front();
        }
        if list.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: i64, service: &str, level: Level, corr: Option<&str>) -> Enriched {
        let mut r = ailogs_pipeline::LogRecord::new(t, service, level, format!("line {t}"));
        r.correlation_id = corr.map(str::to_owned);
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
            (stats.lines, stats.evicted_total, stats.evicted_newest_event_ns),
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
        assert_eq!(v.stats().lines, 1);
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
