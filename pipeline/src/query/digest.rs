//! What an answer says about every line a query matched, without holding those lines:
//! counts by service, level and message shape, time span, latency per operation, audit
//! categories, conversations. A view merges it from the aggregates it maintains; a scan
//! (Redis, or filters no aggregate is kept for) folds it from the lines. Rendering reads
//! only this and the few lines it returns, so both give the same answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

use crate::classify::{AuditCategory, SLOW_MS};
use crate::enrich::Enriched;
use crate::record::Level;

/// Duration percentiles of one (service, operation) over the matched lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    pub service: String,
    pub operation: String,
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// One conversation's totals over the matched lines (conversation mode).
#[derive(Debug, Clone, Default)]
pub struct ConversationTotals {
    pub first_ns: i64,
    pub last_ns: i64,
    pub lines: usize,
    pub errors: usize,
    pub tokens_used: u64,
    pub models: BTreeMap<String, usize>,
    /// By name.
    pub services: Vec<String>,
    pub workspace_id: Option<String>,
}

impl ConversationTotals {
    pub fn add(&mut self, r: &Enriched) {
        if self.lines == 0 {
            (self.first_ns, self.last_ns) = (r.ts_ns, r.ts_ns);
        }
        self.first_ns = self.first_ns.min(r.ts_ns);
        self.last_ns = self.last_ns.max(r.ts_ns);
        self.lines += 1;
        self.errors += usize::from(r.is_failure());
        self.tokens_used += r.tokens_used.unwrap_or(0);
        if let Some(m) = &r.model {
            *self.models.entry(m.to_string()).or_default() += 1;
        }
        if let Err(at) = self.services.binary_search_by(|s| s.as_str().cmp(&r.service)) {
            self.services.insert(at, r.service.to_string());
        }
        if self.workspace_id.is_none() {
            self.workspace_id = r.workspace_id.as_deref().map(str::to_owned);
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Digest {
    pub total: usize,
    /// Lines per level, indexed by `Level as usize`.
    pub levels: [usize; 6],
    /// Lines per service, most first (ties by name).
    pub services: Vec<(String, usize)>,
    /// The most frequent message shapes, most first: at most `TOP_SHAPES`.
    pub top_shapes: Vec<(String, usize)>,
    /// Oldest and newest event among the matched lines (0 when none matched).
    pub first_ns: i64,
    pub last_ns: i64,
    /// Timed lines at or over `classify::SLOW_MS`.
    pub slow: usize,
    pub audit: BTreeMap<&'static str, usize>,
    /// Performance mode: per (service, operation), slowest p95 first.
    pub latency: Vec<LatencyRow>,
    /// Conversation mode: the conversations with matched lines, those with a failure, and
    /// the totals of (at least) every conversation the answer shows, by id.
    pub conversation_count: usize,
    pub conversations_failing: usize,
    pub conversations: HashMap<String, ConversationTotals>,
}

pub const TOP_SHAPES: usize = 3;

impl Digest {
    pub fn errors(&self) -> usize {
        self.levels[Level::Error as usize] + self.levels[Level::Fatal as usize]
    }
}

/// One aggregation group: what `group_json` renders.
#[derive(Debug, Clone)]
pub struct GroupDigest {
    pub key: String,
    pub count: usize,
    pub first_ns: i64,
    pub last_ns: i64,
    pub levels: BTreeMap<&'static str, usize>,
    /// Most lines first.
    pub services: Vec<String>,
    /// Up to five, from the best-ranked lines.
    pub correlation_ids: Vec<String>,
    /// The group's best-ranked line.
    pub sample: Arc<Enriched>,
}

/// Folds counts into a digest; keys borrow from whatever holds the lines.
#[derive(Default)]
pub struct DigestBuilder<'a> {
    total: usize,
    levels: [usize; 6],
    services: HashMap<&'a str, usize>,
    shapes: HashMap<&'a str, usize>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
    slow: usize,
    audit: BTreeMap<&'static str, usize>,
    durations: BTreeMap<(&'a str, &'a str), Vec<f64>>,
    conversations: HashMap<String, ConversationTotals>,
}

impl<'a> DigestBuilder<'a> {
    /// `n` lines of one service, level and shape, spanning `first_ns..=last_ns`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        service: &'a str,
        level: Level,
        shape: &'a str,
        n: usize,
        (first_ns, last_ns): (i64, i64),
        slow: usize,
        audit: Option<AuditCategory>,
    ) {
        if n == 0 {
            return;
        }
        self.total += n;
        self.levels[level as usize] += n;
        *self.services.entry(service).or_default() += n;
        *self.shapes.entry(shape).or_default() += n;
        self.first_ns = Some(self.first_ns.map_or(first_ns, |f| f.min(first_ns)));
        self.last_ns = Some(self.last_ns.map_or(last_ns, |l| l.max(last_ns)));
        self.slow += slow;
        if let Some(category) = audit {
            *self.audit.entry(category.as_str()).or_default() += n;
        }
    }

    /// One matched line; `with_conversations` also totals it per conversation.
    pub fn add_line(&mut self, r: &'a Enriched, with_conversations: bool) {
        let slow = r.duration_ms.is_some_and(|d| d >= SLOW_MS);
        self.add(
            &r.service,
            r.level,
            &r.shape,
            1,
            (r.ts_ns, r.ts_ns),
            usize::from(slow),
            r.audit,
        );
        if let Some(d) = r.duration_ms {
            self.durations.entry((&r.service, operation(r))).or_default().push(d);
        }
        if with_conversations {
            let id = r.conversation_id.as_deref().unwrap_or_default().to_owned();
            self.conversations.entry(id).or_default().add(r);
        }
    }

    /// Builds the digest; `latency` replaces the exact rows a scan collected, when a view
    /// computed them from its sketches.
    pub fn build(self, latency: Option<Vec<LatencyRow>>) -> Digest {
        let latency = latency.unwrap_or_else(|| exact_latency(self.durations));
        Digest {
            total: self.total,
            levels: self.levels,
            services: most_first(self.services, usize::MAX),
            top_shapes: most_first(self.shapes, TOP_SHAPES),
            first_ns: self.first_ns.unwrap_or(0),
            last_ns: self.last_ns.unwrap_or(0),
            slow: self.slow,
            audit: self.audit,
            latency: sort_latency(latency),
            conversation_count: self.conversations.len(),
            conversations_failing: self.conversations.values().filter(|c| c.errors > 0).count(),
            conversations: self.conversations,
        }
    }
}

/// The operation a duration is reported under: the request type, else the model.
pub fn operation(r: &Enriched) -> &str {
    r.request_type.as_deref().or(r.model.as_deref()).unwrap_or("-")
}

fn most_first(counts: HashMap<&str, usize>, n: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(n);
    v.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
}

/// Slowest p95 first.
pub fn sort_latency(mut rows: Vec<LatencyRow>) -> Vec<LatencyRow> {
    rows.sort_by(|a, b| {
        b.p95_ms
            .total_cmp(&a.p95_ms)
            .then_with(|| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    rows
}

fn exact_latency(durations: BTreeMap<(&str, &str), Vec<f64>>) -> Vec<LatencyRow> {
    durations
        .into_iter()
        .map(|((service, op), mut ds)| {
            ds.sort_by(f64::total_cmp);
            LatencyRow {
                service: service.to_owned(),
                operation: op.to_owned(),
                count: ds.len(),
                p50_ms: percentile(&ds, 50.0),
                p95_ms: percentile(&ds, 95.0),
                p99_ms: percentile(&ds, 99.0),
                max_ms: ds.last().copied().unwrap_or(0.0),
                mean_ms: ds.iter().sum::<f64>() / ds.len() as f64,
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
