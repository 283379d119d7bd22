//! Error cascades: errors in two or more services under one correlation id within a short
//! window, callee first. Evidence before time: a service whose error names another as its
//! upstream ("upstream anythingllm request failed") comes after it, and a named upstream that
//! logged nothing is the cascade's origin; otherwise event time orders them, whatever order
//! the lines arrive in (a late line that moves the origin revises the cascade).

use std::collections::{HashMap, VecDeque};

use crate::callee_name;

#[derive(Debug, Clone, PartialEq)]
pub struct CascadeStep {
    pub service: String,
    pub first_error_ns: i64,
    pub message: String,
    /// The upstream its first error names, if any.
    pub names: Option<String>,
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
        let names = callee_name::upstream(message)
            .filter(|n| *n != service)
            .map(str::to_owned);
        match r.steps.iter_mut().find(|s| s.service == service) {
            Some(s) if ts_ns < s.first_error_ns => {
                s.first_error_ns = ts_ns;
                s.message = message.to_owned();
                s.names = names.or(s.names.take());
            }
            Some(s) => {
                s.names = s.names.take().or(names);
            }
            None => r.steps.push(CascadeStep {
                service: service.to_owned(),
                first_error_ns: ts_ns,
                message: message.to_owned(),
                names,
            }),
        }
        let start = r.steps.iter().map(|s| s.first_error_ns).min().unwrap_or(ts_ns);
        let mut within: Vec<CascadeStep> = r
            .steps
            .iter()
            .filter(|s| s.first_error_ns - start <= self.window_ns)
            .cloned()
            .collect();
        order_by_evidence(&mut within);
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

/// Callee first: a step's rank is how many named hops lead from it to a step naming no
/// other, a named upstream with no error of its own joining as a silent origin; event time
/// within a rank.
fn order_by_evidence(steps: &mut Vec<CascadeStep>) {
    let silent: Vec<CascadeStep> = steps
        .iter()
        .filter_map(|s| {
            let name = s.names.as_ref()?;
            (!steps.iter().any(|o| o.service == *name)).then(|| CascadeStep {
                service: name.clone(),
                first_error_ns: s.first_error_ns,
                message: format!("logged nothing; {} named it as its failing upstream", s.service),
                names: None,
            })
        })
        .collect();
    for s in silent {
        if !steps.iter().any(|o| o.service == s.service) {
            steps.push(s);
        }
    }
    let rank = |start: &CascadeStep| {
        let mut at = start;
        let mut hops = 0;
        while let Some(next) = at.names.as_ref().and_then(|n| steps.iter().find(|s| s.service == *n)) {
            hops += 1;
            at = next;
            if hops > steps.len() {
                break; // names that loop: fall back to time
            }
        }
        hops
    };
    let ranks: Vec<usize> = steps.iter().map(rank).collect();
    let mut keyed: Vec<(usize, CascadeStep)> = ranks.into_iter().zip(steps.drain(..)).collect();
    keyed.sort_by_key(|(r, s)| (*r, s.first_error_ns));
    steps.extend(keyed.into_iter().map(|(_, s)| s));
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

    #[test]
    fn evidence_orders_before_time_and_a_silent_upstream_is_the_origin() {
        let mut c = CascadeTracker::new(30 * S, 100);
        // The caller's timeout is logged before the callee's error, and clocks differ.
        let cascade = c
            .error("r1", "api", 10 * S, "upstream gateway request failed: timeout")
            .expect("cascade");
        let order: Vec<_> = cascade.steps.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(order, ["gateway", "api"], "the named upstream first, before it logs");
        assert_eq!(
            c.error("r1", "gateway", 11 * S, "model call failed"),
            None,
            "still the origin when it logs later"
        );
        let cascade = c
            .error("r1", "browser", 9 * S, "upstream api request failed")
            .expect("extended");
        let order: Vec<_> = cascade.steps.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(
            order,
            ["gateway", "api", "browser"],
            "evidence, not the browser's early clock"
        );

        // Only the caller logs; it names its upstream, which logged nothing at all.
        let cascade = c
            .error("r2", "api", 5 * S, "upstream anythingllm request failed")
            .expect("cascade");
        let order: Vec<_> = cascade.steps.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(order, ["anythingllm", "api"]);
        assert!(cascade.steps[0].message.contains("logged nothing"));
    }
}
