//! The alerts raised lately, bounded; repeats of one alert within a window are folded
//! into it (count, last seen, more samples).

use std::collections::VecDeque;

use super::alert::{Alert, MAX_SAMPLES};

#[derive(Debug)]
pub struct AlertBook {
    alerts: VecDeque<Alert>,
    max: usize,
    fold_window_ns: i64,
    pub dropped: u64,
}

impl AlertBook {
    pub fn new(max: usize, fold_window_ns: i64) -> Self {
        AlertBook {
            alerts: VecDeque::new(),
            max,
            fold_window_ns,
            dropped: 0,
        }
    }

    /// Adds an alert, or folds it into the same alert (kind and key) seen within the window.
    /// Returns whether it was new (not folded).
    pub fn add(&mut self, a: Alert) -> bool {
        let window = self.fold_window_ns;
        if let Some(old) = self
            .alerts
            .iter_mut()
            .rev()
            .find(|o| o.kind == a.kind && o.key == a.key && a.first_seen_ns - o.last_seen_ns <= window)
        {
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
            return false;
        }
        if self.alerts.len() >= self.max {
            self.alerts.pop_front();
            self.dropped += 1;
        }
        self.alerts.push_back(a);
        true
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
        }
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
