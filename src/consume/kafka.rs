//! The Kafka consumer group: `ai-logs.raw` through the pipeline core into Postgres, exactly
//! once.
//!
//! - Offsets live in Postgres (`consumer_offsets`), written in the same transaction as the
//!   deltas they cover; Kafka's own commits are informational.
//! - On assignment the rebalance hook reads the stored offsets and assigns from them.
//! - Each commit is fenced on the stored offset the batch started from, so a consumer that
//!   lost a partition (or a zombie) cannot count a line twice.
//! - Undecodable lines go to `ai-logs.dlq` (reason in headers) before the batch commits.
//! - When Postgres is down the consumer pauses, retries, and resumes without loss.
//!
//! It runs on its own thread: librdkafka calls the rebalance hook from `poll`, and the hook
//! must block on Postgres before partitions are assigned.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::live::LiveAnalysis;
use ailogs_pipeline::patterns::{Scanner, SharedMatcher};
use ailogs_pipeline::usage::{PriceBook, SourcePos, UsageBatch};
use ailogs_pipeline::{DecodeLimits, Decoder, Enriched, RawEntry};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use crate::kafka::{MAX_BATCH_MESSAGES, RawMessage, client_config};
use crate::metrics::Metrics;
use crate::store::memory::MemoryViews;
use crate::store::postgres::{CommitError, PartitionCommit, Postgres};

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: String,
    pub group_id: String,
    pub topic: String,
    pub dlq_topic: String,
    /// Where alerts go for every API replica's stream.
    pub alerts_topic: String,
    pub session_timeout_ms: u32,
    /// A batch is written when it has this many lines...
    pub batch_max_lines: usize,
    /// ...or when its oldest line has waited this long.
    pub batch_max_wait: Duration,
    pub limits: DecodeLimits,
}

/// Longest a poll waits for a message.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Stored offsets of the partitions this consumer owns: where its next batch must start.
type Assigned = Arc<Mutex<BTreeMap<i32, Option<i64>>>>;

struct Context {
    pg: Postgres,
    handle: Handle,
    group: String,
    topic: String,
    assigned: Assigned,
    /// Bumped at every assignment change and re-seek: buffered messages of an older
    /// generation will be fetched again from the stored offsets, so they are dropped.
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = self.stored_offsets();
                let mut assigned = self.assigned.lock();
                assigned.clear();
                for p in tpl
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect::<Vec<_>>()
                {
                    let from = stored.get(&p).copied();
                    let offset = fetch_start(from, Some(MAX_BATCH_MESSAGES));
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p, offset) {
                        tracing::error!(partition = p, error = %e, "cannot set the start offset");
                    }
                    assigned.insert(p, from);
                }
                tracing::info!(partitions = ?assigned.keys().collect::<Vec<_>>(), "partitions assigned, starting from stored offsets");
                drop(assigned);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("partitions revoked");
                self.assigned.lock().clear();
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                self.assigned.lock().clear();
                let _ = consumer.unassign();
            }
        }
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {}
}

impl Context {
    /// Reads stored offsets, retrying while Postgres is down: partitions must not start
    /// anywhere else.
    fn stored_offsets(&self) -> HashMap<i32, i64> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.handle.block_on(self.pg.stored_offsets(&self.group, &self.topic)) {
                Ok(offsets) => return offsets,
                Err(e) if !self.stop.load(Ordering::Relaxed) => {
                    tracing::warn!(error = %e, "cannot read stored offsets; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(_) => return HashMap::new(),
            }
        }
    }
}

/// A message taken off the topic, waiting for its batch.
struct Pending {
    generation: u64,
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
}

/// Where processed records go besides Postgres: the serving process's in-memory views, and
/// the Redis hot views every API replica reads.
#[derive(Clone)]
pub struct RecordSink {
    pub memory: Option<Arc<MemoryViews>>,
    pub redis: Option<crate::store::redis::RedisViews>,
    /// The live pattern catalog every record is scanned with.
    pub patterns: SharedMatcher,
    /// Templates, anomalies and alerts (shared with the API in a serving process).
    pub live: Arc<Mutex<LiveAnalysis>>,
}

/// Runs the consumer on the current thread until `stop` is set. Call from a dedicated
/// thread (not a tokio worker): it blocks.
pub fn run(
    settings: ConsumerSettings,
    pg: Postgres,
    prices: PriceBook,
    handle: Handle,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    views: RecordSink,
) -> anyhow::Result<()> {
    // Completed requests go to `ai_correlations` with the next commit.
    views.live.lock().correlations.persist = true;
    let assigned: Assigned = Arc::default();
    let generation = Arc::new(AtomicU64::new(0));
    let context = Context {
        generation: Arc::clone(&generation),
        pg: pg.clone(),
        handle: handle.clone(),
        group: settings.group_id.clone(),
        topic: settings.topic.clone(),
        assigned: Arc::clone(&assigned),
        stop: Arc::clone(&stop),
    };
    let consumer: BaseConsumer<Context> = client_config(&settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A broker that does not answer a fetch as soon as data arrives (librdkafka's mock,
        // tansu) would otherwise hold each one for the default 500 ms: alerts wait on it.
        .set("fetch.wait.max.ms", "50")
        .set("session.timeout.ms", settings.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout_ms / 3).max(100).to_string(),
        )
        .create_with_context(context)?;
    consumer.subscribe(&[&settings.topic])?;
    // Dead letters and alerts.
    let producer: FutureProducer = client_config(&settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let mut decoder = MessageDecoder::new(settings.limits, &views.patterns);
    let mut pending: Vec<Pending> = Vec::new();
    let mut oldest: Option<Instant> = None;
    tracing::info!(group = %settings.group_id, topic = %settings.topic, "consumer started");

    let job = Job {
        settings: &settings,
        pg: &pg,
        prices: &prices,
        handle: &handle,
        producer: &producer,
        metrics: &metrics,
        views: &views,
        generation: &generation,
        gaps: Mutex::new(HashMap::new()),
    };
    let mut status_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if tracing::enabled!(tracing::Level::DEBUG) && status_at.elapsed() >= Duration::from_secs(5) {
            status_at = Instant::now();
            let position = consumer.position().map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.partition(), e.offset()))
                    .collect::<Vec<_>>()
            });
            tracing::debug!(stored = ?*assigned.lock(), ?position, pending = pending.len(), "consumer status");
        }
        // Wake in time for a batch that comes due.
        let wait = oldest.map_or(POLL_WAIT, |t| {
            settings.batch_max_wait.saturating_sub(t.elapsed()).min(POLL_WAIT)
        });
        if let Some(result) = consumer.poll(wait) {
            match result {
                Ok(m) => {
                    let owned = assigned.lock().contains_key(&m.partition());
                    if owned {
                        pending.push(Pending {
                            generation: generation.load(Ordering::SeqCst),
                            partition: m.partition(),
                            offset: m.offset(),
                            payload: m.payload().map(<[u8]>::to_vec),
                        });
                        oldest.get_or_insert_with(Instant::now);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "kafka poll error"),
            }
        }
        let current = generation.load(Ordering::SeqCst);
        if pending.first().is_some_and(|m| m.generation != current) {
            pending.retain(|m| m.generation == current);
            if pending.is_empty() {
                oldest = None;
            }
        }
        let due = oldest.is_some_and(|t| t.elapsed() >= settings.batch_max_wait);
        if pending.len() >= settings.batch_max_lines || due {
            let batch = std::mem::take(&mut pending);
            oldest = None;
            job.write(&consumer, &assigned, &mut decoder, batch, &stop)?;
        }
    }
    if !pending.is_empty() {
        job.write(&consumer, &assigned, &mut decoder, pending, &stop)?;
    }
    tracing::info!("consumer stopped");
    Ok(())
}

struct Job<'a> {
    settings: &'a ConsumerSettings,
    pg: &'a Postgres,
    prices: &'a PriceBook,
    handle: &'a Handle,
    producer: &'a FutureProducer,
    metrics: &'a Metrics,
    views: &'a RecordSink,
    generation: &'a AtomicU64,
    /// (partition, offset) where a gap was last refused, and how many times in a row.
    gaps: Mutex<HashMap<i32, (i64, u32)>>,
}

/// How far before the stored offset a partition is fetched from after a refused gap, by
/// attempt: further back each time, then from the log start (None). Messages before the
/// stored offset are filtered out, so a rewind costs reading only.
fn gap_rewind(attempt: u32) -> Option<i64> {
    match attempt {
        0 | 1 => Some(MAX_BATCH_MESSAGES),
        2 => Some(8 * MAX_BATCH_MESSAGES),
        _ => None,
    }
}

/// Where to fetch a partition from: `rewind` offsets before its stored offset (None: from
/// the log start), so the fetch never starts inside a record batch; see MAX_BATCH_MESSAGES.
/// Before the log start, librdkafka resets to it (`auto.offset.reset=earliest`).
fn fetch_start(stored: Option<i64>, rewind: Option<i64>) -> Offset {
    match (stored, rewind) {
        (Some(s), Some(back)) if s > back => Offset::Offset(s - back),
        _ => Offset::Beginning,
    }
}

/// Still refusing the same gap after rewinding to the log start is reported as an error:
/// the broker does not serve offsets it says it holds.
const GAP_ERROR_AFTER: u32 = 4;

/// Orders each partition's messages, drops duplicate copies, and checks that they continue
/// exactly from the stored offset. A gap is accepted only where the broker no longer has
/// the missing offsets (`low_watermark` past them: retention deleted them); anything else
/// would commit past lines never counted. Err((partition, expected offset, first found)).
fn contiguous(
    mut batch: Vec<Pending>,
    owned: &BTreeMap<i32, Option<i64>>,
    low_watermark: impl Fn(i32) -> Option<i64>,
) -> Result<Vec<Pending>, (i32, i64, i64)> {
    batch.sort_by_key(|m| (m.partition, m.offset));
    batch.dedup_by_key(|m| (m.partition, m.offset));
    let mut next: HashMap<i32, i64> = HashMap::new();
    for m in &batch {
        let expected = match next.get(&m.partition) {
            Some(n) => Some(*n),
            None => owned.get(&m.partition).copied().flatten(),
        };
        if let Some(expected) = expected
            && m.offset != expected
        {
            if low_watermark(m.partition).is_none_or(|low| low < m.offset) {
                return Err((m.partition, expected, m.offset));
            }
            tracing::warn!(
                partition = m.partition,
                expected,
                got = m.offset,
                "offsets deleted by retention before they were consumed"
            );
        }
        next.insert(m.partition, m.offset + 1);
    }
    Ok(batch)
}

impl Job<'_> {
    /// Decodes a batch, dead-letters what cannot be decoded, and commits deltas and offsets.
    fn write(
        &self,
        consumer: &BaseConsumer<Context>,
        assigned: &Assigned,
        decoder: &mut MessageDecoder,
        batch: Vec<Pending>,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        let topic = &self.settings.topic;
        // Only partitions still owned, and only messages at or after where each must start.
        let owned = assigned.lock().clone();
        let batch: Vec<Pending> = batch
            .into_iter()
            .filter(|m| {
                owned
                    .get(&m.partition)
                    .is_some_and(|from| from.is_none_or(|f| m.offset >= f))
            })
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let low_watermark = |p: i32| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .ok()
                .map(|(low, _)| low)
        };
        let batch = match contiguous(batch, &owned, low_watermark) {
            Ok(batch) => {
                let mut gaps = self.gaps.lock();
                for m in &batch {
                    gaps.remove(&m.partition);
                }
                drop(gaps);
                batch
            }
            Err((partition, expected, got)) => {
                // A message is missing between the stored offset and this batch: committing
                // would skip it. Start the partitions again from Postgres.
                let mut gaps = self.gaps.lock();
                let seen = gaps.entry(partition).or_insert((expected, 0));
                *seen = if seen.0 == expected {
                    (expected, seen.1 + 1)
                } else {
                    (expected, 1)
                };
                let attempt = seen.1;
                drop(gaps);
                if attempt >= GAP_ERROR_AFTER {
                    tracing::error!(
                        partition,
                        expected,
                        got,
                        attempt,
                        "the broker does not serve offsets it still holds, even fetched from the log start; not committing past them"
                    );
                } else {
                    tracing::warn!(
                        partition,
                        expected,
                        got,
                        attempt,
                        "gap in a batch; fetching the partition again from before the stored offset"
                    );
                }
                self.metrics.consumer_commits.with_label_values(&["gap"]).inc();
                self.reseek(consumer, assigned)?;
                return Ok(());
            }
        };
        let mut usage = UsageBatch::default();
        let mut records = Vec::new();
        let mut dead = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for m in &batch {
            next.insert(m.partition, m.offset + 1);
            let source = SourcePos {
                topic: topic.clone(),
                partition: m.partition,
                offset: m.offset,
            };
            match decoder.decode(m.payload.as_deref()) {
                Ok(e) => {
                    usage.add(&e, self.prices, source);
                    records.push(e);
                }
                Err((reason, detail)) => dead.push((m, reason, detail)),
            }
        }
        self.dead_letter(&dead)?;
        // Templates are mined before the commit so that `log_templates` is written with it.
        let mut insights = InsightBatch::default();
        {
            let mut live = self.views.live.lock();
            live.tag(&mut records);
            for r in &records {
                insights.add(r);
            }
            insights.name_templates(|service, id| live.templates.template(service, id));
            // Requests completed by earlier batches: durable with this commit.
            insights.correlations = live.correlations.take_pending();
        }
        let commits: Vec<PartitionCommit> = next
            .iter()
            .map(|(&p, &n)| PartitionCommit {
                topic: topic.clone(),
                partition: p,
                expected: owned.get(&p).copied().flatten(),
                next: n,
            })
            .collect();
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        let mut paused = false;
        loop {
            match self.handle.block_on(
                self.pg
                    .commit_batch(&self.settings.group_id, &commits, &usage, &insights),
            ) {
                Ok(()) => break,
                Err(CommitError::Fenced { topic, partition }) => {
                    // Someone else owns this partition's progress now: drop the batch; the
                    // next rebalance (or this re-read) decides where to go on.
                    tracing::warn!(%topic, partition, "commit fenced; dropping the batch and re-reading offsets");
                    self.metrics.consumer_commits.with_label_values(&["fenced"]).inc();
                    if paused && let Ok(tpl) = consumer.assignment() {
                        let _ = consumer.resume(&tpl);
                    }
                    let done = std::mem::take(&mut insights.correlations);
                    self.views.live.lock().correlations.restore_pending(done);
                    self.reseek(consumer, assigned)?;
                    return Ok(());
                }
                Err(CommitError::Db(e)) => {
                    self.metrics.consumer_commits.with_label_values(&["retry"]).inc();
                    if !paused {
                        tracing::warn!(error = %e, "postgres unavailable; pausing consumption until it is back");
                        if let Ok(tpl) = consumer.assignment() {
                            let _ = consumer.pause(&tpl);
                        }
                        paused = true;
                    }
                    if stop.load(Ordering::Relaxed) {
                        anyhow::bail!("stopping with an uncommitted batch; it will be re-read: {e}");
                    }
                    // No polling while waiting: a poll would hand over messages already fetched,
                    // and dropping them would lose them (the fetch position is past them).
                    // librdkafka heartbeats on its own thread, so the group keeps us.
                    let until = Instant::now() + delay;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if paused {
            tracing::info!("postgres is back; resuming");
            if let Ok(tpl) = consumer.assignment() {
                let _ = consumer.resume(&tpl);
            }
        }
        {
            let mut owned_now = assigned.lock();
            for (p, n) in &next {
                if let Some(from) = owned_now.get_mut(p) {
                    *from = Some(*n);
                }
            }
        }
        self.metrics.consumer_commits.with_label_values(&["ok"]).inc();
        self.metrics.consumer_lines.inc_by(batch.len() as u64);
        self.metrics
            .consumer_commit_latency
            .observe(started.elapsed().as_secs_f64());
        // After the commit: a batch that is re-read must not count twice in the baselines.
        let alerts = self.views.live.lock().observe(&records);
        self.publish_alerts(&alerts);
        if let Some(redis) = &self.views.redis {
            crate::store::redis::write_blocking(redis, self.handle, &records, self.metrics);
        }
        if let Some(views) = &self.views.memory {
            views.insert(records, Instant::now());
        }
        Ok(())
    }

    /// Produces alerts to `ai-logs.alerts`, which every API replica tails for its stream.
    /// Not awaited: the next batch need not wait for them, and a failure is logged. An
    /// alert raised after the commit is lost if this process dies before Kafka has it (a
    /// re-read batch would not raise it again: its lines are counted).
    fn publish_alerts(&self, alerts: &[ailogs_pipeline::anomaly::Alert]) {
        if alerts.is_empty() {
            return;
        }
        let mut deliveries = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let payload = match serde_json::to_vec(alert) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize an alert");
                    continue;
                }
            };
            let record = FutureRecord::<str, [u8]>::to(&self.settings.alerts_topic)
                .key(alert.key.as_str())
                .payload(&payload);
            match self.producer.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((e, _)) => tracing::warn!(error = %e, "alert not queued for kafka"),
            }
        }
        let published = self.metrics.alerts_published.clone();
        self.handle.spawn(async move {
            for d in deliveries {
                match d.await {
                    Ok(Ok(_)) => published.inc(),
                    Ok(Err((e, _))) => tracing::warn!(error = %e, "alert not delivered to kafka"),
                    Err(_) => tracing::warn!("alert delivery cancelled"),
                }
            }
        });
    }

    /// Produces dead letters and waits for Kafka to acknowledge them.
    fn dead_letter(&self, dead: &[(&Pending, &'static str, String)]) -> anyhow::Result<()> {
        let mut deliveries = Vec::new();
        for (m, reason, detail) in dead {
            self.metrics.lines_rejected.with_label_values(&[reason]).inc();
            let source = format!("{}/{}/{}", self.settings.topic, m.partition, m.offset);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reason",
                    value: Some(*reason),
                })
                .insert(Header {
                    key: "detail",
                    value: Some(detail.as_str()),
                })
                .insert(Header {
                    key: "source",
                    value: Some(source.as_str()),
                });
            let payload = m.payload.as_deref().unwrap_or_default();
            let record = FutureRecord::<(), [u8]>::to(&self.settings.dlq_topic)
                .payload(payload)
                .headers(headers);
            deliveries.push(self.producer.send_result(record).map_err(|(e, _)| e)?);
        }
        let started = Instant::now();
        let results = self.handle.block_on(futures::future::join_all(deliveries));
        tracing::debug!(lines = dead.len(), elapsed = ?started.elapsed(), "dead letters produced");
        for d in results {
            match d {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => anyhow::bail!("dead-letter produce failed: {e}"),
                Err(_) => anyhow::bail!("dead-letter produce cancelled"),
            }
        }
        Ok(())
    }

    /// Starts every owned partition again from its stored offset (after a fenced commit or
    /// a gap): fetched from before it (`fetch_start`, further back by `gap_rewind` after a
    /// refused gap); `write` filters out what comes before the stored offset.
    fn reseek(&self, consumer: &BaseConsumer<Context>, assigned: &Assigned) -> KafkaResult<()> {
        let stored = self
            .handle
            .block_on(self.pg.stored_offsets(&self.settings.group_id, &self.settings.topic))
            .unwrap_or_default();
        let gaps = self.gaps.lock().clone();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut owned = assigned.lock();
        let mut tpl = TopicPartitionList::new();
        for (p, from) in owned.iter_mut() {
            *from = stored.get(p).copied();
            let rewind = gaps
                .get(p)
                .map_or(Some(MAX_BATCH_MESSAGES), |&(_, attempt)| gap_rewind(attempt));
            tpl.add_partition_offset(&self.settings.topic, *p, fetch_start(*from, rewind))?;
        }
        drop(owned);
        // Seek, not assign: calling assign() outside the rebalance callback on a subscribed
        // consumer can abort librdkafka 2.12 (rd_kafka_assignment_partition_stopped assertion).
        let sought = consumer.seek_partitions(tpl, Duration::from_secs(10))?;
        for e in sought.elements() {
            if let Err(err) = e.error() {
                tracing::warn!(partition = e.partition(), error = %err, "seek failed; the next rebalance assigns from Postgres");
            }
        }
        Ok(())
    }
}

/// Turns `ai-logs.raw` messages into enriched records: envelope, line, pattern matches.
pub(crate) struct MessageDecoder {
    decoder: Decoder,
    scanner: Scanner,
}

impl MessageDecoder {
    pub(crate) fn new(limits: DecodeLimits, patterns: &SharedMatcher) -> Self {
        MessageDecoder {
            decoder: Decoder::new(limits),
            scanner: patterns.scanner(),
        }
    }

    /// Errors are (reason, detail) for the dead-letter headers.
    pub(crate) fn decode(&mut self, payload: Option<&[u8]>) -> Result<Enriched, (&'static str, String)> {
        let payload = payload.ok_or(("empty_message", "message has no payload".to_owned()))?;
        let msg: RawMessage = serde_json::from_slice(payload)
            .map_err(|e| ("invalid_envelope", format!("not an ailogs raw message: {e}")))?;
        let labels = Arc::new(msg.labels);
        let raw = RawEntry {
            ts_ns: msg.ts_ns,
            line: &msg.line,
            labels: &labels,
            metadata: &msg.metadata,
        };
        let record = self.decoder.decode(&raw).map_err(|r| (r.reason.as_str(), r.detail))?;
        Ok(Enriched::scanned(record, &mut self.scanner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(partition: i32, offset: i64) -> Pending {
        Pending {
            generation: 0,
            partition,
            offset,
            payload: None,
        }
    }

    #[test]
    fn fetches_start_a_batch_before_the_stored_offset() {
        assert_eq!(fetch_start(Some(5000), Some(1000)), Offset::Offset(4000));
        assert_eq!(fetch_start(Some(700), Some(1000)), Offset::Beginning);
        assert_eq!(fetch_start(None, Some(1000)), Offset::Beginning);
        assert_eq!(fetch_start(Some(5000), None), Offset::Beginning);
        // Each refused gap reaches further back, ending at the log start.
        let rewinds: Vec<_> = (1..=4).map(gap_rewind).collect();
        assert_eq!(rewinds, [Some(1000), Some(8000), None, None]);
    }

    #[test]
    fn batches_must_continue_from_the_stored_offset() {
        let owned: BTreeMap<i32, Option<i64>> = [(0, Some(10)), (1, None)].into();
        let nothing_deleted = |_: i32| Some(0);
        let ok = contiguous(
            vec![m(0, 11), m(1, 5), m(0, 10), m(0, 11), m(1, 6)],
            &owned,
            nothing_deleted,
        )
        .expect("contiguous");
        let order: Vec<(i32, i64)> = ok.iter().map(|m| (m.partition, m.offset)).collect();
        assert_eq!(order, [(0, 10), (0, 11), (1, 5), (1, 6)], "sorted, duplicates dropped");
        assert_eq!(
            contiguous(vec![m(0, 10), m(0, 12)], &owned, nothing_deleted).map(|_| ()),
            Err((0, 11, 12))
        );
        assert_eq!(
            contiguous(vec![m(0, 15)], &owned, nothing_deleted).map(|_| ()),
            Err((0, 10, 15))
        );
        assert_eq!(
            contiguous(vec![m(0, 15)], &owned, |_| None).map(|_| ()),
            Err((0, 10, 15)),
            "unknown: refuse"
        );
        // Retention deleted 10..15: the gap is real.
        assert!(contiguous(vec![m(0, 15)], &owned, |_| Some(15)).is_ok());
    }
}
