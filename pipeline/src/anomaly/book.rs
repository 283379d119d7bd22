//! The alerts raised lately, bounded; repeats of one alert within a window are folded
//! into it (count, last seen, more samples). `add` says what to tell subscribers: a new
//! alert at once, a folded one again (with its count) at most every `REPUBLISH_NS`.

use std::collections::{HashMap, VecDeque};

use super::alert::{Alert, AlertKind, MAX_SAMPLES};

/// A folded alert that keeps firing is re-sent this often (event time) with its count.
pub const REPUBLISH_NS: i64 = 10 * 1_000_000_000;

#[derive(Debug)]
pub struct AlertBook {
    alerts: VecDeque<Alert>,
    /// When each alert (same positions as `alerts`) was last handed out by `add`.
    published_ns: VecDeque<i64>,
    /// Positions of the alerts of each kind and key, oldest first, counted from the first
    /// alert ever added (`dropped` is how many left the front): folding finds its alert
    /// without scanning the whole book, once per pattern hit.
    by_key: HashMap<AlertKind, HashMap<String, VecDeque<u64>>>,
    max: usize,
    fold_window_ns: i64,
    pub dropped: u64,
}

impl AlertBook {
    pub fn new(max: usize, fold_window_ns: i64) -> Self {
        AlertBook {
            alerts: VecDeque::new(),
            published_ns: VecDeque::new(),
            by_key: HashMap::new(),
            max,
            fold_window_ns,
            dropped: 0,
        }
    }

    /// Adds an alert, or folds it into the same alert (kind and key) seen within the window.
    /// Returns the alert to publish: a new one, or a folded one whose last publication is
    /// `REPUBLISH_NS` old (as it stands now, count included); else nothing.
    pub fn add(&mut self, a: Alert) -> Option<Alert> {
        let window = self.fold_window_ns;
        let dropped = self.dropped;
        let found = self
            .by_key
            .get(&a.kind)
            .and_then(|keys| keys.get(a.key.as_str()))
            .and_then(|seqs| {
                seqs.iter()
                    .rev()
                    .map(|seq| (seq - dropped) as usize)
                    .find(|&pos| a.first_seen_ns - self.alerts[pos].last_seen_ns <= window)
            });
        if let Some(pos) = found {
            let old = &mut self.alerts[pos];
            if a.kind == AlertKind::Cascade {
                // A cascade is a snapshot of its request, in event-time order: the new one
                // replaces the old, and a changed order (an earlier line arrived late) is
                // published at once.
                let reordered = old.services != a.services;
                old.services = a.services;
                old.samples = a.samples;
                old.summary = a.summary;
                old.count = a.count;
                old.first_seen_ns = old.first_seen_ns.min(a.first_seen_ns);
                old.last_seen_ns = old.last_seen_ns.max(a.last_seen_ns);
                old.severity = old.severity.max(a.severity);
                if reordered {
                    self.published_ns[pos] = old.last_seen_ns;
                    old.revision += 1;
                    return Some(old.clone());
                }
                return None;
            }
            old.count += a.count;
            old.last_seen_ns = old.last_seen_ns.max(a.last_seen_ns);
            old.severity = old.severity.max(a.severity);
            for s in a.services {
                if !old.services.contains(&s) {
                    old.services.push(s);
                }
            }
            for c in a.correlation_ids {
                if old.correlation_ids.len() < 20 && !old.correlation_ids.contains(&c) {
                    old.correlation_ids.push(c);
                }
            }
            for s in a.samples {
                if old.samples.len() < MAX_SAMPLES {
                    old.samples.push(s);
                }
            }
            let published = &mut self.published_ns[pos];
            if old.last_seen_ns - *published >= REPUBLISH_NS {
                *published = old.last_seen_ns;
                old.revision += 1;
                return Some(old.clone());
            }
            return None;
        }
        if self.alerts.len() >= self.max
            && let Some(old) = self.alerts.pop_front()
        {
            self.published_ns.pop_front();
            self.dropped += 1;
            if let Some(keys) = self.by_key.get_mut(&old.kind)
                && let Some(seqs) = keys.get_mut(old.key.as_str())
            {
                seqs.pop_front();
                if seqs.is_empty() {
                    keys.remove(old.key.as_str());
                }
            }
        }
        let seq = self.dropped + self.alerts.len() as u64;
        self.by_key
            .entry(a.kind)
            .or_default()
            .entry(a.key.clone())
            .or_default()
            .push_back(seq);
        self.published_ns.push_back(a.last_seen_ns);
        self.alerts.push_back(a.clone());
        Some(a)
    }

    /// Alerts whose last sighting is at or after `since_ns`, oldest first.
    pub fn since(&self, since_ns: i64) -> Vec<Alert> {
        self.alerts
            .iter()
            .filter(|a| a.last_seen_ns >= since_ns)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::AlertKind;
    use crate::patterns::Severity;

    fn a(ts: i64, key: &str) -> Alert {
        Alert {
            kind: AlertKind::Anomaly,
            severity: Severity::Low,
            category: None,
            key: key.into(),
            summary: String::new(),
            suggestion: None,
            first_seen_ns: ts,
            last_seen_ns: ts,
            count: 1,
            services: vec!["api".into()],
            correlation_ids: vec![],
            samples: vec![format!("line {ts}")],
            revision: 0,
        }
    }

    #[test]
    fn a_folded_alert_is_published_again_with_its_count_at_most_every_ten_seconds() {
        let s = 1_000_000_000;
        let mut b = AlertBook::new(10, 60 * s);
        assert_eq!(b.add(a(0, "x")).map(|x| x.count), Some(1), "new: at once");
        assert!(b.add(a(s, "x")).is_none(), "folded, published 1 s ago");
        assert!(b.add(a(9 * s, "x")).is_none());
        assert_eq!(
            b.add(a(10 * s, "x")).map(|x| x.count),
            Some(4),
            "10 s on: again, with the count"
        );
        assert!(b.add(a(11 * s, "x")).is_none());
        assert_eq!(b.add(a(12 * s, "y")).map(|x| x.key), Some("y".to_owned()));
    }

    #[test]
    fn folding_finds_the_right_alert_after_evictions() {
        let mut b = AlertBook::new(3, 100);
        b.add(a(0, "x"));
        b.add(a(500, "x")); // out of the window: a second x
        b.add(a(510, "y"));
        b.add(a(520, "z")); // evicts the first x
        assert_eq!(b.dropped, 1);
        assert!(b.add(a(530, "x")).is_none(), "folds into the second x");
        assert!(b.add(a(540, "w")).is_some(), "evicts the second x");
        let keys: Vec<(String, u64)> = b.since(0).into_iter().map(|x| (x.key, x.count)).collect();
        assert_eq!(keys, [("y".to_owned(), 1), ("z".to_owned(), 1), ("w".to_owned(), 1)]);
        assert!(b.add(a(550, "x")).is_some(), "no x left: a new one");
        assert!(b.add(a(560, "z")).is_none(), "z still folds at its new position");
    }

    #[test]
    fn repeats_fold_within_the_window_and_the_book_is_bounded() {
        let mut b = AlertBook::new(2, 100);
        b.add(a(0, "x"));
        b.add(a(50, "x"));
        b.add(a(500, "x"));
        let all = b.since(0);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].count, all[0].last_seen_ns, all[0].samples.len()), (2, 50, 2));
        b.add(a(600, "y"));
        assert_eq!(b.dropped, 1);
        assert_eq!(
            b.since(0).iter().map(|x| x.key.as_str()).collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
