//! Every Prometheus metric ailogs exports, defined in one place. Label sets are bounded:
//! reasons and formats are fixed names, routes are matched paths.

mod insight;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    names: Vec<String>,
    pub lines_received: IntCounterVec,
    pub lines_decoded: IntCounterVec,
    pub lines_rejected: IntCounterVec,
    pub push_requests_rejected: IntCounterVec,
    pub queue_depth_lines: IntGauge,
    pub queue_capacity_lines: IntGauge,
    pub pipeline_latency: Histogram,
    pub http_duration: HistogramVec,
    pub view_lines: IntGauge,
    pub view_evictions: IntCounterVec,
    pub consumer_lines: IntCounter,
    pub consumer_commits: IntCounterVec,
    pub consumer_commit_latency: Histogram,
    pub spool_bytes: IntGauge,
    pub spool_lines: IntCounter,
    pub spool_replayed_lines: IntCounter,
    pub redis_write_failures: IntCounter,
    pub stream_delivery: Histogram,
    pub stream_subscribers: IntGauge,
    pub stream_dropped: IntCounter,
    pub stream_closed: IntCounterVec,
    pub auth_refused: IntCounter,
    pub alerts_published: IntCounter,
    pub stream_lines_unpublished: IntCounter,
    /// Partitions of the consumer group by state, as this consumer last checked them.
    pub partitions: IntGaugeVec,
    pub consumer_lag_lines: IntGauge,
    /// Each partition's lag (the topic's partitions bound the label).
    pub partition_lag_lines: IntGaugeVec,
    pub loki_requests: IntCounterVec,
    pub loki_seconds: Histogram,
    pub exports: IntCounterVec,
    pub export_lines: IntCounterVec,
    pub masked: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub audit_rows: IntCounterVec,
    insight: insight::InsightCounters,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // Every metric's name, kept for `names` (the registry's own list leaves out families
        // that have no labelled child yet).
        let names = std::cell::RefCell::new(Vec::<String>::new());
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            names.borrow_mut().extend(c.desc().iter().map(|d| d.fq_name.clone()));
            registry.register(c).expect("unique metric");
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
            reg(Box::new(h.clone()));
            h
        };
        let lines_received = counter(
            "ailogs_lines_received_total",
            "Log lines received, by endpoint.",
            &["endpoint"],
        );
        let lines_decoded = counter(
            "ailogs_lines_decoded_total",
            "Log lines decoded into records, by line format.",
            &["format"],
        );
        let lines_rejected = counter(
            "ailogs_lines_rejected_total",
            "Log lines dead-lettered, by reason.",
            &["reason"],
        );
        let push_requests_rejected = counter(
            "ailogs_push_requests_rejected_total",
            "Push requests refused whole, by endpoint and reason.",
            &["endpoint", "reason"],
        );
        let queue_depth_lines = gauge("ailogs_queue_depth_lines", "Lines waiting in the ingest queue.");
        let queue_capacity_lines = gauge("ailogs_queue_capacity_lines", "Capacity of the ingest queue, in lines.");
        let pipeline_latency = histogram(
            "ailogs_pipeline_latency_seconds",
            "From a push's acceptance (embedded) or its Kafka message's creation (consumers) to its lines being queryable.",
            vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "ailogs_http_request_duration_seconds",
                "HTTP request duration, by matched route, method and status.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        reg(Box::new(http_duration.clone()));
        let view_lines = gauge("ailogs_view_lines", "Lines held in the in-memory recent-lines view.");
        let view_evictions = counter(
            "ailogs_view_evictions_total",
            "Lines evicted from the in-memory view, by reason (count, age).",
            &["reason"],
        );
        let consumer_lines = IntCounter::new(
            "ailogs_consumer_lines_total",
            "Lines committed to Postgres by this consumer.",
        )
        .expect("valid metric");
        reg(Box::new(consumer_lines.clone()));
        let consumer_commits = counter(
            "ailogs_consumer_commits_total",
            "Batch commits to Postgres, by outcome (ok, retry: Postgres unavailable, fenced: partition moved).",
            &["outcome"],
        );
        let consumer_commit_latency = histogram(
            "ailogs_consumer_commit_seconds",
            "Time to write a batch and its offsets, retries included.",
            vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0],
        );
        let spool_bytes = gauge("ailogs_spool_bytes", "Bytes waiting in the local spool for Kafka.");
        let plain_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let spool_lines = plain_counter(
            "ailogs_spool_lines_total",
            "Lines written to the spool because Kafka did not acknowledge them.",
        );
        let spool_replayed_lines = plain_counter(
            "ailogs_spool_replayed_lines_total",
            "Spooled lines replayed into Kafka.",
        );
        let redis_write_failures = plain_counter(
            "ailogs_redis_write_failures_total",
            "Batches that could not be written to the Redis hot views.",
        );
        let stream_delivery = histogram(
            "ailogs_stream_delivery_seconds",
            "From an event's publication (its line processed) to its WebSocket send.",
            vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ],
        );
        let stream_subscribers = gauge("ailogs_stream_subscribers", "WebSocket stream subscribers connected.");
        let stream_dropped = plain_counter(
            "ailogs_stream_dropped_total",
            "Messages slow stream subscribers lost (told to them as `dropped`).",
        );
        let stream_closed = counter(
            "ailogs_stream_closed_total",
            "Stream connections closed by the server, by reason.",
            &["reason"],
        );
        let auth_refused = plain_counter(
            "ailogs_auth_refused_total",
            "Requests and stream connections that presented an invalid API key.",
        );
        let alerts_published = plain_counter(
            "ailogs_alerts_published_total",
            "Alerts this consumer produced to ai-logs.alerts.",
        );
        let stream_lines_unpublished = plain_counter(
            "ailogs_stream_lines_unpublished_total",
            "Committed lines this consumer could not queue for the stream's lines topic.",
        );
        let partitions = gauge_vec(
            "ailogs_consumer_partitions",
            "Partitions of the group's topic by state (consuming, caught_up, unowned, stalled), as checked by this consumer.",
            &["state"],
        );
        let consumer_lag_lines = gauge(
            "ailogs_consumer_lag_lines",
            "Lines in the group's topic not yet committed to Postgres, as checked by this consumer.",
        );
        let partition_lag_lines = gauge_vec(
            "ailogs_consumer_partition_lag_lines",
            "Lines of each partition of the group's topic not yet committed to Postgres, as checked by this consumer.",
            &["partition"],
        );
        let loki_requests = counter(
            "ailogs_loki_reads_total",
            "Reads of a window's uncovered part from Loki, by outcome (ok, failed).",
            &["outcome"],
        );
        let loki_seconds = histogram(
            "ailogs_loki_read_seconds",
            "Time to read and enrich one query's part from Loki (cache hits included).",
            vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0],
        );
        let exports = counter(
            "ailogs_exports_total",
            "Exports by format and outcome (complete, aborted: the client went away, failed).",
            &["format", "outcome"],
        );
        let export_lines = counter(
            "ailogs_export_lines_total",
            "Lines written by exports, by format.",
            &["format"],
        );
        let masked = counter(
            "ailogs_masked_total",
            "Secrets and personal data masked in pushed lines, by rule.",
            &["rule"],
        );
        let rate_limited = counter(
            "ailogs_rate_limited_total",
            "Requests answered 429 by a key's rate limit, by route class.",
            &["class"],
        );
        let audit_rows = counter(
            "ailogs_audit_rows_total",
            "Audit rows by outcome (written to Postgres, failed, dropped: the writer was behind).",
            &["outcome"],
        );
        let insight = insight::InsightCounters::new(&counter);
        let names = names.into_inner();
        Metrics {
            names,
            insight,
            masked,
            rate_limited,
            audit_rows,
            exports,
            export_lines,
            loki_requests,
            loki_seconds,
            registry,
            partitions,
            consumer_lag_lines,
            partition_lag_lines,
            auth_refused,
            alerts_published,
            stream_lines_unpublished,
            redis_write_failures,
            stream_delivery,
            stream_subscribers,
            stream_dropped,
            stream_closed,
            spool_bytes,
            spool_lines,
            spool_replayed_lines,
            consumer_lines,
            consumer_commits,
            consumer_commit_latency,
            lines_received,
            lines_decoded,
            lines_rejected,
            push_requests_rejected,
            queue_depth_lines,
            queue_capacity_lines,
            pipeline_latency,
            http_duration,
            view_lines,
            view_evictions,
        }
    }

    /// Every metric this process exports, by name (histograms without their `_bucket`,
    /// `_sum` and `_count` series).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Counts what a committed batch produced: pattern hits, alerts raised, unpriced requests.
    pub fn count_outputs(&self, out: &ailogs_pipeline::core::Outputs) {
        self.insight.count(out);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
