//! Duration sketches per (service, operation, level) and event minute: a window's
//! percentiles merge the sketches of the minutes it touches (DDSketch, 1 % relative error),
//! whatever the number of lines. Sketches cannot subtract, so a minute is dropped whole
//! once its service holds no line older than the next minute.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use sketches_ddsketch::{Config, DDSketch};

use crate::record::Level;

const MINUTE_NS: i64 = 60_000_000_000;

pub fn minute(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(MINUTE_NS)
}

/// (service id, operation id, level).
pub type LatencyKey = (u32, u32, Level);

#[derive(Default)]
pub struct LatencyBook {
    by_key: HashMap<LatencyKey, BTreeMap<i64, DDSketch>>,
}

/// A merged sketch's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub mean: f64,
}

impl LatencyBook {
    pub fn add(&mut self, key: LatencyKey, ts_ns: i64, duration_ms: f64) {
        if !duration_ms.is_finite() {
            return;
        }
        self.by_key
            .entry(key)
            .or_default()
            .entry(minute(ts_ns))
            .or_insert_with(|| DDSketch::new(Config::defaults()))
            .add(duration_ms.max(0.0));
    }

    /// Drops `service`'s minutes before `first_minute` (None: all of them).
    pub fn forget_before(&mut self, service: u32, first_minute: Option<i64>) {
        self.by_key.retain(|(s, _, _), minutes| {
            if *s == service {
                match first_minute {
                    Some(m) => *minutes = minutes.split_off(&m),
                    None => minutes.clear(),
                }
            }
            !minutes.is_empty()
        });
    }

    /// Percentiles over the minutes `start_ns..=end_ns` touches, for the keys `wanted`
    /// accepts; None when no duration was recorded there.
    pub fn percentiles(&self, start_ns: i64, end_ns: i64, wanted: impl Fn(&LatencyKey) -> bool) -> Option<Percentiles> {
        let mut merged = DDSketch::new(Config::defaults());
        let range = minute(start_ns)..=minute(end_ns);
        for (key, minutes) in &self.by_key {
            if wanted(key) {
                for sketch in minutes.range(range.clone()).map(|(_, s)| s) {
                    // Every sketch has the same config, the only way merging can fail.
                    merged.merge(sketch).ok()?;
                }
            }
        }
        if merged.count() == 0 {
            return None;
        }
        let q = |q: f64| merged.quantile(q).ok().flatten().unwrap_or(0.0);
        Some(Percentiles {
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            mean: merged.sum().unwrap_or(0.0) / merged.count() as f64,
        })
    }

    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &LatencyKey> {
        self.by_key.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_minutes_of_the_window_and_forgets_old_ones() {
        let mut book = LatencyBook::default();
        for i in 1..=100 {
            book.add((0, 0, Level::Info), i * 1_000_000_000, i as f64 * 10.0);
        }
        book.add((1, 0, Level::Info), 0, 99_999.0);
        let p = book
            .percentiles(0, 200 * 1_000_000_000, |k| k.0 == 0)
            .expect("durations");
        assert!((p.p50 - 500.0).abs() / 500.0 < 0.02, "{p:?}");
        assert!((p.p99 - 990.0).abs() / 990.0 < 0.02, "{p:?}");
        assert!((p.mean - 505.0).abs() < 1.0, "{p:?}");
        book.forget_before(0, Some(1));
        let later = book
            .percentiles(0, 200 * 1_000_000_000, |k| k.0 == 0)
            .expect("minute 1 kept");
        assert!(later.p50 > 700.0, "minute 0 forgotten: {later:?}");
        book.forget_before(0, None);
        assert!(book.percentiles(0, i64::MAX / 2, |k| k.0 == 0).is_none());
        assert_eq!(book.keys().count(), 1, "other services kept");
    }
}
