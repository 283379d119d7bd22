//! The service dependency graph over many requests: per caller -> callee edge, calls,
//! requests, the share of requests in which the callee failed, and latency percentiles;
//! cycles and fan-out. Built from request analyses, so completed requests kept anywhere
//! (this process, Postgres) can feed it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use serde::Serialize;

use super::analysis::RequestAnalysis;

/// Latency samples kept per edge per minute.
const SAMPLES_PER_MINUTE: usize = 256;
const MINUTE_NS: i64 = 60 * 1_000_000_000;

#[derive(Debug, Clone, Default)]
struct EdgeStats {
    calls: u64,
    requests: u64,
    failed: u64,
    latencies_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DependencyEdge {
    pub from: String,
    pub to: String,
    pub calls: u64,
    pub requests: u64,
    /// Share of the requests in which the callee logged an error.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DependencyView {
    pub requests: u64,
    pub edges: Vec<DependencyEdge>,
    /// Groups of services that call each other in a loop.
    pub cycles: Vec<Vec<String>>,
    /// Distinct callees per service, largest first.
    pub fan_out: Vec<(String, usize)>,
}

/// One minute of request starts: (minute, requests, edges by (caller, callee)).
type Minute = (i64, u64, HashMap<(String, String), EdgeStats>);

/// Edges per minute of request start, kept for `max_minutes`.
#[derive(Debug)]
pub struct DependencyGraph {
    max_minutes: usize,
    minutes: VecDeque<Minute>,
}

impl DependencyGraph {
    pub fn new(max_minutes: usize) -> Self {
        DependencyGraph {
            max_minutes: max_minutes.max(1),
            minutes: VecDeque::new(),
        }
    }

    pub fn add(&mut self, a: &RequestAnalysis, start_ns: i64) {
        let minute = start_ns.div_euclid(MINUTE_NS) * MINUTE_NS;
        if !self.minutes.iter().any(|(m, _, _)| *m == minute) {
            self.minutes.push_back((minute, 0, HashMap::new()));
            self.minutes.make_contiguous().sort_by_key(|(m, _, _)| *m);
            while self.minutes.len() > self.max_minutes {
                self.minutes.pop_front();
            }
        }
        // Gone at once when older than every minute kept.
        let Some(pos) = self.minutes.iter().position(|(m, _, _)| *m == minute) else {
            return;
        };
        let (_, requests, edges) = &mut self.minutes[pos];
        *requests += 1;
        for e in &a.request_flow.edges {
            let failed = a.request_flow.nodes.iter().any(|n| n.service == e.to && n.errors > 0);
            let s = edges.entry((e.from.clone(), e.to.clone())).or_default();
            s.calls += u64::from(e.calls);
            s.requests += 1;
            s.failed += u64::from(failed);
            if s.latencies_ms.len() < SAMPLES_PER_MINUTE {
                s.latencies_ms.push(e.latency_ms);
            }
        }
    }

    /// The graph over the minutes starting at or after `since_ns`, optionally only the
    /// edges touching `service`.
    pub fn view(&self, since_ns: i64, service: Option<&str>) -> DependencyView {
        let mut merged: BTreeMap<(String, String), EdgeStats> = BTreeMap::new();
        let mut requests = 0;
        let start = since_ns.div_euclid(MINUTE_NS) * MINUTE_NS;
        for (_, n, edges) in self.minutes.iter().filter(|(m, _, _)| *m >= start) {
            requests += n;
            for (k, s) in edges {
                if service.is_some_and(|svc| k.0 != svc && k.1 != svc) {
                    continue;
                }
                let m = merged.entry(k.clone()).or_default();
                m.calls += s.calls;
                m.requests += s.requests;
                m.failed += s.failed;
                m.latencies_ms.extend_from_slice(&s.latencies_ms);
            }
        }
        view_of(requests, merged)
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn view_of(requests: u64, merged: BTreeMap<(String, String), EdgeStats>) -> DependencyView {
    let mut graph = DiGraphMap::<&str, ()>::new();
    for (from, to) in merged.keys() {
        graph.add_edge(from.as_str(), to.as_str(), ());
    }
    let mut cycles: Vec<Vec<String>> = tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(str::to_owned).collect();
            c.sort();
            c
        })
        .collect();
    cycles.sort();
    let mut fan_out: Vec<(String, usize)> = graph
        .nodes()
        .map(|n| (n.to_owned(), graph.neighbors(n).count()))
        .filter(|(_, k)| *k > 0)
        .collect();
    fan_out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let edges = merged
        .into_iter()
        .map(|((from, to), mut s)| {
            s.latencies_ms.sort_by(f64::total_cmp);
            DependencyEdge {
                from,
                to,
                calls: s.calls,
                requests: s.requests,
                error_rate: if s.requests == 0 {
                    0.0
                } else {
                    s.failed as f64 / s.requests as f64
                },
                p50_ms: percentile(&s.latencies_ms, 0.50),
                p95_ms: percentile(&s.latencies_ms, 0.95),
                p99_ms: percentile(&s.latencies_ms, 0.99),
            }
        })
        .collect();
    DependencyView {
        requests,
        edges,
        cycles,
        fan_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::analysis::{Flow, FlowEdge, FlowNode};

    fn request(edges: &[(&str, &str, f64)], failing: &[&str]) -> RequestAnalysis {
        let mut services: Vec<&str> = edges.iter().flat_map(|(a, b, _)| [*a, *b]).collect();
        services.sort();
        services.dedup();
        RequestAnalysis {
            correlation_id: "r".into(),
            first_ns: 0,
            last_ns: 0,
            first_seen: String::new(),
            last_seen: String::new(),
            total_duration_ms: 0.0,
            lines: 0,
            dropped_lines: 0,
            request_flow: Flow {
                nodes: services
                    .iter()
                    .map(|s| FlowNode {
                        service: (*s).into(),
                        first_seen: String::new(),
                        last_seen: String::new(),
                        lines: 1,
                        errors: u32::from(failing.contains(s)),
                        duration_ms: 0.0,
                        self_time_ms: 0.0,
                    })
                    .collect(),
                edges: edges
                    .iter()
                    .map(|(a, b, ms)| FlowEdge {
                        from: (*a).into(),
                        to: (*b).into(),
                        source: "explicit".into(),
                        calls: 1,
                        first_seen: String::new(),
                        latency_ms: *ms,
                    })
                    .collect(),
            },
            service_timeline: Vec::new(),
            service_durations: BTreeMap::new(),
            critical_path: Vec::new(),
            bottlenecks: Vec::new(),
            errors: Vec::new(),
            root_cause: None,
            independent_failures: Vec::new(),
            recommendations: Vec::new(),
        }
    }

    #[test]
    fn edges_aggregate_with_error_rates_percentiles_cycles_and_fan_out() {
        let mut g = DependencyGraph::new(60);
        for i in 0..100 {
            let failing: &[&str] = if i % 4 == 0 { &["llm"] } else { &[] };
            g.add(
                &request(&[("api", "llm", f64::from(i + 1)), ("api", "db", 5.0)], failing),
                i64::from(i) * 1_000_000_000,
            );
        }
        g.add(&request(&[("a", "b", 1.0), ("b", "a", 1.0)], &[]), 0);
        let v = g.view(0, None);
        assert_eq!(v.requests, 101);
        let llm = v.edges.iter().find(|e| e.to == "llm").expect("api -> llm");
        assert_eq!((llm.calls, llm.requests), (100, 100));
        assert_eq!(llm.error_rate, 0.25);
        assert_eq!((llm.p50_ms, llm.p95_ms, llm.p99_ms), (50.0, 95.0, 99.0));
        assert_eq!(v.cycles, vec![vec!["a".to_owned(), "b".to_owned()]]);
        assert_eq!(v.fan_out[0], ("api".to_owned(), 2));
        let around_db = g.view(0, Some("db"));
        assert_eq!(around_db.edges.len(), 1);
        assert_eq!(around_db.edges[0].from, "api");
        // Minutes before the window are left out.
        assert_eq!(g.view(2 * MINUTE_NS, None).requests, 0);
    }
}
