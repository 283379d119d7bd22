//! Selects, ranks, groups and limits lines for one query.

use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::sync::Arc;

use super::render::{self, QueryOutcome};
use super::selection::{Context, ContextSource, Entry, Group, Window, matches_filters};
use super::spec::{Aggregation, Mode, QuerySpec};
use crate::enrich::Enriched;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::selection::SliceContext;
    use crate::query::spec::QuerySpec;
    use crate::record::Level;
    use crate::record::LogRecord;

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
