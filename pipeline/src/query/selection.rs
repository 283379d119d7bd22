//! What a query selected, as a source hands it to rendering: the window, the digest, the
//! entries and groups kept, and the context lines around an entry. Shared by the scan
//! (`engine`), the views' indexes and `render`, so none depends on another's insides.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::digest::{Digest, GroupDigest};
use super::spec::QuerySpec;
use crate::enrich::Enriched;
use crate::record::LogRecord;

/// The event-time window a query covers, inclusive, Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Window {
    pub const UNBOUNDED: Window = Window {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
    };

    pub fn is_unbounded(&self) -> bool {
        *self == Window::UNBOUNDED
    }

    pub fn contains(&self, ts_ns: i64) -> bool {
        (self.start_ns..=self.end_ns).contains(&ts_ns)
    }
}

/// Every filter but the time window: services, ids, exclusions.
pub fn matches_filters(spec: &QuerySpec, r: &LogRecord) -> bool {
    spec.scope.allows(r.workspace_id.as_deref())
        && (spec.services.is_empty() || spec.services.iter().any(|s| **s == *r.service))
        && eq_opt(&spec.correlation_id, r.correlation_id.as_deref())
        && eq_opt(&spec.conversation_id, r.conversation_id.as_deref())
        && eq_opt(&spec.session_id, r.session_id.as_deref())
        && eq_opt(&spec.workspace_id, r.workspace_id.as_deref())
        && !spec
            .exclude
            .iter()
            .any(|x| x.matches(&r.message) || r.error.as_deref().is_some_and(|e| x.matches(e)))
}

fn eq_opt(wanted: &Option<String>, actual: Option<&str>) -> bool {
    wanted.as_ref().is_none_or(|w| actual == Some(w.as_str()))
}

/// A line in the answer, standing for `count` lines when de-duplicated.
#[derive(Debug, Clone)]
pub struct Entry {
    pub rec: Arc<Enriched>,
    pub count: usize,
    pub first_ns: i64,
    pub last_ns: i64,
}

impl Entry {
    pub fn single(rec: &Arc<Enriched>) -> Self {
        Entry {
            rec: Arc::clone(rec),
            count: 1,
            first_ns: rec.ts_ns,
            last_ns: rec.ts_ns,
        }
    }

    pub fn absorb(&mut self, rec: &LogRecord) {
        self.count += 1;
        self.first_ns = self.first_ns.min(rec.ts_ns);
        self.last_ns = self.last_ns.max(rec.ts_ns);
    }
}

/// What a query selected, wherever it came from: the digest of every matched line, and
/// the entries (best-ranked first, at most `limit`) or the aggregation groups.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    pub digest: Digest,
    pub entries: Vec<Entry>,
    /// Entries there were before `limit`: lines, or de-duplicated lines.
    pub distinct: usize,
    /// With an aggregation: the groups kept (most lines first) and how many there were.
    pub groups: Vec<GroupDigest>,
    pub distinct_groups: usize,
}

/// Where context lines come from: the lines of the same service just before and after a
/// record, in time order. Views answer this from their own indexes.
pub trait ContextSource {
    /// Up to `n` lines before and `n` after `rec` from its service, nearest first is not
    /// required: both lists in time order.
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>);

    /// `around` for each of `recs`; a source behind a lock takes it once.
    fn around_each(&self, recs: &[&Arc<Enriched>], n: usize) -> Vec<Neighbours> {
        recs.iter().map(|r| self.around(r, n)).collect()
    }
}

/// Lines before and after a line, each in time order.
pub type Neighbours = (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>);

/// A context source over a set of records: for tests and small in-memory sets.
pub struct SliceContext<'a> {
    by_service: HashMap<&'a str, Vec<&'a Arc<Enriched>>>,
}

impl<'a> SliceContext<'a> {
    pub fn new(records: &'a [Arc<Enriched>]) -> Self {
        let mut by_service: HashMap<&str, Vec<&Arc<Enriched>>> = HashMap::default();
        for r in records {
            by_service.entry(r.service.as_ref()).or_default().push(r);
        }
        for list in by_service.values_mut() {
            list.sort_by_key(|r| r.ts_ns);
        }
        SliceContext { by_service }
    }
}

impl ContextSource for SliceContext<'_> {
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        let Some(list) = self.by_service.get(rec.service.as_ref()) else {
            return (Vec::new(), Vec::new());
        };
        let start = list.partition_point(|r| r.ts_ns < rec.ts_ns);
        let Some(pos) = list[start..]
            .iter()
            .position(|r| Arc::ptr_eq(r, rec))
            .map(|p| p + start)
        else {
            return (Vec::new(), Vec::new());
        };
        let before = list[pos.saturating_sub(n)..pos].iter().map(|r| Arc::clone(r)).collect();
        let after = list[pos + 1..].iter().take(n).map(|r| Arc::clone(r)).collect();
        (before, after)
    }
}

/// Context for one query: the source, filtered by the query's window, filters and
/// `context_window`.
pub struct Context<'a> {
    source: &'a dyn ContextSource,
    spec: &'a QuerySpec,
    window: Window,
    lines: usize,
    window_ns: i64,
}

impl<'a> Context<'a> {
    pub fn new(source: &'a dyn ContextSource, spec: &'a QuerySpec, window: Window) -> Self {
        let window_ns = i64::try_from(spec.context_window_s)
            .unwrap_or(86_400)
            .saturating_mul(1_000_000_000);
        Context {
            source,
            spec,
            window,
            lines: spec.context_lines(),
            window_ns,
        }
    }

    pub fn enabled(&self) -> bool {
        self.lines > 0
    }

    /// (before, after), each in time order. Excluded lines and lines outside the query
    /// window or the context window are left out.
    pub fn around_each(&self, recs: &[&Arc<Enriched>]) -> Vec<Neighbours> {
        // Ask for extra lines so that filtered-out neighbours do not leave the context short.
        let found = self.source.around_each(recs, self.lines * 2 + 2);
        recs.iter().zip(found).map(|(rec, n)| self.filter(rec, n)).collect()
    }

    fn filter(&self, rec: &Arc<Enriched>, (before, after): Neighbours) -> Neighbours {
        let keep = |r: &Arc<Enriched>| {
            !Arc::ptr_eq(r, rec)
                && self.window.contains(r.ts_ns)
                && (r.ts_ns - rec.ts_ns).abs() <= self.window_ns
                && matches_filters(self.spec, r)
        };
        let mut before: Vec<_> = before.into_iter().filter(keep).collect();
        before.drain(..before.len().saturating_sub(self.lines));
        let after = after.into_iter().filter(keep).take(self.lines).collect();
        (before, after)
    }
}
