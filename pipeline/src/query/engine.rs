//! The scan: selects, ranks, groups and limits lines for one query from any set of
//! candidates (Redis, an id's lines, filters the views keep no index for). The views answer
//! the common queries from their indexes instead (`views::HeldLines::answer`); both hand a
//! `Selected` to the same rendering.

use rustc_hash::FxHashMap as HashMap;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::digest::{DigestBuilder, GroupDigest};
use super::render::{QueryOutcome, render};
use super::selection::{Context, ContextSource, Entry, Selected, Window, matches_filters};
use super::spec::{Aggregation, Mode, QuerySpec};
use crate::enrich::Enriched;
use crate::record::Level;

/// Runs a query over `candidates`: any superset of the lines it may return, in any order
/// (every filter is applied again here).
pub fn run(
    spec: &QuerySpec,
    candidates: &[Arc<Enriched>],
    window: Window,
    context: &dyn ContextSource,
) -> QueryOutcome {
    let selected = scan(spec, candidates, window);
    render(spec, window, selected, &Context::new(context, spec, window))
}

/// Selects from `candidates` what `render` needs.
pub fn scan(spec: &QuerySpec, candidates: &[Arc<Enriched>], window: Window) -> Selected {
    let matched: Vec<&Arc<Enriched>> = candidates.iter().filter(|r| matches(spec, window, r)).collect();
    let mut digest = DigestBuilder::default();
    for r in &matched {
        digest.add_line(r, spec.mode == Mode::Conversation);
    }
    let digest = digest.build(None);
    if spec.aggregation != Aggregation::None {
        let matched = rank(spec.mode, matched, usize::MAX);
        let mut groups = group(spec.aggregation, &matched);
        let distinct_groups = groups.len();
        groups.truncate(spec.limit);
        return Selected {
            digest,
            groups,
            distinct_groups,
            ..Selected::default()
        };
    }
    // Only de-duplication and conversations need every match in rank order; otherwise
    // `limit` lines are picked without sorting the rest.
    let whole = spec.deduplicate || spec.mode == Mode::Conversation;
    let total = matched.len();
    let ranked = rank(spec.mode, matched, if whole { usize::MAX } else { spec.limit });
    let entries = if spec.deduplicate {
        dedupe(&ranked)
    } else {
        ranked.iter().map(|r| Entry::single(r)).collect()
    };
    let distinct = if spec.deduplicate { entries.len() } else { total };
    let mut entries = match spec.mode {
        Mode::Conversation => by_conversation(entries),
        _ => entries,
    };
    entries.truncate(spec.limit);
    Selected {
        digest,
        entries,
        distinct,
        ..Selected::default()
    }
}

/// Whether a line is selected by the query. Views may call it to narrow their candidates
/// before handing them over.
pub fn matches(spec: &QuerySpec, window: Window, r: &Enriched) -> bool {
    r.level >= spec.min_level()
        && window.contains(r.ts_ns)
        && matches_filters(spec, r)
        && selected_by_mode(spec.mode, r)
        && spec
            .template_id
            .is_none_or(|t| r.template.is_some_and(|tag| tag.id == t))
}

pub fn selected_by_mode(mode: Mode, r: &Enriched) -> bool {
    match mode {
        Mode::Errors | Mode::Troubleshoot => true,
        Mode::Performance => r.duration_ms.is_some(),
        Mode::Audit => r.audit.is_some(),
        Mode::Conversation => r.conversation_id.is_some(),
    }
}

/// The order in which `limit` keeps lines, smallest first: most useful first.
pub type RankKey = (Reverse<u64>, Reverse<i64>, Reverse<u64>);

pub fn rank_key(mode: Mode, level: Level, duration_ms: Option<f64>, ts_ns: i64, seq: u64) -> RankKey {
    let first = match mode {
        Mode::Troubleshoot => level as u64,
        Mode::Performance => duration_ms.map_or(0, duration_bits),
        Mode::Errors | Mode::Audit | Mode::Conversation => 0,
    };
    (Reverse(first), Reverse(ts_ns), Reverse(seq))
}

/// A duration as a key that orders like the duration: non-negative f64s order like their
/// bit patterns (negative and NaN count as 0).
pub fn duration_bits(duration_ms: f64) -> u64 {
    duration_ms.max(0.0).to_bits()
}

/// What `by_error` groups a failing line under when it carries an error: the error's
/// shape; None when it has none (its message shape stands in).
pub fn error_shape(r: &Enriched) -> Option<String> {
    r.error
        .as_deref()
        .filter(|e| !e.is_empty() && r.is_failure())
        .map(crate::shape::message_shape)
}

/// The best `keep` lines in rank order; `seq` (arrival order) breaks ties.
fn rank(mode: Mode, lines: Vec<&Arc<Enriched>>, keep: usize) -> Vec<&Arc<Enriched>> {
    // Keys copied out of the records: comparing through the pointers costs two cache misses
    // per comparison on a large view.
    let mut keyed: Vec<(RankKey, &Arc<Enriched>)> = lines
        .into_iter()
        .map(|r| (rank_key(mode, r.level, r.duration_ms, r.ts_ns, r.seq), r))
        .collect();
    if keep < keyed.len() {
        if keep == 0 {
            return Vec::new();
        }
        keyed.select_nth_unstable_by_key(keep - 1, |(k, _)| *k);
        keyed.truncate(keep);
    }
    keyed.sort_unstable_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Folds lines with the same service, level and message shape into the best-ranked one.
fn dedupe(ranked: &[&Arc<Enriched>]) -> Vec<Entry> {
    let mut index: HashMap<(&str, Level, &str), usize> = HashMap::default();
    let mut entries: Vec<Entry> = Vec::new();
    for r in ranked {
        let key = (r.service.as_ref(), r.level, &*r.shape);
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
fn by_conversation(entries: Vec<Entry>) -> Vec<Entry> {
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::default();
    for e in entries {
        let id = e.rec.conversation_id.as_deref().unwrap_or_default().to_owned();
        match index.get(&id) {
            Some(&i) => groups[i].1.push(e),
            None => {
                index.insert(id.clone(), groups.len());
                groups.push((id, vec![e]));
            }
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

/// The key a line is grouped under, or None when the aggregation leaves it out.
pub fn group_key(aggregation: Aggregation, r: &Enriched) -> Option<String> {
    Some(match aggregation {
        Aggregation::ByService => r.service.to_string(),
        Aggregation::ByPattern => r.shape.to_string(),
        Aggregation::ByError if r.is_failure() => error_shape(r).unwrap_or_else(|| r.shape.to_string()),
        Aggregation::ByError | Aggregation::None => return None,
    })
}

/// Groups ranked lines; most lines first, ties by key.
fn group(aggregation: Aggregation, ranked: &[&Arc<Enriched>]) -> Vec<GroupDigest> {
    struct Acc {
        g: GroupDigest,
        services: HashMap<String, usize>,
    }
    let mut index: HashMap<String, usize> = HashMap::default();
    let mut groups: Vec<Acc> = Vec::new();
    for r in ranked {
        let Some(key) = group_key(aggregation, r) else {
            continue;
        };
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Acc {
                g: GroupDigest {
                    key,
                    count: 0,
                    first_ns: r.ts_ns,
                    last_ns: r.ts_ns,
                    levels: BTreeMap::new(),
                    services: Vec::new(),
                    correlation_ids: Vec::new(),
                    sample: Arc::clone(r),
                },
                services: HashMap::default(),
            });
            groups.len() - 1
        });
        let acc = &mut groups[i];
        let g = &mut acc.g;
        g.count += 1;
        g.first_ns = g.first_ns.min(r.ts_ns);
        g.last_ns = g.last_ns.max(r.ts_ns);
        *g.levels.entry(r.level.as_str()).or_default() += 1;
        *acc.services.entry(r.service.to_string()).or_default() += 1;
        if let Some(c) = r.correlation_id.as_deref()
            && g.correlation_ids.len() < 5
            && !g.correlation_ids.iter().any(|x| x == c)
        {
            g.correlation_ids.push(c.to_owned());
        }
    }
    let mut out: Vec<GroupDigest> = groups
        .into_iter()
        .map(|mut acc| {
            let mut services: Vec<(String, usize)> = acc.services.into_iter().collect();
            services.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            acc.g.services = services.into_iter().map(|(s, _)| s).collect();
            acc.g
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    out
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
