//! Rate spikes: per key (service x pattern, service x template), counts per time bucket;
//! a bucket is a spike when it is far above the mean of the buckets before it and holds
//! enough lines to matter.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    pub bucket_ns: i64,
    /// Buckets of history a baseline is computed over.
    pub history: usize,
    /// Buckets of history needed before spikes are judged.
    pub min_history: usize,
    /// A bucket needs at least this many lines to be a spike...
    pub min_count: u64,
    /// ...and this many times the baseline mean...
    pub ratio: f64,
    /// ...and this many standard deviations above it.
    pub sigmas: f64,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            bucket_ns: 60 * 1_000_000_000,
            history: 30,
            min_history: 5,
            min_count: 10,
            ratio: 3.0,
            sigmas: 3.0,
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    /// (bucket index, count), oldest first; buckets without lines are absent.
    buckets: VecDeque<(i64, u64)>,
    /// Bucket index already reported as a spike.
    flagged: Option<i64>,
    /// First bucket seen: history before it counts as zero only after it.
    first: i64,
}

/// A spike found by `RateTracker::observe`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    pub bucket_start_ns: i64,
    pub count: u64,
    pub baseline_mean: f64,
}

#[derive(Debug)]
pub struct RateTracker<K> {
    config: RateConfig,
    series: HashMap<K, Series>,
    max_keys: usize,
    pub dropped_keys: u64,
}

impl<K: std::hash::Hash + Eq + Clone> RateTracker<K> {
    pub fn new(config: RateConfig, max_keys: usize) -> Self {
        RateTracker {
            config,
            series: HashMap::new(),
            max_keys,
            dropped_keys: 0,
        }
    }

    /// Counts one line for `key` at `ts_ns`; returns a spike the first time its bucket
    /// crosses the thresholds.
    pub fn observe(&mut self, key: &K, ts_ns: i64) -> Option<Spike> {
        let c = self.config;
        let bucket = ts_ns.div_euclid(c.bucket_ns);
        if !self.series.contains_key(key) {
            if self.series.len() >= self.max_keys {
                self.dropped_keys += 1;
                return None;
            }
            self.series.insert(
                key.clone(),
                Series {
                    first: bucket,
                    ..Series::default()
                },
            );
        }
        let s = self.series.get_mut(key)?;
        match s.buckets.back_mut() {
            Some((b, n)) if *b == bucket => *n += 1,
            Some((b, _)) if *b > bucket => {
                // A late line: count it in its bucket if still held, never re-judge.
                if let Some((_, n)) = s.buckets.iter_mut().find(|(b, _)| *b == bucket) {
                    *n += 1;
                }
                return None;
            }
            _ => s.buckets.push_back((bucket, 1)),
        }
        while s.buckets.front().is_some_and(|(b, _)| *b < bucket - c.history as i64) {
            s.buckets.pop_front();
        }
        let count = s.buckets.back().map_or(0, |(_, n)| *n);
        if s.flagged == Some(bucket) || count < c.min_count {
            return None;
        }
        // History: the buckets before this one since the key was first seen (missing = 0).
        let span = (bucket - s.first).min(c.history as i64);
        if span < c.min_history as i64 {
            return None;
        }
        let past: Vec<u64> = (bucket - span..bucket)
            .map(|b| s.buckets.iter().find(|(x, _)| *x == b).map_or(0, |(_, n)| *n))
            .collect();
        let mean = past.iter().sum::<u64>() as f64 / past.len() as f64;
        let var = past.iter().map(|&n| (n as f64 - mean).powi(2)).sum::<f64>() / past.len() as f64;
        let spike = count as f64 >= (mean * c.ratio).max(1.0) && count as f64 > mean + c.sigmas * var.sqrt();
        if spike {
            s.flagged = Some(bucket);
            return Some(Spike {
                bucket_start_ns: bucket * c.bucket_ns,
                count,
                baseline_mean: mean,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn a_burst_over_a_steady_rate_is_flagged_once() {
        let mut t = RateTracker::new(RateConfig::default(), 100);
        // Two lines a minute for ten minutes: no spike.
        for m in 0..10 {
            for i in 0..2 {
                assert_eq!(t.observe(&"k", m * MIN + i), None);
            }
        }
        // Then 30 in one minute.
        let spikes: Vec<_> = (0..30).filter_map(|i| t.observe(&"k", 10 * MIN + i)).collect();
        assert_eq!(spikes.len(), 1, "flagged once per bucket");
        assert_eq!(spikes[0].count, 10, "flagged as soon as it crossed the guard");
        assert!((spikes[0].baseline_mean - 2.0).abs() < 1e-9);
    }

    #[test]
    fn guards_against_small_counts_and_short_history() {
        let mut t = RateTracker::new(RateConfig::default(), 100);
        // A burst in the first minutes of a key is not judged (no baseline yet).
        assert!((0..50).all(|i| t.observe(&"new", i).is_none()));
        // A jump from 0 to 5 is below the minimum count.
        let mut q = RateTracker::new(RateConfig::default(), 100);
        q.observe(&"q", 0);
        assert!((0..5).all(|i| q.observe(&"q", 8 * MIN + i).is_none()));
    }

    #[test]
    fn keys_are_capped() {
        let mut t = RateTracker::new(RateConfig::default(), 2);
        for k in ["a", "b", "c"] {
            t.observe(&k, 0);
        }
        assert_eq!(t.dropped_keys, 1);
    }
}
