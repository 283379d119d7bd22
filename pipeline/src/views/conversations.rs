//! Conversations held, and how many have a line (or a failing line) in a window, counted
//! without visiting every conversation.
//!
//! Those with a line in `[start, end]` are those whose last line is at or after `start`,
//! minus those of them whose lines from `start` on all come after `end`; or, the mirror,
//! those whose first line is at or before `end`, minus those whose lines up to `end` all
//! come before `start`. The first and last lines of every conversation are kept bucketed by
//! minute (`RankedTimes`), so the counts cost the minutes held, and only the conversations
//! reaching past the nearer side of the window are visited: for the usual window (up to
//! now) those still talking after its end, none or a few.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap as HashMap;

use super::latency::minute;
use super::time_list::TimeList;

/// One conversation's lines, and its failing lines, in event-time order.
#[derive(Default)]
pub struct Conversation {
    pub lines: TimeList,
    pub failing: TimeList,
}

#[derive(Default)]
pub struct ConversationBook {
    by_id: HashMap<Box<str>, Conversation>,
    /// Conversations with at least one failing line held.
    failing: usize,
    spans: SpanRanks,
    failing_spans: SpanRanks,
}

impl ConversationBook {
    pub fn insert(&mut self, id: &str, ts_ns: i64, seq: u64, failure: bool) {
        let c = match self.by_id.get_mut(id) {
            Some(c) => c,
            None => self.by_id.entry(id.into()).or_default(),
        };
        let before = span(&c.lines);
        c.lines.insert(ts_ns, seq);
        self.spans.moved(before, span(&c.lines));
        if failure {
            let before = span(&c.failing);
            self.failing += usize::from(c.failing.is_empty());
            c.failing.insert(ts_ns, seq);
            self.failing_spans.moved(before, span(&c.failing));
        }
    }

    pub fn evict(&mut self, id: &str, ts_ns: i64, seq: u64, failure: bool) {
        let Some(c) = self.by_id.get_mut(id) else {
            return;
        };
        let before = span(&c.lines);
        c.lines.remove(ts_ns, seq);
        self.spans.moved(before, span(&c.lines));
        if failure {
            let before = span(&c.failing);
            if c.failing.remove(ts_ns, seq) && c.failing.is_empty() {
                self.failing -= 1;
            }
            self.failing_spans.moved(before, span(&c.failing));
        }
        if c.lines.is_empty() {
            self.by_id.remove(id);
        }
    }

    pub fn get(&self, id: &str) -> Option<&Conversation> {
        self.by_id.get(id)
    }

    /// Conversations with a line in `[start_ns, end_ns]`, and those with a failing line
    /// there; `conversation_of` names the conversation of a held line's arrival sequence.
    pub fn counts_in<'a>(
        &'a self,
        start_ns: i64,
        end_ns: i64,
        conversation_of: impl Fn(u64) -> Option<&'a str>,
    ) -> (usize, usize) {
        if start_ns > end_ns {
            return (0, 0);
        }
        let lines = self.count_in(&self.spans, |c| &c.lines, (start_ns, end_ns), &conversation_of);
        let failing = self.count_in(
            &self.failing_spans,
            |c| &c.failing,
            (start_ns, end_ns),
            &conversation_of,
        );
        (lines, failing)
    }

    fn count_in<'a>(
        &'a self,
        ranks: &SpanRanks,
        lines_of: impl Fn(&Conversation) -> &TimeList,
        (start_ns, end_ns): (i64, i64),
        conversation_of: impl Fn(u64) -> Option<&'a str>,
    ) -> usize {
        let misses = |outside: &mut dyn Iterator<Item = (i64, u64)>| {
            outside
                .filter_map(|(_, seq)| self.by_id.get(conversation_of(seq)?))
                .filter(|c| lines_of(c).range(start_ns, end_ns).is_empty())
                .count()
        };
        // Visit the nearer outside: conversations still talking after the window, or those
        // that started before it.
        let (after, before) = (ranks.last.at_least(end_ns + 1), ranks.first.at_most(start_ns - 1));
        if after <= before {
            ranks.last.at_least(start_ns) - misses(&mut ranks.last.after(end_ns))
        } else {
            ranks.first.at_most(end_ns) - misses(&mut ranks.first.before(start_ns))
        }
    }
}

fn span(lines: &TimeList) -> Option<((i64, u64), (i64, u64))> {
    Some((lines.front()?, lines.back()?))
}

/// The first and last lines of a set of conversations.
#[derive(Default)]
struct SpanRanks {
    first: RankedTimes,
    last: RankedTimes,
}

impl SpanRanks {
    fn moved(&mut self, before: Option<((i64, u64), (i64, u64))>, after: Option<((i64, u64), (i64, u64))>) {
        self.first.replace(before.map(|s| s.0), after.map(|s| s.0));
        self.last.replace(before.map(|s| s.1), after.map(|s| s.1));
    }
}

/// A set of (event time, arrival sequence), bucketed by minute, each bucket sorted: counts
/// on one side of a time cost the minutes on that side.
#[derive(Default)]
struct RankedTimes(BTreeMap<i64, VecDeque<(i64, u64)>>);

impl RankedTimes {
    fn replace(&mut self, old: Option<(i64, u64)>, new: Option<(i64, u64)>) {
        if old == new {
            return;
        }
        if let Some(item) = old {
            self.remove(item);
        }
        if let Some(item) = new {
            let bucket = self.0.entry(minute(item.0)).or_default();
            let at = bucket.partition_point(|x| *x < item);
            bucket.insert(at, item);
        }
    }

    fn remove(&mut self, item: (i64, u64)) {
        let m = minute(item.0);
        if let Some(bucket) = self.0.get_mut(&m) {
            if let Ok(at) = bucket.binary_search(&item) {
                bucket.remove(at);
            }
            if bucket.is_empty() {
                self.0.remove(&m);
            }
        }
    }

    /// How many are at `t` or later.
    fn at_least(&self, t: i64) -> usize {
        let m = minute(t);
        let later: usize = self.0.range(m + 1..).map(|(_, b)| b.len()).sum();
        let here = self.0.get(&m).map_or(0, |b| b.len() - b.partition_point(|x| x.0 < t));
        later + here
    }

    /// How many are at `t` or earlier.
    fn at_most(&self, t: i64) -> usize {
        let m = minute(t);
        let earlier: usize = self.0.range(..m).map(|(_, b)| b.len()).sum();
        let here = self.0.get(&m).map_or(0, |b| b.partition_point(|x| x.0 <= t));
        earlier + here
    }

    /// Those after `t`.
    fn after(&self, t: i64) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.0
            .range(minute(t)..)
            .flat_map(|(_, b)| b.iter().copied())
            .filter(move |x| x.0 > t)
    }

    /// Those before `t`.
    fn before(&self, t: i64) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.0
            .range(..=minute(t))
            .flat_map(|(_, b)| b.iter().copied())
            .take_while(move |x| x.0 < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000_000;

    /// Distinct conversations among `lines` (conversation, second, failing) in `[start, end]`.
    fn visit(lines: &[(u8, i64, bool)], start: i64, end: i64, failing_only: bool) -> usize {
        let mut seen: Vec<u8> = lines
            .iter()
            .filter(|(_, t, f)| (!failing_only || *f) && (start..=end).contains(&(t * S)))
            .map(|(c, _, _)| *c)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    proptest! {
        /// Every way of counting agrees with visiting each conversation, through inserts,
        /// late lines and evictions, for windows inside, touching either end of, or covering
        /// what is held.
        #[test]
        fn counts_match_a_visit_of_every_conversation(
            lines in prop::collection::vec((0u8..6, 0i64..400, any::<bool>()), 1..120),
            evict in 0usize..60,
            windows in prop::collection::vec((0i64..420, 0i64..420), 1..8),
        ) {
            let mut book = ConversationBook::default();
            for (seq, (c, t, f)) in lines.iter().enumerate() {
                book.insert(&format!("c{c}"), t * S, seq as u64, *f);
            }
            let evict = evict.min(lines.len() - 1);
            for (seq, (c, t, f)) in lines.iter().enumerate().take(evict) {
                book.evict(&format!("c{c}"), t * S, seq as u64, *f);
            }
            let kept = &lines[evict..];
            let names: Vec<String> = lines.iter().map(|(c, _, _)| format!("c{c}")).collect();
            let conversation_of = |seq: u64| names.get(seq as usize).map(String::as_str);
            let oldest = kept.iter().map(|l| l.1 * S).min().unwrap_or(0);
            let newest = kept.iter().map(|l| l.1 * S).max().unwrap_or(0);
            for (a, b) in windows {
                let (start, end) = (a.min(b) * S, a.max(b) * S);
                for (s, e) in [(start, end), (start, newest.max(end)), (oldest.min(start), end)] {
                    let expected = (visit(kept, s, e, false), visit(kept, s, e, true));
                    prop_assert_eq!(book.counts_in(s, e, conversation_of), expected);
                }
            }
        }
    }
}
