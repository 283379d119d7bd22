//! One request's live state, updated per line: the services it touched and the calls its
//! lines name. Compact on purpose (a million live requests must fit in ~160 MB): the id
//! and the first two services are stored inline, services are interned ids, times are
//! offsets, and only requests with explicit calls, errors or pattern hits allocate more.

use std::sync::Arc;

use smallvec::SmallVec;

use crate::enrich::Enriched;

/// Services kept per request; lines of further services are counted in `dropped_lines`.
pub const MAX_NODES: usize = 32;
/// Explicit call edges kept per request.
pub const MAX_EDGES: usize = 64;
/// Error lines kept per service as evidence.
pub const MAX_EVIDENCE: usize = 3;
/// Distinct pattern suggestions kept per request.
pub const MAX_SUGGESTIONS: usize = 8;

/// An interned service name (see `tracker::Interner`).
pub type ServiceId = u32;

const NO_ERROR: u32 = u32::MAX;

/// One service in a request. Times are microsecond offsets from `first_ns` (saturating at
/// about 71 minutes), so a node takes 28 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    first_ns: [u32; 2],
    span_us: u32,
    first_error_us: u32,
    pub service: ServiceId,
    pub lines: u16,
    pub errors: u16,
    /// Longest duration a line of this service reported (`duration_ms`), 0 when none.
    pub reported_ms: f32,
}

impl Node {
    fn new(service: ServiceId, ts_ns: i64) -> Self {
        let mut n = Node {
            first_ns: [0; 2],
            span_us: 0,
            first_error_us: NO_ERROR,
            service,
            lines: 0,
            errors: 0,
            reported_ms: 0.0,
        };
        n.set_first(ts_ns);
        n
    }

    pub fn first_ns(&self) -> i64 {
        ((u64::from(self.first_ns[0]) << 32) | u64::from(self.first_ns[1])) as i64
    }

    fn set_first(&mut self, ts_ns: i64) {
        self.first_ns = [((ts_ns as u64) >> 32) as u32, ts_ns as u32];
    }

    pub fn last_ns(&self) -> i64 {
        self.first_ns() + i64::from(self.span_us) * 1_000
    }

    pub fn first_error_ns(&self) -> Option<i64> {
        (self.first_error_us != NO_ERROR).then(|| self.first_ns() + i64::from(self.first_error_us) * 1_000)
    }

    fn offset_us(&self, ts_ns: i64) -> u32 {
        ((ts_ns - self.first_ns()).max(0) / 1_000).min(i64::from(NO_ERROR - 1)) as u32
    }

    /// Extends the span to `ts_ns`, moving the start back when it is earlier (lines may
    /// arrive out of order).
    fn cover(&mut self, ts_ns: i64) {
        let first = self.first_ns();
        if ts_ns < first {
            let (last, error) = (self.last_ns(), self.first_error_ns());
            self.set_first(ts_ns);
            self.span_us = self.offset_us(last);
            self.first_error_us = error.map_or(NO_ERROR, |e| self.offset_us(e));
        } else {
            self.span_us = self.span_us.max(self.offset_us(ts_ns));
        }
    }

    fn error_at(&mut self, ts_ns: i64) {
        self.errors = self.errors.saturating_add(1);
        let at = self.offset_us(ts_ns);
        self.first_error_us = self.first_error_us.min(at);
    }
}

/// A call a line names explicitly (`upstream`, `target_service`, `peer.service`, `http.url`,
/// `caller`).
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: ServiceId,
    pub to: ServiceId,
    pub calls: u32,
    pub first_ns: i64,
    /// Longest duration the lines naming this call reported, 0 when none.
    pub reported_ms: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub service: ServiceId,
    pub ts_ns: i64,
    pub message: Box<str>,
    pub patterns: Box<[Arc<str>]>,
}

/// Spans kept per request (lines carrying `span_id` / `parent_span_id`).
pub const MAX_SPANS: usize = 128;

/// What few requests have: explicit calls, span ids, errors, pattern hits, overflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    pub edges: Vec<Edge>,
    /// (span id hash, the service whose line carried it).
    pub spans: Vec<(u64, ServiceId)>,
    /// (parent span id hash, the child's service, its line's time): resolved against
    /// `spans` when analysed, so a child may arrive before its parent.
    pub parents: Vec<(u64, ServiceId, i64)>,
    pub evidence: Vec<Evidence>,
    pub suggestions: Vec<Arc<str>>,
    pub dropped_lines: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    id: SmallVec<[u8; 40]>,
    pub nodes: SmallVec<[Node; 2]>,
    pub detail: Option<Box<Detail>>,
    /// Arrival order of the last line (the tracker's clock), for eviction.
    pub touched: u64,
}

impl Request {
    pub fn new(correlation_id: &str) -> Self {
        Request {
            id: SmallVec::from_slice(correlation_id.as_bytes()),
            ..Request::default()
        }
    }

    pub fn id(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or_default()
    }

    /// The calls lines named, plus those their span ids imply (parent span's service ->
    /// child's), as far as both ends have arrived.
    pub fn edges(&self) -> Vec<Edge> {
        let Some(d) = &self.detail else { return Vec::new() };
        let mut edges = d.edges.clone();
        for &(parent, child, ts_ns) in &d.parents {
            let Some(&(_, from)) = d.spans.iter().find(|(s, _)| *s == parent) else {
                continue;
            };
            if from == child {
                continue;
            }
            match edges.iter_mut().find(|e| e.from == from && e.to == child) {
                Some(e) => e.first_ns = e.first_ns.min(ts_ns),
                None => edges.push(Edge {
                    from,
                    to: child,
                    calls: 1,
                    first_ns: ts_ns,
                    reported_ms: 0.0,
                }),
            }
        }
        edges
    }

    pub fn first_ns(&self) -> i64 {
        self.nodes.iter().map(Node::first_ns).min().unwrap_or(0)
    }

    pub fn last_ns(&self) -> i64 {
        self.nodes.iter().map(Node::last_ns).max().unwrap_or(0)
    }

    pub fn dropped_lines(&self) -> u32 {
        self.detail.as_ref().map_or(0, |d| d.dropped_lines)
    }

    pub fn lines(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.lines)).sum::<u64>() + u64::from(self.dropped_lines())
    }

    pub fn errors(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.errors)).sum()
    }

    /// Adds one line of `service`; `target`/`caller` are the services the line names as
    /// callee or caller, and `spans` its (span id, parent span id) hashes, if any.
    pub fn observe(
        &mut self,
        e: &Enriched,
        service: ServiceId,
        target: Option<ServiceId>,
        caller: Option<ServiceId>,
        spans: (Option<u64>, Option<u64>),
        touched: u64,
    ) {
        let rec = &e.record;
        self.touched = touched;
        let failed = rec.is_failure();
        let reported = rec.duration_ms.unwrap_or(0.0).max(0.0) as f32;
        let Some(node) = self.node(service, rec.ts_ns) else {
            self.detail.get_or_insert_with(Box::default).dropped_lines += 1;
            return;
        };
        node.cover(rec.ts_ns);
        node.lines = node.lines.saturating_add(1);
        node.reported_ms = node.reported_ms.max(reported);
        if failed {
            node.error_at(rec.ts_ns);
        }
        if let Some(to) = target.filter(|t| *t != service) {
            self.edge(service, to, rec.ts_ns, reported);
            // The callee exists even if none of its lines arrived (yet).
            let _ = self.node(to, rec.ts_ns);
        }
        if let Some(from) = caller.filter(|c| *c != service) {
            self.edge(from, service, rec.ts_ns, reported);
            let _ = self.node(from, rec.ts_ns);
        }
        if spans.0.is_some() || spans.1.is_some() {
            let detail = self.detail.get_or_insert_with(Box::default);
            if let Some(id) = spans.0
                && detail.spans.len() < MAX_SPANS
                && !detail.spans.iter().any(|(s, _)| *s == id)
            {
                detail.spans.push((id, service));
            }
            if let Some(parent) = spans.1
                && detail.parents.len() < MAX_SPANS
                && !detail.parents.iter().any(|(p, c, _)| *p == parent && *c == service)
            {
                detail.parents.push((parent, service, rec.ts_ns));
            }
        }
        if failed || !e.patterns.is_empty() {
            let detail = self.detail.get_or_insert_with(Box::default);
            for m in &e.patterns {
                if detail.suggestions.len() < MAX_SUGGESTIONS && !detail.suggestions.contains(&m.suggestion) {
                    detail.suggestions.push(Arc::clone(&m.suggestion));
                }
            }
            let kept = detail.evidence.iter().filter(|ev| ev.service == service).count();
            if failed && kept < MAX_EVIDENCE {
                let message = match &rec.error {
                    Some(err) if !rec.message.contains(err.as_ref()) => format!("{}: {err}", rec.message),
                    _ => rec.message.to_string(),
                };
                detail.evidence.push(Evidence {
                    service,
                    ts_ns: rec.ts_ns,
                    message: message.into_boxed_str(),
                    patterns: e.patterns.iter().map(|m| Arc::clone(&m.id)).collect(),
                });
            }
        }
    }

    fn node(&mut self, service: ServiceId, ts_ns: i64) -> Option<&mut Node> {
        if let Some(i) = self.nodes.iter().position(|n| n.service == service) {
            return Some(&mut self.nodes[i]);
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        if self.nodes.len() == self.nodes.inline_size() {
            // Beyond the inline two, grow one at a time: most requests stop at three.
            self.nodes.reserve_exact(1);
        }
        self.nodes.push(Node::new(service, ts_ns));
        self.nodes.last_mut()
    }

    fn edge(&mut self, from: ServiceId, to: ServiceId, ts_ns: i64, reported_ms: f32) {
        let detail = self.detail.get_or_insert_with(Box::default);
        if let Some(e) = detail.edges.iter_mut().find(|e| e.from == from && e.to == to) {
            e.calls += 1;
            e.first_ns = e.first_ns.min(ts_ns);
            e.reported_ms = e.reported_ms.max(reported_ms);
        } else if detail.edges.len() < MAX_EDGES {
            detail.edges.push(Edge {
                from,
                to,
                calls: 1,
                first_ns: ts_ns,
                reported_ms,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_times_when_lines_arrive_out_of_order() {
        let base = 1_800_000_000_000_000_000i64;
        let mut n = Node::new(1, base + 5_000_000);
        n.cover(base + 9_000_000);
        n.error_at(base + 7_000_000);
        n.cover(base + 1_000_000);
        assert_eq!(n.first_ns(), base + 1_000_000);
        assert_eq!(n.last_ns(), base + 9_000_000);
        assert_eq!(n.first_error_ns(), Some(base + 7_000_000));
        assert!(std::mem::size_of::<Node>() <= 28);
        assert!(
            std::mem::size_of::<Request>() <= 136,
            "{}",
            std::mem::size_of::<Request>()
        );
    }
}
