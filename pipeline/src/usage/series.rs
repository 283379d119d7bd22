//! Aggregated metrics per time bucket and group (`GET /metrics` of the API): requests,
//! errors, tokens, cost and latency percentiles of AI requests, and catalog pattern hits.
//! The same aggregation runs over Postgres rows and over the memory views' lines: each
//! source turns what it holds into `Request`s and `PatternHits`, nothing else differs.

use std::collections::BTreeMap;

use serde::Serialize;
use sketches_ddsketch::{Config, DDSketch};

use super::{NO_WORKSPACE, PriceBook, is_ai_request};
use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::patterns::Category;

/// What the groups of a bucket are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Service,
    Model,
    Workspace,
    Operation,
}

impl GroupBy {
    pub const NAMES: &str = "service, model, workspace, operation";

    pub fn from_name(s: &str) -> Option<GroupBy> {
        match s {
            "service" => Some(GroupBy::Service),
            "model" => Some(GroupBy::Model),
            "workspace" => Some(GroupBy::Workspace),
            "operation" => Some(GroupBy::Operation),
            _ => None,
        }
    }
}

/// One AI request, as a source holds it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub ts_ns: i64,
    pub service: &'a str,
    pub model: &'a str,
    pub workspace_id: &'a str,
    /// The request type (`ai_completion`, ...), or `unknown`.
    pub operation: &'a str,
    /// Answered `success: false` or with an error.
    pub failed: bool,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanousd: i64,
    pub priced: bool,
    pub duration_ms: Option<f64>,
}

impl<'a> Request<'a> {
    /// The line as a request, when it is one (the rule the usage views count by).
    pub fn of_line(e: &'a Enriched, prices: &PriceBook) -> Option<Request<'a>> {
        let r = &e.record;
        if !is_ai_request(r) {
            return None;
        }
        let pricing = prices.price(r);
        let (input, output, _) = super::prices::tokens(r);
        Some(Request {
            ts_ns: r.ts_ns,
            service: &r.service,
            model: r.model.as_deref().unwrap_or_default(),
            workspace_id: r.workspace_id.as_deref().unwrap_or(NO_WORKSPACE),
            operation: r.request_type.as_deref().unwrap_or("unknown"),
            failed: failed(r.success, r.error.is_some()),
            input_tokens: input,
            output_tokens: output,
            cost_nanousd: pricing.cost_nanousd,
            priced: pricing.priced,
            duration_ms: r.duration_ms,
        })
    }

    fn group(&self, by: GroupBy) -> &'a str {
        match by {
            GroupBy::Service => self.service,
            GroupBy::Model => self.model,
            GroupBy::Workspace => self.workspace_id,
            GroupBy::Operation => self.operation,
        }
    }
}

/// The failure rule both sources apply: the request said it failed, or carried an error.
pub fn failed(success: Option<bool>, has_error: bool) -> bool {
    success == Some(false) || has_error
}

#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub start_ns: i64,
    pub end_ns: i64,
    pub step_ns: i64,
    pub group_by: GroupBy,
}

impl SeriesSpec {
    fn bucket(&self, ts_ns: i64) -> Option<i64> {
        (self.start_ns..self.end_ns)
            .contains(&ts_ns)
            .then(|| self.start_ns + (ts_ns - self.start_ns) / self.step_ns * self.step_ns)
    }
}

struct Acc {
    requests: u64,
    errors: u64,
    input_tokens: i64,
    output_tokens: i64,
    cost_nanousd: i64,
    unpriced: u64,
    latency: DDSketch,
    pattern_hits: BTreeMap<Category, u64>,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            requests: 0,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanousd: 0,
            unpriced: 0,
            latency: DDSketch::new(Config::defaults()),
            pattern_hits: BTreeMap::new(),
        }
    }
}

impl Acc {
    fn merge(&mut self, other: &Acc) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_nanousd += other.cost_nanousd;
        self.unpriced += other.unpriced;
        // Same config everywhere: merging cannot fail.
        let _ = self.latency.merge(&other.latency);
        for (c, n) in &other.pattern_hits {
            *self.pattern_hits.entry(*c).or_default() += n;
        }
    }

    fn row(&self, group: Option<&str>) -> GroupRow {
        let q = |q: f64| {
            self.latency
                .quantile(q)
                .ok()
                .flatten()
                .map(|v| (v * 100.0).round() / 100.0)
        };
        GroupRow {
            group: group.map(str::to_owned),
            requests: self.requests,
            errors: self.errors,
            error_rate: if self.requests == 0 {
                0.0
            } else {
                (self.errors as f64 / self.requests as f64 * 1e4).round() / 1e4
            },
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: super::billing::usd(self.cost_nanousd),
            unpriced_requests: self.unpriced,
            latency_ms: (self.latency.count() > 0).then(|| LatencyRow {
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
                timed_requests: self.latency.count() as u64,
            }),
            pattern_hits: self.pattern_hits.iter().map(|(c, n)| (c.as_str(), *n)).collect(),
        }
    }
}

/// Requests and pattern hits folded into buckets and groups.
pub struct Series {
    spec: SeriesSpec,
    cells: BTreeMap<(i64, String), Acc>,
}

impl Series {
    pub fn new(spec: SeriesSpec) -> Self {
        Series {
            spec,
            cells: BTreeMap::new(),
        }
    }

    fn cell(&mut self, bucket: i64, group: &str) -> &mut Acc {
        self.cells.entry((bucket, group.to_owned())).or_default()
    }

    pub fn add_request(&mut self, r: &Request<'_>) {
        let Some(bucket) = self.spec.bucket(r.ts_ns) else {
            return;
        };
        let acc = self.cell(bucket, r.group(self.spec.group_by));
        acc.requests += 1;
        acc.errors += u64::from(r.failed);
        acc.input_tokens += r.input_tokens;
        acc.output_tokens += r.output_tokens;
        acc.cost_nanousd += r.cost_nanousd;
        acc.unpriced += u64::from(!r.priced);
        if let Some(d) = r.duration_ms.filter(|d| d.is_finite()) {
            acc.latency.add(d.max(0.0));
        }
    }

    /// Catalog pattern hits of `service`. Sources keep them per service (Postgres'
    /// `detected_patterns`), so they belong to a group only when grouping by service;
    /// otherwise to the bucket as a whole.
    pub fn add_pattern_hits(&mut self, ts_ns: i64, service: &str, category: Category, hits: u64) {
        let Some(bucket) = self.spec.bucket(ts_ns) else {
            return;
        };
        let group = if self.spec.group_by == GroupBy::Service {
            service
        } else {
            ""
        };
        *self.cell(bucket, group).pattern_hits.entry(category).or_default() += hits;
    }

    pub fn finish(self) -> SeriesAnswer {
        let spec = self.spec;
        let mut buckets: Vec<BucketRow> = Vec::new();
        let mut totals: BTreeMap<String, Acc> = BTreeMap::new();
        let mut start = spec.start_ns;
        while start < spec.end_ns {
            buckets.push(BucketRow {
                start: format_rfc3339(start),
                groups: Vec::new(),
                pattern_hits: BTreeMap::new(),
            });
            start += spec.step_ns;
        }
        for ((bucket, group), acc) in &self.cells {
            let index = ((bucket - spec.start_ns) / spec.step_ns) as usize;
            let Some(row) = buckets.get_mut(index) else { continue };
            if group.is_empty() {
                // Pattern hits of no group (grouping is not by service).
                for (c, n) in &acc.pattern_hits {
                    *row.pattern_hits.entry(c.as_str()).or_default() += n;
                }
            } else {
                row.groups.push(acc.row(Some(group)));
            }
            totals.entry(group.clone()).or_default().merge(acc);
        }
        let mut by_group: Vec<GroupRow> = totals
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, acc)| acc.row(Some(g)))
            .collect();
        by_group.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.group.cmp(&b.group)));
        let mut all = Acc::default();
        for acc in totals.values() {
            all.merge(acc);
        }
        SeriesAnswer {
            group_by: spec.group_by,
            step_s: spec.step_ns / 1_000_000_000,
            start: format_rfc3339(spec.start_ns),
            end: format_rfc3339(spec.end_ns),
            total: all.row(None),
            by_group,
            buckets,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub timed_requests: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Decimal USD, exact to the nano-dollar.
    pub cost_usd: String,
    pub unpriced_requests: u64,
    /// Absent when no request in the cell reported a duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencyRow>,
    /// Catalog pattern hits by category.
    pub pattern_hits: BTreeMap<&'static str, u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct BucketRow {
    pub start: String,
    pub groups: Vec<GroupRow>,
    /// Pattern hits of the bucket when grouping is not by service (they are kept per service).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pattern_hits: BTreeMap<&'static str, u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct SeriesAnswer {
    pub group_by: GroupBy,
    pub step_s: i64,
    pub start: String,
    pub end: String,
    /// The whole window, every group.
    pub total: GroupRow,
    /// The whole window per group, most requests first.
    pub by_group: Vec<GroupRow>,
    /// Every bucket of the window, oldest first; a bucket with no request has no groups.
    pub buckets: Vec<BucketRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    fn request(ts_ns: i64, service: &'static str, failed: bool, duration_ms: f64) -> Request<'static> {
        Request {
            ts_ns,
            service,
            model: "gpt-4o",
            workspace_id: "ws",
            operation: "ai_completion",
            failed,
            input_tokens: 100,
            output_tokens: 10,
            cost_nanousd: 1_500,
            priced: true,
            duration_ms: Some(duration_ms),
        }
    }

    #[test]
    fn buckets_groups_and_totals_add_up() {
        let spec = SeriesSpec {
            start_ns: 0,
            end_ns: 10 * MIN,
            step_ns: 5 * MIN,
            group_by: GroupBy::Service,
        };
        let mut series = Series::new(spec);
        for i in 0..100 {
            series.add_request(&request(i * MIN / 20, "api", i % 10 == 0, f64::from(i as u32 + 1)));
        }
        series.add_request(&request(7 * MIN, "gateway", true, 50.0));
        series.add_request(&request(11 * MIN, "gateway", true, 50.0)); // outside the window
        series.add_pattern_hits(8 * MIN, "gateway", Category::Ai, 3);
        let answer = series.finish();
        assert_eq!(answer.buckets.len(), 2);
        assert_eq!(answer.total.requests, 101);
        assert_eq!(answer.total.errors, 11);
        assert_eq!(answer.total.input_tokens, 10_100);
        assert_eq!(answer.total.cost_usd, "0.000151500");
        let first = &answer.buckets[0].groups;
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].requests, first[0].errors), (100, 10));
        let p99 = first[0].latency_ms.as_ref().and_then(|l| l.p99).expect("p99");
        assert!((p99 - 99.0).abs() <= 2.0, "p99 {p99} within the sketch's 1 %");
        let second = &answer.buckets[1].groups;
        assert_eq!(second[0].group.as_deref(), Some("gateway"));
        assert_eq!(second[0].pattern_hits.get("ai"), Some(&3));
        assert_eq!(answer.by_group[0].group.as_deref(), Some("api"));
    }

    #[test]
    fn pattern_hits_belong_to_the_bucket_when_not_grouping_by_service() {
        let spec = SeriesSpec {
            start_ns: 0,
            end_ns: MIN,
            step_ns: MIN,
            group_by: GroupBy::Model,
        };
        let mut series = Series::new(spec);
        series.add_request(&request(1, "api", false, 5.0));
        series.add_pattern_hits(2, "api", Category::Connectivity, 2);
        let answer = series.finish();
        assert_eq!(answer.buckets[0].groups[0].group.as_deref(), Some("gpt-4o"));
        assert_eq!(answer.buckets[0].pattern_hits.get("connectivity"), Some(&2));
        assert_eq!(answer.total.pattern_hits.get("connectivity"), Some(&2));
        assert_eq!(answer.by_group.len(), 1, "the bucket-level hits are no group");
    }
}
