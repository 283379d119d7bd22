//! Queries answered from the indexes: the series a query selects, their counts in the
//! window (binary searches), the best-ranked lines (a k-way merge that stops at `limit`),
//! de-duplicated entries and aggregation groups per series, latency from the sketches.
//! The cost follows the number of series and the answer's size, not the lines held.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use super::HeldLines;
use super::merge::{Chosen, Merge};
use crate::enrich::Enriched;
use crate::query::{
    Aggregation, ConversationTotals, DigestBuilder, Entry, GroupDigest, LatencyRow, Mode, QuerySpec, RankKey, Selected,
    Window,
};
use crate::record::Level;

/// Lines scanned at most to find a group's correlation ids.
const MAX_ID_SCAN: usize = 2_000;

/// Whether the indexes answer `spec` exactly. Filters they keep no index for (ids,
/// workspace, session, exclusions) go through the scan instead, and so does conversation
/// mode narrowed by service, severity or de-duplication (conversations are counted whole).
pub fn indexed(spec: &QuerySpec) -> bool {
    let whole_conversations = spec.services.is_empty() && spec.severity_threshold.is_none() && !spec.deduplicate;
    // Series are per workspace, so a scoped caller picks its own; but the latency sketches
    // and the conversation book count every workspace's lines, so those modes scan (through
    // the workspace index).
    (spec.scope.is_all() || !matches!(spec.mode, Mode::Performance | Mode::Conversation))
        && spec.correlation_id.is_none()
        && spec.conversation_id.is_none()
        && spec.session_id.is_none()
        && spec.workspace_id.is_none()
        && spec.template_id.is_none()
        && spec.exclude.is_empty()
        && (spec.mode != Mode::Conversation || whole_conversations)
}

impl HeldLines {
    /// What `render` needs for `spec` over `window`; `spec` must pass `indexed`.
    pub fn answer(&self, spec: &QuerySpec, window: Window) -> Selected {
        let chosen = self.chosen(spec, window);
        let mut digest = DigestBuilder::default();
        for c in &chosen {
            let key = &c.series.key;
            let n = c.count();
            let slow = if key.slow { n } else { 0 };
            let shape = self.texts.name(key.shape);
            digest.add(
                self.services.name(key.service),
                key.level,
                shape,
                n,
                c.span(),
                slow,
                key.audit,
            );
        }
        let latency = (spec.mode == Mode::Performance).then(|| self.latency_rows(spec, window, &chosen));
        let mut digest = digest.build(latency);
        if spec.mode == Mode::Conversation && spec.aggregation == Aggregation::None {
            (digest.conversation_count, digest.conversations_failing) = self.conversation_counts(window);
            let (entries, totals) = self.conversation_entries(spec, window, &chosen);
            digest.conversations = totals;
            let distinct = digest.total;
            return Selected {
                digest,
                entries,
                distinct,
                ..Selected::default()
            };
        }
        let mut selected = Selected {
            digest,
            ..Selected::default()
        };
        if spec.aggregation != Aggregation::None {
            let (groups, distinct) = self.groups(spec, window, &chosen);
            selected.groups = groups;
            selected.distinct_groups = distinct;
        } else if spec.deduplicate {
            let (entries, distinct) = self.deduplicated(spec, window, &chosen);
            selected.entries = entries;
            selected.distinct = distinct;
        } else {
            let mut merge = Merge::new(self, spec.mode, window, chosen.iter());
            selected.entries = (&mut merge)
                .take(spec.limit)
                .filter_map(|(_, seq)| self.resolve(seq).map(Entry::single))
                .collect();
            selected.distinct = selected.digest.total;
        }
        selected
    }

    fn chosen(&self, spec: &QuerySpec, window: Window) -> Vec<Chosen<'_>> {
        let services: Option<Vec<u32>> =
            (!spec.services.is_empty()).then(|| spec.services.iter().filter_map(|s| self.services.get(s)).collect());
        let min_level = spec.min_level();
        let workspaces: Option<Vec<u32>> = spec.scope.workspaces().map(|ids| {
            let mut ids: Vec<u32> = ids.iter().filter_map(|w| self.workspaces.get(w)).collect();
            if spec.scope.sees_unscoped() {
                ids.push(super::series::NO_WORKSPACE);
            }
            ids
        });
        self.series
            .iter()
            .filter(|(_, s)| {
                let k = &s.key;
                k.level >= min_level
                    && services.as_ref().is_none_or(|ids| ids.contains(&k.service))
                    && workspaces.as_ref().is_none_or(|ids| ids.contains(&k.workspace))
                    && match spec.mode {
                        Mode::Performance => k.timed,
                        Mode::Audit => k.audit.is_some(),
                        Mode::Conversation => k.conversation,
                        Mode::Errors | Mode::Troubleshoot => true,
                    }
            })
            .map(|(_, series)| Chosen {
                series,
                range: series.lines.range(window.start_ns, window.end_ns),
            })
            .filter(|c| c.count() > 0)
            .collect()
    }

    /// Conversations with a line in the window, and those with a failing one there.
    fn conversation_counts(&self, window: Window) -> (usize, usize) {
        let conversation_of = |seq| self.resolve(seq)?.conversation_id.as_deref();
        self.conversations
            .counts_in(window.start_ns, window.end_ns, conversation_of)
    }

    /// Conversations by latest activity, each with its lines in the window in time order,
    /// until `limit` lines; with the totals of the conversations shown.
    fn conversation_entries(
        &self,
        spec: &QuerySpec,
        window: Window,
        chosen: &[Chosen<'_>],
    ) -> (Vec<Entry>, HashMap<String, ConversationTotals>) {
        let mut entries: Vec<Entry> = Vec::new();
        let mut totals: HashMap<String, ConversationTotals> = HashMap::default();
        for (_, seq) in Merge::new(self, Mode::Conversation, window, chosen.iter()) {
            if entries.len() >= spec.limit {
                break;
            }
            let Some(id) = self.resolve(seq).and_then(|r| r.conversation_id.as_deref()) else {
                continue;
            };
            if totals.contains_key(id) {
                continue;
            }
            let mut lines: Vec<&Arc<Enriched>> = self
                .conversations
                .get(id)
                .into_iter()
                .flat_map(|c| {
                    let range = c.lines.range(window.start_ns, window.end_ns);
                    c.lines.iter_range(range).filter_map(|(_, s)| self.resolve(s))
                })
                .collect();
            // Time order; lines at the same instant newest arrival first, as ranked.
            lines.sort_by_key(|r| (r.ts_ns, Reverse(r.seq)));
            let t = totals.entry(id.to_owned()).or_default();
            for r in lines {
                t.add(r);
                entries.push(Entry::single(r));
            }
        }
        entries.truncate(spec.limit);
        (entries, totals)
    }

    /// Per (service, operation): exact count and max, percentiles and mean from sketches.
    fn latency_rows(&self, spec: &QuerySpec, window: Window, chosen: &[Chosen<'_>]) -> Vec<LatencyRow> {
        let mut by_op: BTreeMap<(u32, u32), (usize, f64)> = BTreeMap::new();
        for c in chosen {
            let best = Merge::new(self, Mode::Performance, window, std::iter::once(c)).next();
            let max = best.map_or(0.0, |((Reverse(bits), _, _), _)| f64::from_bits(bits));
            let row = by_op.entry((c.series.key.service, c.series.key.operation)).or_default();
            row.0 += c.count();
            row.1 = row.1.max(max);
        }
        let min_level = spec.min_level();
        by_op
            .into_iter()
            .map(|((service, op), (count, max))| {
                let p = self
                    .latency
                    .percentiles(window.start_ns, window.end_ns, |k| {
                        k.0 == service && k.1 == op && k.2 >= min_level
                    })
                    .unwrap_or_default();
                LatencyRow {
                    service: self.services.name(service).to_owned(),
                    operation: self.texts.name(op).to_owned(),
                    count,
                    p50_ms: p.p50,
                    p95_ms: p.p95,
                    p99_ms: p.p99,
                    max_ms: max,
                    mean_ms: p.mean,
                }
            })
            .collect()
    }

    /// One entry per (service, level, shape), best-ranked first.
    fn deduplicated(&self, spec: &QuerySpec, window: Window, chosen: &[Chosen<'_>]) -> (Vec<Entry>, usize) {
        struct Acc {
            best: (RankKey, u64),
            count: usize,
            span: (i64, i64),
        }
        let mut by_key: HashMap<(u32, Level, u32), Acc> = HashMap::default();
        for c in chosen {
            let Some(best) = Merge::new(self, spec.mode, window, std::iter::once(c)).next() else {
                continue;
            };
            let span = c.span();
            let k = &c.series.key;
            let acc = by_key
                .entry((k.service, k.level, k.shape))
                .or_insert(Acc { best, count: 0, span });
            acc.best = acc.best.min(best);
            acc.count += c.count();
            acc.span = (acc.span.0.min(span.0), acc.span.1.max(span.1));
        }
        let distinct = by_key.len();
        let mut kept: Vec<Acc> = by_key.into_values().collect();
        kept.sort_unstable_by_key(|a| a.best);
        kept.truncate(spec.limit);
        let entries = kept
            .into_iter()
            .filter_map(|a| {
                self.resolve(a.best.1).map(|rec| Entry {
                    rec: rec.clone(),
                    count: a.count,
                    first_ns: a.span.0,
                    last_ns: a.span.1,
                })
            })
            .collect();
        (entries, distinct)
    }

    fn groups(&self, spec: &QuerySpec, window: Window, chosen: &[Chosen<'_>]) -> (Vec<GroupDigest>, usize) {
        struct Acc<'c> {
            count: usize,
            span: (i64, i64),
            levels: BTreeMap<&'static str, usize>,
            services: HashMap<u32, usize>,
            best: (RankKey, u64),
            members: Vec<&'c Chosen<'c>>,
        }
        let mut by_key: HashMap<&str, Acc<'_>> = HashMap::default();
        for c in chosen {
            let k = &c.series.key;
            let name = match spec.aggregation {
                Aggregation::ByService => self.services.name(k.service),
                Aggregation::ByPattern => self.texts.name(k.shape),
                Aggregation::ByError if k.failure => self.texts.name(k.error_shape),
                Aggregation::ByError | Aggregation::None => continue,
            };
            let Some(best) = Merge::new(self, spec.mode, window, std::iter::once(c)).next() else {
                continue;
            };
            let span = c.span();
            let acc = by_key.entry(name).or_insert_with(|| Acc {
                count: 0,
                span,
                levels: BTreeMap::new(),
                services: HashMap::default(),
                best,
                members: Vec::new(),
            });
            acc.count += c.count();
            acc.span = (acc.span.0.min(span.0), acc.span.1.max(span.1));
            *acc.levels.entry(k.level.as_str()).or_default() += c.count();
            *acc.services.entry(k.service).or_default() += c.count();
            acc.best = acc.best.min(best);
            acc.members.push(c);
        }
        let distinct = by_key.len();
        let mut groups: Vec<(&str, Acc<'_>)> = by_key.into_iter().collect();
        groups.sort_unstable_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        groups.truncate(spec.limit);
        let out = groups
            .into_iter()
            .filter_map(|(key, acc)| {
                let sample = self.resolve(acc.best.1)?.clone();
                let mut services: Vec<(u32, usize)> = acc.services.into_iter().collect();
                services.sort_unstable_by(|a, b| {
                    b.1.cmp(&a.1)
                        .then_with(|| self.services.name(a.0).cmp(self.services.name(b.0)))
                });
                let mut correlation_ids: Vec<String> = Vec::new();
                let merge = Merge::new(self, spec.mode, window, acc.members.into_iter());
                for (_, seq) in merge.take(MAX_ID_SCAN) {
                    if let Some(c) = self.resolve(seq).and_then(|r| r.correlation_id.as_deref())
                        && !correlation_ids.iter().any(|x| x == c)
                    {
                        correlation_ids.push(c.to_owned());
                        if correlation_ids.len() == 5 {
                            break;
                        }
                    }
                }
                Some(GroupDigest {
                    key: key.to_owned(),
                    count: acc.count,
                    first_ns: acc.span.0,
                    last_ns: acc.span.1,
                    levels: acc.levels,
                    services: services
                        .into_iter()
                        .map(|(s, _)| self.services.name(s).to_owned())
                        .collect(),
                    correlation_ids,
                    sample,
                })
            })
            .collect();
        (out, distinct)
    }
}
