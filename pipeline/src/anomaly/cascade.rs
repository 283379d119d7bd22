//! Error cascades: errors in two or more services under one correlation id within a short
//! window, in the order they happened (event time, whatever order the lines arrive in: a late
//! line that moves the origin revises the cascade).

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, PartialEq)]
pub struct CascadeStep {
    pub service: String,
    pub first_error_ns: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    pub correlation_id: String,
    /// Services by their first error, earliest first: the first is the likely origin.
    pub steps: Vec<CascadeStep>,
}

#[derive(Debug, Default)]
struct Request {
    steps: Vec<CascadeStep>,
    /// The services of the last cascade reported, in its order.
    reported: Vec<String>,
}

#[derive(Debug)]
pub struct CascadeTracker {
    window_ns: i64,
    max_requests: usize,
    requests: HashMap<String, Request>,
    order: VecDeque<String>,
    pub evicted: u64,
}

impl CascadeTracker {
    pub fn new(window_ns: i64, max_requests: usize) -> Self {
        CascadeTracker {
            window_ns,
            max_requests,
            requests: HashMap::new(),
            order: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Records an error line; returns the cascade when this line makes (or extends) one.
    pub fn error(&mut self, correlation_id: &str, service: &str, ts_ns: i64, message: &str) -> Option<Cascade> {
        if !self.requests.contains_key(correlation_id) {
            if self.requests.len() >= self.max_requests
                && let Some(old) = self.order.pop_front()
            {
                self.requests.remove(&old);
                self.evicted += 1;
            }
            self.order.push_back(correlation_id.to_owned());
        }
        let r = self.requests.entry(correlation_id.to_owned()).or_default();
        match r.steps.iter_mut().find(|s| s.service == service) {
            Some(s) if ts_ns < s.first_error_ns => {
                s.first_error_ns = ts_ns;
                s.message = message.to_owned();
            }
            Some(_) => {}
            None => r.steps.push(CascadeStep {
                service: service.to_owned(),
                first_error_ns: ts_ns,
                message: message.to_owned(),
            }),
        }
        r.steps.sort_by_key(|s| s.first_error_ns);
        let start = r.steps[0].first_error_ns;
        let within: Vec<CascadeStep> = r
            .steps
            .iter()
            .filter(|s| s.first_error_ns - start <= self.window_ns)
            .cloned()
            .collect();
        let changed = within.len() != r.reported.len() || within.iter().zip(&r.reported).any(|(s, o)| s.service != *o);
        if within.len() >= 2 && changed {
            r.reported = within.iter().map(|s| s.service.clone()).collect();
            return Some(Cascade {
                correlation_id: correlation_id.to_owned(),
                steps: within,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn two_services_failing_under_one_request_in_time_order() {
        let mut c = CascadeTracker::new(30 * S, 100);
        assert_eq!(c.error("r1", "api", 12 * S, "504 from gateway"), None);
        let cascade = c.error("r1", "gateway", 10 * S, "model timeout").expect("cascade");
        let order: Vec<_> = cascade.steps.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(order, ["gateway", "api"], "ordered by first error, arrival order aside");
        assert_eq!(c.error("r1", "api", 13 * S, "again"), None, "reported once per size");
        assert!(
            c.error("r1", "worker", 14 * S, "x").is_some(),
            "a third service extends it"
        );
        assert_eq!(c.error("r2", "api", 0, "x"), None);
        assert_eq!(c.error("r2", "db", 100 * S, "x"), None, "outside the window");
    }
}
