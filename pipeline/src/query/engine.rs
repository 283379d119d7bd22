//! Selects, ranks, groups and limits lines for one query.

use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::sync::Arc;

use super::render::{self, Entry, QueryOutcome};
use super::spec::{Aggregation, Mode, QuerySpec};
use crate::enrich::Enriched;
use crate::record::LogRecord;

/// The event-time window a query covers, inclusive, Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Window {
    /// The window of `spec.time_range` ending at `now_ns`; unbounded for an id lookup that
    /// gives no `time_range` (a request is found however long ago it ran).
    pub fn for_query(now_ns: i64, spec: &QuerySpec) -> Self {
        if spec.scoped_to_id() && !spec.time_range_given {
            return Window::UNBOUNDED;
        }
        let range_ns = i64::try_from(spec.time_range_s)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000_000);
        Window {
            start_ns: now_ns.saturating_sub(range_ns),
            end_ns: now_ns,
        }
    }

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

/// Runs a query over `candidates`: any superset of the lines it may return, in any order
/// (a view hands in what its indexes select; every filter is applied again here).
pub fn run(
    spec: &QuerySpec,
    candidates: &[Arc<Enriched>],
    window: Window,
    context: &dyn ContextSource,
) -> QueryOutcome {
    let matched: Vec<&Arc<Enriched>> = candidates.iter().filter(|r| matches(spec, window, r)).collect();
    let matched = rank(spec.mode, matched);
    let total_matched = matched.len();

    if spec.aggregation != Aggregation::None {
        return render::groups(spec, window, &matched, group(spec.aggregation, &matched));
    }
    let entries = if spec.deduplicate {
        dedupe(&matched)
    } else {
        matched.iter().map(|r| Entry::single(r)).collect()
    };
    let distinct = entries.len();
    let mut entries = match spec.mode {
        Mode::Conversation => by_conversation(entries),
        _ => entries,
    };
    entries.truncate(spec.limit);
    let context = Context::new(context, spec, window);
    render::lines(spec, window, &matched, total_matched, distinct, entries, &context)
}

/// Whether a line is selected by the query. Views may call it to narrow their candidates
/// before handing them over.
pub fn matches(spec: &QuerySpec, window: Window, r: &Enriched) -> bool {
    r.level >= spec.min_level()
        && window.contains(r.ts_ns)
        && matches_filters(spec, r)
        && selected_by_mode(spec.mode, r)
}

/// Every filter but the time window: services, ids, exclusions.
fn matches_filters(spec: &QuerySpec, r: &LogRecord) -> bool {
    (spec.services.is_empty() || spec.services.contains(&r.service))
        && eq_opt(&spec.correlation_id, &r.correlation_id)
        && eq_opt(&spec.conversation_id, &r.conversation_id)
        && eq_opt(&spec.session_id, &r.session_id)
        && eq_opt(&spec.workspace_id, &r.workspace_id)
        && !spec
            .exclude
            .iter()
            .any(|x| x.matches(&r.message) || r.error.as_deref().is_some_and(|e| x.matches(e)))
}

fn eq_opt(wanted: &Option<String>, actual: &Option<String>) -> bool {
    wanted.as_ref().is_none_or(|w| actual.as_ref() == Some(w))
}

fn selected_by_mode(mode: Mode, r: &Enriched) -> bool {
    match mode {
        Mode::Errors | Mode::Troubleshoot => true,
        Mode::Performance => r.duration_ms.is_some(),
        Mode::Audit => r.audit.is_some(),
        Mode::Conversation => r.conversation_id.is_some(),
    }
}

/// Most useful first: the order in which `limit` keeps lines.
fn rank(mode: Mode, lines: Vec<&Arc<Enriched>>) -> Vec<&Arc<Enriched>> {
    // Sort on keys copied out of the records: comparing through the pointers costs two cache
    // misses per comparison on a large view. `seq` (arrival order) breaks ties.
    type Key = (Reverse<u64>, Reverse<i64>, Reverse<u64>);
    let key = |r: &Enriched| -> Key {
        let first = match mode {
            Mode::Troubleshoot => r.level as u64,
            // Non-negative f64s order like their bit patterns.
            Mode::Performance => r.duration_ms.unwrap_or(0.0).max(0.0).to_bits(),
            Mode::Errors | Mode::Audit | Mode::Conversation => 0,
        };
        (Reverse(first), Reverse(r.ts_ns), Reverse(r.seq))
    };
    let mut keyed: Vec<(Key, &Arc<Enriched>)> = lines.into_iter().map(|r| (key(r), r)).collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Folds lines with the same service, level and message shape into the best-ranked one.
fn dedupe<'a>(ranked: &[&'a Arc<Enriched>]) -> Vec<Entry<'a>> {
    let mut index: HashMap<(&str, crate::record::Level, &str), usize> = HashMap::default();
    let mut entries: Vec<Entry<'a>> = Vec::new();
    for r in ranked {
        let key = (r.service.as_str(), r.level, r.shape.as_str());
        match index.get(&key) {
            Some(&i) => entries[i].absorb(r),
            None => {
                index.insert(key, entries.len());
                entries.push(Entry::single(r));
            }
        }
    }
    entries
}

/// Reorders entries so that each conversation's lines are together, conversations by most
/// recent activity, lines within one in time order.
fn by_conversation(entries: Vec<Entry<'_>>) -> Vec<Entry<'_>> {
    let mut groups: Vec<(String, Vec<Entry<'_>>)> = Vec::new();
    for e in entries {
        let id = e.rec.conversation_id.clone().unwrap_or_default();
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, list)) => list.push(e),
            None => groups.push((id, vec![e])),
        }
    }
    // `entries` arrive newest first, so groups are already ordered by latest activity.
    groups
        .into_iter()
        .flat_map(|(_, mut list)| {
            list.sort_by_key(|e| e.rec.ts_ns);
            list
        })
        .collect()
}

/// Lines of one aggregation group, best-ranked first.
pub struct Group<'a> {
    pub key: String,
    pub lines: Vec<&'a Arc<Enriched>>,
}

fn group<'a>(aggregation: Aggregation, matched: &[&'a Arc<Enriched>]) -> Vec<Group<'a>> {
    let mut index: HashMap<String, usize> = HashMap::default();
    let mut groups: Vec<Group<'a>> = Vec::new();
    for r in matched {
        let key = match aggregation {
            Aggregation::ByService => r.service.clone(),
            Aggregation::ByPattern => r.shape.clone(),
            Aggregation::ByError if r.is_failure() => match r.error.as_deref().filter(|e| !e.is_empty()) {
                Some(error) => crate::shape::message_shape(error),
                None => r.shape.clone(),
            },
            Aggregation::ByError | Aggregation::None => continue,
        };
        match index.get(&key) {
            Some(&i) => groups[i].lines.push(r),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group { key, lines: vec![r] });
            }
        }
    }
    groups.sort_by(|a, b| b.lines.len().cmp(&a.lines.len()).then_with(|| a.key.cmp(&b.key)));
    groups
}

/// Where context lines come from: the lines of the same service just before and after a
/// record, in time order. Views answer this from their own indexes.
pub trait ContextSource {
    /// Up to `n` lines before and `n` after `rec` from its service, nearest first is not
    /// required: both lists in time order.
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>);
}

/// A context source over a set of records: for tests and small in-memory sets.
pub struct SliceContext<'a> {
    by_service: HashMap<&'a str, Vec<&'a Arc<Enriched>>>,
}

impl<'a> SliceContext<'a> {
    pub fn new(records: &'a [Arc<Enriched>]) -> Self {
        let mut by_service: HashMap<&str, Vec<&Arc<Enriched>>> = HashMap::default();
        for r in records {
            by_service.entry(r.service.as_str()).or_default().push(r);
        }
        for list in by_service.values_mut() {
            list.sort_by_key(|r| r.ts_ns);
        }
        SliceContext { by_service }
    }
}

impl ContextSource for SliceContext<'_> {
    fn around(&self, rec: &Arc<Enriched>, n: usize) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        let Some(list) = self.by_service.get(rec.service.as_str()) else {
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
    fn new(source: &'a dyn ContextSource, spec: &'a QuerySpec, window: Window) -> Self {
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
    pub fn around(&self, rec: &Arc<Enriched>) -> (Vec<Arc<Enriched>>, Vec<Arc<Enriched>>) {
        // Ask for extra lines so that filtered-out neighbours do not leave the context short.
        let (before, after) = self.source.around(rec, self.lines * 2 + 2);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::spec::QuerySpec;
    use crate::record::Level;

    const S: i64 = 1_000_000_000;

    fn line(t: i64, service: &str, level: Level, msg: &str) -> Arc<Enriched> {
        Arc::new(Enriched::new(LogRecord::new(t * S, service, level, msg)))
    }

    fn run(spec: &QuerySpec, recs: &[Arc<Enriched>], window: Window) -> QueryOutcome {
        super::run(spec, recs, window, &SliceContext::new(recs))
    }

    fn spec(q: &[(&str, &str)]) -> QuerySpec {
        QuerySpec::from_params(q.iter().copied()).expect("valid spec")
    }

    fn fixture() -> Vec<Arc<Enriched>> {
        let mut slow = LogRecord::new(50 * S, "api", Level::Info, "chat done");
        slow.duration_ms = Some(5200.0);
        let mut fast = LogRecord::new(51 * S, "api", Level::Info, "chat done");
        fast.duration_ms = Some(120.0);
        let mut conv = LogRecord::new(52 * S, "anythingllm", Level::Info, "reply sent");
        conv.conversation_id = Some("conv-1".into());
        vec![
            line(10, "api", Level::Info, "request 1 start"),
            line(11, "api", Level::Error, "upstream timeout after 30s"),
            line(12, "api", Level::Info, "request 1 end"),
            line(13, "worker", Level::Warn, "queue depth 900"),
            line(14, "api", Level::Error, "upstream timeout after 12s"),
            line(15, "admin-ui", Level::Info, "User bob logged in"),
            line(16, "api", Level::Fatal, "out of memory"),
            line(1, "api", Level::Error, "too old for the window"),
            Arc::new(Enriched::new(slow)),
            Arc::new(Enriched::new(fast)),
            Arc::new(Enriched::new(conv)),
        ]
    }

    const W: Window = Window {
        start_ns: 5 * S,
        end_ns: 100 * S,
    };

    #[test]
    fn errors_mode_newest_first_within_window() {
        let out = run(&spec(&[("mode", "errors")]), &fixture(), W);
        assert_eq!(out.total_matched, 3);
        let msgs: Vec<_> = out
            .lines_ref()
            .iter()
            .map(|l| l["message"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            msgs,
            [
                "out of memory",
                "upstream timeout after 12s",
                "upstream timeout after 30s"
            ]
        );
    }

    #[test]
    fn troubleshoot_ranks_severity_and_adds_context() {
        let out = run(&spec(&[("include_context", "1"), ("services", "api")]), &fixture(), W);
        assert_eq!(out.total_matched, 3);
        let first = &out.lines_ref()[0];
        assert_eq!(first["level"], "fatal");
        let second = &out.lines_ref()[1];
        assert_eq!(second["message"], "upstream timeout after 12s");
        let ctx = &out.lines_ref()[2]["context"];
        assert_eq!(ctx["before"][0]["message"], "request 1 start");
        assert_eq!(ctx["after"][0]["message"], "request 1 end");
    }

    #[test]
    fn dedupe_folds_same_shape_and_limit_truncates() {
        let out = run(
            &spec(&[("mode", "errors"), ("deduplicate", "true"), ("limit", "1")]),
            &fixture(),
            W,
        );
        assert_eq!(out.total_matched, 3);
        assert_eq!(out.returned, 1);
        assert!(out.truncated);
        let out = run(&spec(&[("mode", "errors"), ("deduplicate", "true")]), &fixture(), W);
        assert_eq!(out.returned, 2);
        assert_eq!(out.lines_ref()[1]["repeat_count"], 2);
        assert!(!out.truncated);
    }

    #[test]
    fn performance_audit_conversation_modes() {
        let perf = run(&spec(&[("mode", "performance")]), &fixture(), W);
        assert_eq!(perf.total_matched, 2);
        assert_eq!(perf.lines_ref()[0]["duration_ms"], 5200.0);
        assert!(perf.summary.contains("5200"), "{}", perf.summary);
        let audit = run(&spec(&[("mode", "audit")]), &fixture(), W);
        assert_eq!(audit.total_matched, 1);
        assert_eq!(audit.lines_ref()[0]["audit_category"], "auth");
        let conv = run(&spec(&[("mode", "conversation")]), &fixture(), W);
        assert_eq!(conv.total_matched, 1);
        assert_eq!(conv.conversations.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn aggregations_group_all_matched_lines() {
        let out = run(
            &spec(&[("mode", "errors"), ("aggregation", "by_pattern")]),
            &fixture(),
            W,
        );
        let groups = out.groups.as_ref().expect("groups");
        assert_eq!(groups[0]["key"], "upstream timeout after <n>s");
        assert_eq!(groups[0]["count"], 2);
        let out = run(
            &spec(&[("mode", "troubleshoot"), ("aggregation", "by_service")]),
            &fixture(),
            W,
        );
        let groups = out.groups.as_ref().expect("groups");
        assert_eq!(
            (groups[0]["key"].as_str(), groups[0]["count"].as_u64()),
            (Some("api"), Some(3))
        );
    }

    #[test]
    fn timeline_is_ascending_and_narrative_mentions_services() {
        let out = run(&spec(&[("mode", "errors"), ("format", "timeline")]), &fixture(), W);
        let tl = out.timeline.as_ref().expect("timeline");
        assert_eq!(tl[0]["message"], "upstream timeout after 30s");
        assert_eq!(tl[2]["message"], "out of memory");
        let out = run(&spec(&[("mode", "errors"), ("format", "narrative")]), &fixture(), W);
        let text = out.narrative.as_deref().expect("narrative");
        assert!(text.contains("api"), "{text}");
        assert!(text.contains("3 lines"), "{text}");
        assert!(text.contains("across 1 service (api 3)"), "{text}");
    }

    #[test]
    fn exclusions_apply_everywhere() {
        let out = run(
            &spec(&[("mode", "errors"), ("exclude_patterns", "TIMEOUT")]),
            &fixture(),
            W,
        );
        assert_eq!(out.total_matched, 1);
    }
}
