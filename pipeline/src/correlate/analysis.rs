//! What happened to one request: its call graph (petgraph), timeline, durations and self
//! times, critical path and bottleneck, and where its errors started.
//!
//! Edges: the calls lines name explicitly (fields naming a callee or caller, or a line's
//! `parent_span_id` naming another service's `span_id`) are taken as they are. Every other
//! service but the first gets an inferred caller: of the services whose time span (first to
//! last line) encloses its first line, the one that started last (the innermost); if none
//! encloses it, the service that started last before it (time order). Time spans come from
//! the lines' timestamps, so the answer does not depend on the order lines arrived in.
//!
//! Root cause: a failing service none of whose callees (transitively) failed; of several,
//! the one with the most failing callers (it explains the most), then the earliest. The
//! failing services that call it, directly or not, are where the error propagated to; any
//! other failing service failed independently.

use std::collections::BTreeMap;

use petgraph::Direction;
use petgraph::algo::has_path_connecting;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};
use serde::{Deserialize, Serialize};

use super::request::{Edge, Node, Request};
use super::tracker::{Interner, Tracker, TrackerConfig};
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowNode {
    pub service: String,
    pub first_seen: String,
    pub last_seen: String,
    pub lines: u32,
    pub errors: u32,
    pub duration_ms: f64,
    pub self_time_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowEdge {
    pub from: String,
    pub to: String,
    /// `explicit` (a line named the call) or `inferred` (time order and nesting).
    pub source: String,
    pub calls: u32,
    pub first_seen: String,
    /// The longest duration reported for the call, else the callee's duration.
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub nodes: Vec<FlowNode>,
    pub edges: Vec<FlowEdge>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub service: String,
    pub start: String,
    pub end: String,
    pub duration_ms: f64,
    pub lines: u32,
    pub errors: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bottleneck {
    pub service: String,
    pub self_time_ms: f64,
    /// Share of the request's total duration.
    pub share: f64,
    pub on_critical_path: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceLine {
    pub ts: String,
    pub message: String,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceErrors {
    pub service: String,
    pub count: u32,
    pub first_error: String,
    pub evidence: Vec<EvidenceLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootCause {
    pub service: String,
    pub first_error: String,
    /// One line saying why this service.
    pub reason: String,
    pub evidence: Vec<EvidenceLine>,
    /// Failing callers of the root cause, in the order they failed.
    pub propagated_to: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestAnalysis {
    pub correlation_id: String,
    #[serde(skip)]
    pub first_ns: i64,
    #[serde(skip)]
    pub last_ns: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub total_duration_ms: f64,
    pub lines: u64,
    pub dropped_lines: u32,
    pub request_flow: Flow,
    pub service_timeline: Vec<TimelineEntry>,
    pub service_durations: BTreeMap<String, f64>,
    pub critical_path: Vec<String>,
    pub bottlenecks: Vec<Bottleneck>,
    pub errors: Vec<ServiceErrors>,
    pub root_cause: Option<RootCause>,
    pub independent_failures: Vec<String>,
    pub recommendations: Vec<String>,
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn duration_ms(n: &Node) -> f64 {
    ms(n.last_ns() - n.first_ns()).max(f64::from(n.reported_ms))
}

/// The request as a graph: node weights index `request.nodes`, edge weights say whether a
/// line named the call (`true`) or it was inferred.
/// `edges` are `request.edges()`, computed once by the caller.
pub fn call_graph(request: &Request, edges: &[Edge]) -> DiGraph<usize, bool> {
    let mut g = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..request.nodes.len()).map(|i| g.add_node(i)).collect();
    let pos = |s| request.nodes.iter().position(|n| n.service == s);
    let mut has_caller = vec![false; request.nodes.len()];
    for e in edges {
        if let (Some(a), Some(b)) = (pos(e.from), pos(e.to)) {
            g.update_edge(idx[a], idx[b], true);
            has_caller[b] = true;
        }
    }
    // Order of first appearance (ties by arrival order): inferred callers come earlier in
    // it, so inferred edges never form a cycle.
    let mut order: Vec<usize> = (0..request.nodes.len()).collect();
    order.sort_by_key(|&i| (request.nodes[i].first_ns(), i));
    for (rank, &child) in order.iter().enumerate().skip(1) {
        if has_caller[child] {
            continue;
        }
        let c = &request.nodes[child];
        // Evidence before time: never infer a caller that the child (explicitly) calls.
        let earlier: Vec<usize> = order[..rank]
            .iter()
            .copied()
            .filter(|&p| !has_path_connecting(&g, idx[child], idx[p], None))
            .collect();
        let enclosing = earlier
            .iter()
            .copied()
            .filter(|&p| request.nodes[p].last_ns() >= c.first_ns())
            .max_by_key(|&p| (request.nodes[p].first_ns(), p));
        let parent = enclosing.or_else(|| earlier.last().copied());
        if let Some(p) = parent {
            g.update_edge(idx[p], idx[child], false);
        }
    }
    g
}

/// Rebuilds one request from its lines (as views hold them, any order) and analyses it;
/// `None` when no line carries `correlation_id`.
pub fn analyze_lines<'a>(
    correlation_id: &str,
    lines: impl IntoIterator<Item = &'a Enriched>,
) -> Option<RequestAnalysis> {
    let mut tracker = Tracker::new(TrackerConfig {
        idle_ns: i64::MAX,
        max_live: 1,
    });
    for l in lines {
        if l.record.correlation_id.as_deref() == Some(correlation_id) {
            tracker.observe(l);
        }
    }
    tracker.live(correlation_id).map(|r| analyze(r, &tracker.services))
}

pub fn analyze(request: &Request, names: &Interner) -> RequestAnalysis {
    let correlation_id = request.id();
    let nodes = &request.nodes;
    let name = |i: usize| names.name(nodes[i].service).to_owned();
    let named_edges = request.edges();
    let g = call_graph(request, &named_edges);
    let first_ns = request.first_ns();
    let last_ns = request.last_ns();
    let durations: Vec<f64> = nodes.iter().map(duration_ms).collect();
    let total = ms(last_ns - first_ns).max(durations.iter().copied().fold(0.0, f64::max));
    let children = |i: usize| {
        g.neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(|n| g[n])
            .filter(move |&c| c != i)
    };
    let self_ms: Vec<f64> = (0..nodes.len())
        .map(|i| (durations[i] - children(i).map(|c| durations[c]).sum::<f64>()).max(0.0))
        .collect();

    // Critical path: from the first service, follow the callee that finishes last.
    let end = |i: usize| nodes[i].first_ns() as f64 / 1e6 + durations[i];
    let mut critical = Vec::new();
    let root = (0..nodes.len()).min_by_key(|&i| (nodes[i].first_ns(), i));
    let mut at = root;
    while let Some(i) = at {
        if critical.contains(&i) {
            break;
        }
        critical.push(i);
        at = children(i)
            .filter(|c| !critical.contains(c))
            .max_by(|a, b| end(*a).total_cmp(&end(*b)));
    }
    let mut by_self: Vec<usize> = (0..nodes.len()).collect();
    by_self.sort_by(|a, b| self_ms[*b].total_cmp(&self_ms[*a]));
    let bottlenecks: Vec<Bottleneck> = by_self
        .iter()
        .take(3)
        .filter(|&&i| self_ms[i] > 0.0)
        .map(|&i| Bottleneck {
            service: name(i),
            self_time_ms: self_ms[i],
            share: if total > 0.0 { self_ms[i] / total } else { 0.0 },
            on_critical_path: critical.contains(&i),
        })
        .collect();

    let evidence_of = |i: usize| -> Vec<EvidenceLine> {
        request
            .detail
            .iter()
            .flat_map(|d| d.evidence.iter())
            .filter(|e| e.service == nodes[i].service)
            .map(|e| EvidenceLine {
                ts: format_rfc3339(e.ts_ns),
                message: e.message.to_string(),
                patterns: e.patterns.iter().map(|p| p.to_string()).collect(),
            })
            .collect()
    };
    let mut failing: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].errors > 0).collect();
    failing.sort_by_key(|&i| (nodes[i].first_error_ns(), i));
    let errors: Vec<ServiceErrors> = failing
        .iter()
        .map(|&i| ServiceErrors {
            service: name(i),
            count: u32::from(nodes[i].errors),
            first_error: format_rfc3339(nodes[i].first_error_ns().unwrap_or_default()),
            evidence: evidence_of(i),
        })
        .collect();
    let reachable = |from: usize, reversed: bool| -> Vec<usize> {
        let mut seen = Vec::new();
        if reversed {
            let r = Reversed(&g);
            let mut bfs = Bfs::new(r, NodeIndex::new(from));
            while let Some(n) = bfs.next(r) {
                seen.push(g[n]);
            }
        } else {
            let mut bfs = Bfs::new(&g, NodeIndex::new(from));
            while let Some(n) = bfs.next(&g) {
                seen.push(g[n]);
            }
        }
        seen.retain(|&n| n != from);
        seen
    };
    // A callee that logged nothing while a failing caller named it (an edge from its line)
    // is a suspect like a failing service: the failing service may log nothing at all.
    let silent: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].lines == 0)
        .filter(|&i| {
            named_edges
                .iter()
                .any(|e| e.to == nodes[i].service && nodes.iter().any(|n| n.service == e.from && n.errors > 0))
        })
        .collect();
    let suspect = |i: usize| nodes[i].errors > 0 || silent.contains(&i);
    // Candidates: suspects none of whose callees is one. The one whose failure explains the
    // most failing callers wins (a stray error elsewhere does not), then the earliest.
    let root_cause = failing
        .iter()
        .chain(&silent)
        .copied()
        .filter(|&i| !reachable(i, false).iter().any(|&d| suspect(d)))
        .map(|i| (i, reachable(i, true).iter().filter(|c| nodes[**c].errors > 0).count()))
        .fold(None, |best: Option<(usize, usize)>, (i, explained)| match best {
            Some((_, e)) if e >= explained => best,
            _ => Some((i, explained)),
        })
        .map(|(i, _)| i)
        .or_else(|| failing.first().copied());
    let mut independent = Vec::new();
    let root_cause = root_cause.map(|r| {
        let callers = reachable(r, true);
        let propagated: Vec<String> = failing
            .iter()
            .copied()
            .filter(|i| callers.contains(i))
            .map(name)
            .collect();
        independent = failing
            .iter()
            .copied()
            .filter(|&i| i != r && !callers.contains(&i))
            .map(name)
            .collect();
        let reason = if nodes[r].lines == 0 {
            format!(
                "{} logged nothing while {} failed calling it",
                name(r),
                if propagated.is_empty() {
                    "its callers".to_owned()
                } else {
                    propagated.join(", ")
                }
            )
        } else if propagated.is_empty() {
            format!("{} failed first and none of the services it calls failed", name(r))
        } else {
            format!(
                "{} failed and none of the services it calls did; then its caller{} {} failed",
                name(r),
                if propagated.len() == 1 { "" } else { "s" },
                propagated.join(", ")
            )
        };
        RootCause {
            service: name(r),
            first_error: format_rfc3339(nodes[r].first_error_ns().unwrap_or_else(|| nodes[r].first_ns())),
            reason,
            evidence: evidence_of(r),
            propagated_to: propagated,
        }
    });

    let mut recommendations: Vec<String> = request
        .detail
        .iter()
        .flat_map(|d| d.suggestions.iter().map(|s| s.to_string()))
        .collect();
    if let Some(b) = bottlenecks.first().filter(|b| b.share >= 0.5) {
        recommendations.push(format!(
            "{} spends {:.0}% of the request's {:.0} ms in itself: look at its slow operations first",
            b.service,
            b.share * 100.0,
            total
        ));
    }

    let mut timeline: Vec<usize> = (0..nodes.len()).collect();
    timeline.sort_by_key(|&i| (nodes[i].first_ns(), i));
    let flow_edges = g
        .edge_indices()
        .filter_map(|e| {
            let (a, b) = g.edge_endpoints(e)?;
            let (a, b) = (g[a], g[b]);
            let named = named_edges
                .iter()
                .find(|x| x.from == nodes[a].service && x.to == nodes[b].service);
            Some(FlowEdge {
                from: name(a),
                to: name(b),
                source: if g[e] { "explicit" } else { "inferred" }.to_owned(),
                calls: named.map_or(1, |x| x.calls),
                first_seen: format_rfc3339(named.map_or(nodes[b].first_ns(), |x| x.first_ns)),
                latency_ms: named
                    .map(|x| f64::from(x.reported_ms))
                    .filter(|l| *l > 0.0)
                    .unwrap_or(durations[b]),
            })
        })
        .collect();
    RequestAnalysis {
        correlation_id: correlation_id.to_owned(),
        first_ns,
        last_ns,
        first_seen: format_rfc3339(first_ns),
        last_seen: format_rfc3339(last_ns),
        total_duration_ms: total,
        lines: request.lines(),
        dropped_lines: request.dropped_lines(),
        request_flow: Flow {
            nodes: (0..nodes.len())
                .map(|i| FlowNode {
                    service: name(i),
                    first_seen: format_rfc3339(nodes[i].first_ns()),
                    last_seen: format_rfc3339(nodes[i].last_ns()),
                    lines: u32::from(nodes[i].lines),
                    errors: u32::from(nodes[i].errors),
                    duration_ms: durations[i],
                    self_time_ms: self_ms[i],
                })
                .collect(),
            edges: flow_edges,
        },
        service_timeline: timeline
            .iter()
            .map(|&i| TimelineEntry {
                service: name(i),
                start: format_rfc3339(nodes[i].first_ns()),
                end: format_rfc3339(nodes[i].last_ns()),
                duration_ms: durations[i],
                lines: u32::from(nodes[i].lines),
                errors: u32::from(nodes[i].errors),
            })
            .collect(),
        service_durations: (0..nodes.len()).map(|i| (name(i), durations[i])).collect(),
        critical_path: critical.iter().map(|&i| name(i)).collect(),
        bottlenecks,
        errors,
        root_cause,
        independent_failures: independent,
        recommendations,
    }
}
