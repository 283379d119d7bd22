//! Lines of one key in event-time order, as (event time, arrival sequence) pairs: a window
//! is two binary searches, the newest lines are at the back. Shippers send each stream in
//! time order, so an insert is almost always a push at the back; a late line is inserted
//! in place, and eviction (oldest arrival, so nearly always near the front) removes in place.

use std::collections::VecDeque;
use std::ops::Range;

#[derive(Debug, Default)]
pub struct TimeList(VecDeque<(i64, u64)>);

impl TimeList {
    pub fn insert(&mut self, ts_ns: i64, seq: u64) {
        let item = (ts_ns, seq);
        if self.0.back().is_none_or(|last| *last <= item) {
            self.0.push_back(item);
        } else {
            let at = self.0.partition_point(|x| *x < item);
            self.0.insert(at, item);
        }
    }

    /// Removes an entry; false when it is not there.
    pub fn remove(&mut self, ts_ns: i64, seq: u64) -> bool {
        match self.0.binary_search(&(ts_ns, seq)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Positions of the entries with `start_ns <= ts <= end_ns`.
    pub fn range(&self, start_ns: i64, end_ns: i64) -> Range<usize> {
        let lo = self.0.partition_point(|(ts, _)| *ts < start_ns);
        let hi = self.0.partition_point(|(ts, _)| *ts <= end_ns);
        lo..hi.max(lo)
    }

    /// Position of an entry, if held.
    pub fn position(&self, ts_ns: i64, seq: u64) -> Option<usize> {
        self.0.binary_search(&(ts_ns, seq)).ok()
    }

    pub fn get(&self, i: usize) -> (i64, u64) {
        self.0[i]
    }

    pub fn front(&self) -> Option<(i64, u64)> {
        self.0.front().copied()
    }

    pub fn back(&self) -> Option<(i64, u64)> {
        self.0.back().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter_range(&self, r: Range<usize>) -> impl DoubleEndedIterator<Item = (i64, u64)> + '_ {
        self.0.range(r).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_lines_land_in_time_order_and_windows_are_inclusive() {
        let mut l = TimeList::default();
        for (ts, seq) in [(10, 0), (30, 1), (20, 2), (30, 3), (5, 4)] {
            l.insert(ts, seq);
        }
        let all: Vec<_> = l.iter_range(0..l.len()).collect();
        assert_eq!(all, [(5, 4), (10, 0), (20, 2), (30, 1), (30, 3)]);
        assert_eq!(l.range(10, 30), 1..5);
        assert_eq!(l.range(11, 19), 2..2);
        assert_eq!(l.range(40, 50), 5..5);
        assert!(l.remove(20, 2));
        assert!(!l.remove(20, 2));
        assert_eq!(l.position(30, 3), Some(3));
    }
}
