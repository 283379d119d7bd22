//! The k-way merge behind every indexed answer: the lines of some series, best-ranked first
//! (newest first, by level first in troubleshoot mode, slowest first in performance mode),
//! produced lazily so that taking `limit` lines costs `limit` heap steps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, btree_set};
use std::iter::Rev;
use std::ops::Range;

use super::HeldLines;
use super::series::Series;
use super::time_list::TimeList;
use crate::query::{Mode, RankKey, Window, rank_key};
use crate::record::Level;

/// A selected series and its lines inside the window.
pub(super) struct Chosen<'a> {
    pub(super) series: &'a Series,
    pub(super) range: Range<usize>,
}

impl Chosen<'_> {
    pub(super) fn count(&self) -> usize {
        self.range.len()
    }

    pub(super) fn span(&self) -> (i64, i64) {
        let lines = &self.series.lines;
        (lines.get(self.range.start).0, lines.get(self.range.end - 1).0)
    }
}

/// Walks series lines best-ranked first: newest first (by level first in troubleshoot
/// mode), or slowest first in performance mode.
enum Cursor<'a> {
    Time {
        lines: &'a TimeList,
        next: usize,
        lo: usize,
        level: Level,
    },
    Slow {
        slowest: Rev<btree_set::Iter<'a, (u64, u64)>>,
        level: Level,
    },
}

pub(super) struct Merge<'a> {
    held: &'a HeldLines,
    mode: Mode,
    window: Window,
    cursors: Vec<Cursor<'a>>,
    heap: BinaryHeap<Reverse<(RankKey, u64, usize)>>,
}

impl<'a> Merge<'a> {
    pub(super) fn new(
        held: &'a HeldLines,
        mode: Mode,
        window: Window,
        chosen: impl Iterator<Item = &'a Chosen<'a>>,
    ) -> Self {
        let cursors: Vec<Cursor<'a>> = chosen
            .map(|c| match mode {
                Mode::Performance => Cursor::Slow {
                    slowest: c.series.slowest.iter().rev(),
                    level: c.series.key.level,
                },
                _ => Cursor::Time {
                    lines: &c.series.lines,
                    next: c.range.end,
                    lo: c.range.start,
                    level: c.series.key.level,
                },
            })
            .collect();
        let mut merge = Merge {
            held,
            mode,
            window,
            cursors,
            heap: BinaryHeap::new(),
        };
        for i in 0..merge.cursors.len() {
            merge.advance(i);
        }
        merge
    }

    fn advance(&mut self, i: usize) {
        let (mode, window, held) = (self.mode, self.window, self.held);
        let next = match &mut self.cursors[i] {
            Cursor::Time { lines, next, lo, level } => (*next > *lo).then(|| {
                *next -= 1;
                let (ts, seq) = lines.get(*next);
                (rank_key(mode, *level, None, ts, seq), seq)
            }),
            Cursor::Slow { slowest, level } => slowest.find_map(|&(bits, seq)| {
                let ts = held.resolve(seq)?.ts_ns;
                window
                    .contains(ts)
                    .then(|| (rank_key(mode, *level, Some(f64::from_bits(bits)), ts, seq), seq))
            }),
        };
        if let Some((key, seq)) = next {
            self.heap.push(Reverse((key, seq, i)));
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = (RankKey, u64);

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((key, seq, i)) = self.heap.pop()?;
        self.advance(i);
        Some((key, seq))
    }
}
