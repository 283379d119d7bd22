//! The views' data: recent lines held in arrival order (bounded by count and age), indexed
//! for queries that cost what their answer costs, not what the views hold.
//!
//! - Per **series** (service, level, shapes, operation, audit, flags; see `series`) the lines in
//!   event-time order: counts, spans, top-k and groups come from binary searches and merges
//!   over a few hundred series (`answer`).
//! - Per **service** the lines in event-time order: windows for scans, context lines, the
//!   oldest held event.
//! - Per **correlation / conversation id** the lines in arrival order.
//! - Per (service, operation, level) and minute a **latency sketch** (`latency`).
//!
//! Pure: no locks, no clock; the caller passes arrival times (any monotonic milliseconds).

mod answer;
mod conversations;
mod intern;
mod latency;
mod merge;
mod series;
mod time_list;
mod workspaces;

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::classify::SLOW_MS;
use crate::enrich::Enriched;
use crate::query::{duration_bits, error_shape, operation};
use crate::record::Level;
use conversations::ConversationBook;
use intern::{Interner, SharedValues};
use latency::{LatencyBook, minute};
use series::{NO_WORKSPACE, SeriesKey, SeriesTable};
use time_list::TimeList;
use workspaces::WorkspaceIndex;

pub use answer::indexed;

/// What a caller wants the views to narrow down: a superset is fine, callers filter again
/// (but never beyond the scope: that is checked here).
#[derive(Debug)]
pub struct Selection<'a> {
    pub services: &'a [String],
    pub min_level: Option<Level>,
    pub correlation_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub since_ns: i64,
    /// The caller's workspaces: lines outside are never selected.
    pub scope: &'a crate::scope::Scope,
}

static EVERY_WORKSPACE: crate::scope::Scope = crate::scope::Scope::All;

impl Default for Selection<'_> {
    fn default() -> Self {
        Selection {
            services: &[],
            min_level: None,
            correlation_id: None,
            conversation_id: None,
            since_ns: i64::MIN,
            scope: &EVERY_WORKSPACE,
        }
    }
}

/// Counts and times describing what the views hold.
#[derive(Debug, Clone, Default)]
pub struct HeldStats {
    pub lines: usize,
    pub newest_event_ns: Option<i64>,
    pub oldest_event_ns: Option<i64>,
    /// Newest event time among evicted lines: windows starting before it are incomplete.
    pub evicted_newest_event_ns: Option<i64>,
    pub inserted_total: u64,
    pub evicted_total: u64,
}

struct Held {
    rec: Arc<Enriched>,
    series: u32,
    arrived_ms: u64,
}

#[derive(Default)]
pub struct HeldLines {
    ring: VecDeque<Held>,
    front_seq: u64,
    services: Interner,
    /// Workspace, user, session, model and request type values.
    values: SharedValues,
    /// Message shapes, error shapes and operation names.
    texts: Interner,
    /// Workspace ids, for the series keys.
    workspaces: Interner,
    series: SeriesTable,
    /// Indexed by service id.
    by_service: Vec<TimeList>,
    by_correlation: HashMap<Box<str>, VecDeque<u64>>,
    by_workspace: WorkspaceIndex,
    conversations: ConversationBook,
    latency: LatencyBook,
    newest_event_ns: Option<i64>,
    evicted_newest_event_ns: Option<i64>,
    inserted_total: u64,
    evicted_total: u64,
}

impl HeldLines {
    /// Holds a record, assigning its arrival sequence. Returns it as held (shared).
    pub fn insert(&mut self, mut rec: Enriched, arrived_ms: u64) -> Arc<Enriched> {
        let seq = self.front_seq + self.ring.len() as u64;
        rec.seq = seq;
        // Held for hours: no spare capacity, and one copy of each shape and value.
        rec.record.extra.shrink_to_fit();
        let service = self.services.acquire(&rec.service);
        if let Some(shared) = self.services.shared(service) {
            rec.record.service = shared;
        }
        let r = &mut rec.record;
        for value in [
            &mut r.workspace_id,
            &mut r.user_id,
            &mut r.session_id,
            &mut r.model,
            &mut r.request_type,
        ] {
            self.values.share_opt(value);
        }
        let shape = self.texts.acquire(&rec.shape);
        if let Some(shared) = self.texts.shared(shape) {
            rec.shape = shared;
        }
        let error_shape = match error_shape(&rec) {
            Some(shape) => self.texts.acquire(&shape),
            None => self.texts.acquire(&rec.shape),
        };
        let op = self.texts.acquire(operation(&rec));
        let workspace = rec
            .workspace_id
            .as_deref()
            .map_or(NO_WORKSPACE, |w| self.workspaces.acquire(w));
        let key = SeriesKey {
            workspace,
            service,
            level: rec.level,
            shape,
            error_shape,
            operation: op,
            audit: rec.audit,
            timed: rec.duration_ms.is_some(),
            slow: rec.duration_ms.is_some_and(|d| d >= SLOW_MS),
            failure: rec.is_failure(),
            conversation: rec.conversation_id.is_some(),
        };
        let id = self.series.id_or_insert(key);
        if let Some(series) = self.series.get_mut(id) {
            series.lines.insert(rec.ts_ns, seq);
            if let Some(d) = rec.duration_ms {
                series.slowest.insert((duration_bits(d), seq));
            }
        }
        if self.by_service.len() <= service as usize {
            self.by_service.resize_with(service as usize + 1, TimeList::default);
        }
        self.by_service[service as usize].insert(rec.ts_ns, seq);
        self.by_workspace.insert(rec.workspace_id.as_ref(), rec.ts_ns, seq);
        if let Some(id) = &rec.correlation_id {
            self.by_correlation
                .entry(id.as_ref().into())
                .or_default()
                .push_back(seq);
        }
        if let Some(id) = &rec.conversation_id {
            self.conversations.insert(id, rec.ts_ns, seq, rec.is_failure());
        }
        if let Some(d) = rec.duration_ms {
            self.latency.add((service, op, rec.level), rec.ts_ns, d);
        }
        self.newest_event_ns = Some(self.newest_event_ns.map_or(rec.ts_ns, |n| n.max(rec.ts_ns)));
        self.inserted_total += 1;
        let rec = Arc::new(rec);
        self.ring.push_back(Held {
            rec: Arc::clone(&rec),
            series: id,
            arrived_ms,
        });
        rec
    }

    /// Evicts the oldest arrivals until at most `max_lines` are held; returns how many.
    pub fn evict_over(&mut self, max_lines: usize) -> usize {
        let over = self.ring.len().saturating_sub(max_lines);
        (0..over).filter(|_| self.evict_front()).count()
    }

    /// Evicts lines that arrived before `arrived_before_ms`; returns how many.
    pub fn evict_arrived_before(&mut self, arrived_before_ms: u64) -> usize {
        let mut n = 0;
        while self.ring.front().is_some_and(|h| h.arrived_ms < arrived_before_ms) {
            self.evict_front();
            n += 1;
        }
        n
    }

    /// Removes the oldest arrival and every index entry of it. False when empty.
    fn evict_front(&mut self) -> bool {
        let Some(held) = self.ring.pop_front() else {
            return false;
        };
        let seq = self.front_seq;
        self.front_seq += 1;
        let rec = &held.rec;
        if let Some(series) = self.series.get_mut(held.series) {
            series.lines.remove(rec.ts_ns, seq);
            if let Some(d) = rec.duration_ms {
                series.slowest.remove(&(duration_bits(d), seq));
            }
            let key = series.key;
            self.series.remove_if_empty(held.series);
            self.services.release(key.service);
            for text in [key.shape, key.error_shape, key.operation] {
                self.texts.release(text);
            }
            if key.workspace != NO_WORKSPACE {
                self.workspaces.release(key.workspace);
            }
            let list = &mut self.by_service[key.service as usize];
            list.remove(rec.ts_ns, seq);
            // Sketches cannot subtract: drop a service's minutes it no longer holds lines of.
            let front_minute = list.front().map(|(ts, _)| minute(ts));
            if front_minute.is_none_or(|m| m > minute(rec.ts_ns)) {
                self.latency.forget_before(key.service, front_minute);
            }
        }
        self.by_workspace.remove(rec.workspace_id.as_deref(), rec.ts_ns, seq);
        if let Some(id) = &rec.correlation_id {
            pop_front(&mut self.by_correlation, id, seq);
        }
        if let Some(id) = &rec.conversation_id {
            self.conversations.evict(id, rec.ts_ns, seq, rec.is_failure());
        }
        self.evicted_newest_event_ns = Some(self.evicted_newest_event_ns.map_or(rec.ts_ns, |n| n.max(rec.ts_ns)));
        self.evicted_total += 1;
        true
    }

    fn resolve(&self, seq: u64) -> Option<&Arc<Enriched>> {
        let i = seq.checked_sub(self.front_seq)?;
        self.ring.get(usize::try_from(i).ok()?).map(|h| &h.rec)
    }

    /// Records that may match `sel` and pass `keep`, through the narrowest index: an id's
    /// lines, else a scoped caller's workspaces' lines, else each wanted service's lines,
    /// from `since_ns` on.
    pub fn select(&self, sel: &Selection<'_>, keep: impl Fn(&Enriched) -> bool) -> Vec<Arc<Enriched>> {
        let min_level = sel.min_level.unwrap_or(Level::Trace);
        let keep = |r: &Enriched| {
            r.ts_ns >= sel.since_ns && r.level >= min_level && sel.scope.allows(r.workspace_id.as_deref()) && keep(r)
        };
        if let (None, Some(id)) = (sel.correlation_id, sel.conversation_id) {
            let lines = self.conversations.get(id).map(|c| &c.lines);
            return lines
                .into_iter()
                .flat_map(|l| l.iter_range(0..l.len()))
                .filter_map(|(_, s)| self.resolve(s))
                .filter(|r| keep(r))
                .cloned()
                .collect();
        }
        if let Some(seqs) = sel.correlation_id.map(|id| self.by_correlation.get(id)) {
            return seqs
                .into_iter()
                .flatten()
                .filter_map(|&s| self.resolve(s))
                .filter(|r| keep(r))
                .cloned()
                .collect();
        }
        let mut out = Vec::new();
        if let Some(lists) = self.by_workspace.lists(sel.scope) {
            let service_ok = |r: &Enriched| sel.services.is_empty() || sel.services.iter().any(|s| **s == *r.service);
            for list in lists {
                let range = list.range(sel.since_ns, i64::MAX);
                out.extend(
                    list.iter_range(range)
                        .filter_map(|(_, s)| self.resolve(s))
                        .filter(|r| service_ok(r) && keep(r))
                        .cloned(),
                );
            }
            return out;
        }
        for (service, list) in self.by_service.iter().enumerate() {
            let wanted =
                sel.services.is_empty() || sel.services.iter().any(|s| s == self.services.name(service as u32));
            if wanted && !list.is_empty() {
                let range = list.range(sel.since_ns, i64::MAX);
                out.extend(
                    list.iter_range(range)
                        .filter_map(|(_, s)| self.resolve(s))
                        .filter(|r| keep(r))
                        .cloned(),
                );
            }
        }
        out
    }

    /// Up to `n` lines of `rec`'s service just before and just after it, in time order.
    pub fn around(&self, rec: &Enriched, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        let list = self
            .services
            .get(&rec.service)
            .and_then(|id| self.by_service.get(id as usize));
        let Some((list, pos)) = list.and_then(|l| l.position(rec.ts_ns, rec.seq).map(|p| (l, p))) else {
            return (Vec::new(), Vec::new());
        };
        let lines = |r| {
            list.iter_range(r)
                .filter_map(|(_, s)| self.resolve(s))
                .cloned()
                .collect()
        };
        (
            lines(pos.saturating_sub(n)..pos),
            lines(pos + 1..(pos + 1 + n).min(list.len())),
        )
    }

    /// Lines held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    pub fn stats(&self) -> HeldStats {
        HeldStats {
            lines: self.ring.len(),
            newest_event_ns: self.newest_event_ns,
            oldest_event_ns: self.by_service.iter().filter_map(|l| l.front().map(|(ts, _)| ts)).min(),
            evicted_newest_event_ns: self.evicted_newest_event_ns,
            inserted_total: self.inserted_total,
            evicted_total: self.evicted_total,
        }
    }

    /// Services with lines held, by name.
    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_service
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(id, _)| self.services.name(id as u32).to_owned())
            .collect();
        v.sort();
        v
    }

    /// Distinct series and interned texts: what the indexed answers iterate over.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }
}

impl crate::query::ContextSource for HeldLines {
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> crate::query::Neighbours {
        HeldLines::around(self, rec, n)
    }
}

fn pop_front(index: &mut HashMap<Box<str>, VecDeque<u64>>, key: &str, seq: u64) {
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
mod tests;
