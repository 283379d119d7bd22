//! Which store answers which part of a window, pure: the views hold every line that reached
//! ailogs from some event time on (`Coverage`); Loki is asked for the part of the window
//! before it, split into windows Loki answers whole, newest first. Also how long a Loki
//! answer may be cached: old windows do not change.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::enrich::Enriched;
use crate::views::HeldStats;

/// From which event time on the views are complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// `None`: the views hold nothing this query can use.
    pub complete_from_ns: Option<i64>,
}

impl Coverage {
    /// From what the views report: lines at or after their oldest event are all held unless
    /// some were evicted, and then only those newer than the newest evicted one are.
    pub fn from_held(oldest_event_ns: Option<i64>, evicted_newest_event_ns: Option<i64>) -> Self {
        let complete_from_ns = match (oldest_event_ns, evicted_newest_event_ns) {
            (None, _) => None,
            (Some(oldest), None) => Some(oldest),
            (Some(oldest), Some(evicted)) => Some(oldest.max(evicted.saturating_add(1))),
        };
        Coverage { complete_from_ns }
    }

    /// What the memory views report.
    pub fn of_views(held: &HeldStats) -> Self {
        Coverage::from_held(held.oldest_event_ns, held.evicted_newest_event_ns)
    }

    /// Lines read from a capped store (the Redis hot views): complete from the oldest one
    /// returned, since the cap drops the oldest.
    pub fn of_lines(records: &[Arc<Enriched>]) -> Self {
        Coverage::from_held(records.iter().map(|r| r.ts_ns).min(), None)
    }

    pub const NOTHING: Coverage = Coverage { complete_from_ns: None };
}

/// One part of a window and who answers it; bounds inclusive, Unix ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub start_ns: i64,
    pub end_ns: i64,
}

/// The parts of a window: the views' and Loki's, either possibly absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub views: Option<Part>,
    pub loki: Option<Part>,
}

/// Splits `[start, end]` between the views (from `coverage` on) and Loki (before it).
pub fn plan(start_ns: i64, end_ns: i64, coverage: Coverage) -> Plan {
    if start_ns > end_ns {
        return Plan {
            views: None,
            loki: None,
        };
    }
    match coverage.complete_from_ns {
        None => Plan {
            views: None,
            loki: Some(Part { start_ns, end_ns }),
        },
        Some(from) if from <= start_ns => Plan {
            views: Some(Part { start_ns, end_ns }),
            loki: None,
        },
        Some(from) if from > end_ns => Plan {
            views: None,
            loki: Some(Part { start_ns, end_ns }),
        },
        Some(from) => Plan {
            views: Some(Part { start_ns: from, end_ns }),
            loki: Some(Part {
                start_ns,
                end_ns: from - 1,
            }),
        },
    }
}

/// `[start, end]` (inclusive) as Loki requests `[start, end)` of at most `step_ns` each, newest
/// first (the order a backward answer wants).
pub fn split_backward(part: Part, step_ns: i64) -> Vec<(i64, i64)> {
    let step = step_ns.max(1);
    let mut out = Vec::new();
    let mut end = part.end_ns.saturating_add(1);
    while end > part.start_ns {
        let start = end.saturating_sub(step).max(part.start_ns);
        out.push((start, end));
        end = start;
    }
    out
}

/// How long a Loki answer for a window ending at `end_ns` stays cached, seconds: a window
/// still open may gain lines any moment; one a day old will not change.
pub fn cache_ttl_s(now_ns: i64, end_ns: i64) -> u64 {
    let age_s = now_ns.saturating_sub(end_ns) / 1_000_000_000;
    match age_s {
        ..60 => 10,
        60..3_600 => 60,
        3_600..86_400 => 600,
        _ => 3_600,
    }
}

/// `[start, end]` widened to whole minutes, so that queries asked a few seconds apart for a
/// relative range (`time_range=6h`) share one cached Loki answer; the caller filters back
/// to its exact window.
pub fn align_to_minutes(part: Part) -> Part {
    const MINUTE: i64 = 60_000_000_000;
    Part {
        start_ns: part.start_ns.div_euclid(MINUTE) * MINUTE,
        end_ns: (part.end_ns.div_euclid(MINUTE) + 1).saturating_mul(MINUTE) - 1,
    }
}

/// Views ∪ Loki without the lines both hold (same service, event time and text), views first.
pub fn merge(views: Vec<Arc<Enriched>>, loki: Vec<Arc<Enriched>>) -> Vec<Arc<Enriched>> {
    let mut seen: HashSet<u64> = views.iter().map(|r| line_key(r)).collect();
    let mut out = views;
    out.extend(loki.into_iter().filter(|r| seen.insert(line_key(r))));
    out
}

fn line_key(r: &Enriched) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        r.ts_ns,
        r.service.as_ref(),
        r.record.message.as_ref(),
        r.record.correlation_id.as_deref(),
    )
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_views_answer_from_their_coverage_and_loki_before_it() {
        let c = Coverage::from_held(Some(100), None);
        assert_eq!(
            plan(50, 200, c),
            Plan {
                views: Some(Part {
                    start_ns: 100,
                    end_ns: 200
                }),
                loki: Some(Part {
                    start_ns: 50,
                    end_ns: 99
                }),
            }
        );
        assert_eq!(plan(120, 200, c).loki, None);
        assert_eq!(plan(10, 90, c).views, None);
        assert_eq!(
            plan(10, 90, Coverage::NOTHING).loki,
            Some(Part {
                start_ns: 10,
                end_ns: 90
            })
        );
        // Eviction moves coverage past the newest evicted event.
        let evicted = Coverage::from_held(Some(100), Some(150));
        assert_eq!(evicted.complete_from_ns, Some(151));
    }

    #[test]
    fn splits_cover_the_part_exactly_newest_first() {
        let parts = split_backward(
            Part {
                start_ns: 0,
                end_ns: 24,
            },
            10,
        );
        assert_eq!(parts, vec![(15, 25), (5, 15), (0, 5)]);
        assert_eq!(split_backward(Part { start_ns: 7, end_ns: 7 }, 10), vec![(7, 8)]);
    }

    #[test]
    fn older_windows_are_cached_longer() {
        let now = 10 * 86_400 * 1_000_000_000i64;
        let ages = [0, 600, 7_200, 2 * 86_400].map(|s: i64| cache_ttl_s(now, now - s * 1_000_000_000));
        assert!(ages.windows(2).all(|w| w[0] < w[1]), "{ages:?}");
    }

    #[test]
    fn aligned_parts_contain_the_original() {
        let p = Part {
            start_ns: 61_500_000_000,
            end_ns: 179_000_000_000,
        };
        let a = align_to_minutes(p);
        assert_eq!((a.start_ns, a.end_ns), (60_000_000_000, 179_999_999_999));
    }
}
