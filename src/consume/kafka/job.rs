//! One batch through the core into Postgres, exactly once: offsets checked, lines decoded
//! (undecodable ones dead-lettered), deltas and offsets committed in one transaction fenced
//! on the stored offsets, then the batch observed (alerts) and written to the hot views.
//!
//! Commits overlap the next batch: a batch's transaction runs on the runtime while this
//! thread polls, decodes and prepares the next one, which starts from the offsets the
//! transaction in flight will store. One transaction is in flight at most; a batch is
//! handed over only once the one before it committed, so offsets advance in order and
//! fencing stays exact (a batch prepared on top of a fenced one is aborted with it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ailogs_pipeline::usage::SourcePos;
use ailogs_pipeline::{Lane, Prepared};
use parking_lot::Mutex;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::offsets::{GAP_ERROR_AFTER, Pending, contiguous, fetch_start, gap_rewind, owned_only};
use super::outputs::Outputs;
use super::rebalance::{Assigned, Context};
use super::{ConsumerSettings, RecordSink};
use crate::backoff::Backoff;
use crate::internal_events::{BatchCommit, InternalEvent};
use crate::kafka::MAX_BATCH_MESSAGES;
use crate::metrics::Metrics;
use crate::store::batch;
use crate::store::postgres::{CommitError, PartitionCommit, Postgres};

pub(super) struct Job<'a> {
    pub(super) settings: &'a ConsumerSettings,
    pub(super) pg: &'a Postgres,
    pub(super) handle: &'a Handle,
    pub(super) outputs: Outputs<'a>,
    pub(super) metrics: &'a Metrics,
    pub(super) views: &'a RecordSink,
    pub(super) generation: &'a AtomicU64,
    /// (partition, offset) where a gap was last refused, and how many times in a row.
    pub(super) gaps: Mutex<HashMap<i32, (i64, u32)>>,
    pub(super) in_flight: Option<InFlight>,
}

type Committed = (Result<(), CommitError>, Prepared);

/// A batch whose transaction is running.
pub(super) struct InFlight {
    task: JoinHandle<Committed>,
    /// The task's outcome once `wait` saw it.
    done: Option<Result<Committed, tokio::task::JoinError>>,
    commits: Vec<PartitionCommit>,
    /// Per partition, the offset after the batch: where the next batch starts.
    next: BTreeMap<i32, i64>,
    lines: usize,
    started: Instant,
    /// The batch's oldest message's creation time (Unix ms): its lines are queryable once
    /// committed, so that is when the pipeline latency ends.
    oldest_created_ms: Option<i64>,
}

impl InFlight {
    /// Whether the transaction has ended (cheap: no waiting, no runtime entered).
    pub(super) fn is_finished(&self) -> bool {
        self.done.is_some() || self.task.is_finished()
    }

    /// Waits up to `timeout` for the transaction (woken the moment it ends); true when it
    /// has ended.
    pub(super) fn wait(&mut self, handle: &Handle, timeout: Duration) -> bool {
        if self.done.is_none()
            // The timer is made inside the block: it needs the runtime's context.
            && let Ok(result) = handle.block_on(async { tokio::time::timeout(timeout, &mut self.task).await })
        {
            self.done = Some(result);
        }
        self.done.is_some()
    }
}

impl Job<'_> {
    /// Decodes a batch, dead-letters what cannot be decoded, prepares it, waits for the
    /// batch in flight, and starts this one's commit.
    #[tracing::instrument(name = "consumer_batch", skip_all, fields(messages = batch.len()))]
    pub(super) fn write(
        &mut self,
        consumer: &BaseConsumer<Context>,
        assigned: &Assigned,
        lane: &mut Lane,
        batch: Vec<Pending>,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        let topic = &self.settings.topic;
        // Where each partition starts: after the batch in flight, else as stored.
        let mut owned = assigned.lock().clone();
        if let Some(f) = &self.in_flight {
            for (p, n) in &f.next {
                if let Some(from) = owned.get_mut(p) {
                    *from = Some(*n);
                }
            }
        }
        let batch = owned_only(batch, &owned);
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
                self.finish(consumer, assigned, stop)?;
                self.refuse_gap(partition, expected, got);
                self.reseek(consumer, assigned)?;
                return Ok(());
            }
        };
        let mut records = Vec::with_capacity(batch.len());
        let mut sources = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        lane.set_now(crate::clock::now_ns());
        for m in &batch {
            next.insert(m.partition, m.offset + 1);
            match lane.ingest_message(m.payload.as_deref()) {
                Ok(e) => {
                    records.push(e);
                    sources.push(SourcePos {
                        topic: topic.clone(),
                        partition: m.partition,
                        offset: m.offset,
                    });
                }
                Err(rejection) => dead.push((m, rejection)),
            }
        }
        self.outputs.dead_letter(&dead)?;
        // Templates are mined before the commit so that `log_templates` is written with it.
        let prepared = self.views.core.lock().prepare(records, sources);
        let commits: Vec<PartitionCommit> = next
            .iter()
            .map(|(&p, &n)| PartitionCommit {
                topic: topic.clone(),
                partition: p,
                expected: owned.get(&p).copied().flatten(),
                next: n,
            })
            .collect();
        if !self.finish(consumer, assigned, stop)? {
            // The batch before it was fenced: this one started where that one would have
            // ended, so it would be fenced too. Everything is read again from Postgres.
            self.views.core.lock().abort(prepared);
            return Ok(());
        }
        let pg = self.pg.clone();
        let group = self.settings.group_id.clone();
        let in_flight_commits = commits.clone();
        let task = self.handle.spawn(async move {
            let result = batch::commit(&pg, &group, &in_flight_commits, &prepared.usage, &prepared.insights).await;
            (result, prepared)
        });
        self.in_flight = Some(InFlight {
            task,
            done: None,
            commits,
            next,
            lines: batch.len(),
            started: Instant::now(),
            oldest_created_ms: batch.iter().filter_map(|m| m.created_ms).min(),
        });
        Ok(())
    }

    /// Waits for the batch in flight, if any, and completes it: on success the offsets
    /// advance and the batch is observed and published; fenced, it is aborted and every
    /// partition re-read from Postgres (false); while Postgres is down it is retried.
    #[tracing::instrument(name = "consumer_commit", skip_all)]
    pub(super) fn finish(
        &mut self,
        consumer: &BaseConsumer<Context>,
        assigned: &Assigned,
        stop: &AtomicBool,
    ) -> anyhow::Result<bool> {
        let Some(f) = self.in_flight.take() else {
            return Ok(true);
        };
        let outcome = match f.done {
            Some(done) => done,
            None => self.handle.block_on(f.task),
        };
        let (result, prepared) = outcome.map_err(|e| anyhow::anyhow!("batch commit task failed: {e}"))?;
        let committed = match result {
            Ok(()) => Some(prepared),
            Err(CommitError::Fenced { topic, partition }) => {
                self.fenced(consumer, assigned, &topic, partition, prepared)?;
                None
            }
            Err(CommitError::Db(e)) => {
                tracing::debug!(error = %e, "batch commit failed; retrying");
                self.commit(consumer, assigned, &f.commits, prepared, stop)?
            }
        };
        let Some(prepared) = committed else {
            return Ok(false);
        };
        {
            let mut owned_now = assigned.lock();
            for (p, n) in &f.next {
                if let Some(from) = owned_now.get_mut(p) {
                    *from = Some(*n);
                }
            }
        }
        BatchCommit::Committed {
            lines: f.lines,
            elapsed: f.started.elapsed(),
        }
        .emit(self.metrics);
        // After the commit: a batch that is re-read must not count twice in the baselines.
        let out = self.views.core.lock().commit(prepared, crate::clock::now_ns());
        self.metrics.count_outputs(&out);
        self.outputs.publish_alerts(&out.alerts);
        self.outputs.publish_lines(&out.records);
        if let Some(redis) = &self.views.redis {
            crate::store::redis::write_blocking(redis, self.handle, &out.records, self.metrics);
        }
        if let Some(views) = &self.views.memory {
            views.insert(out.records, Instant::now());
        }
        if let Some(created_ms) = f.oldest_created_ms {
            // Across hosts this includes their clock skew; negative skew counts as zero.
            let ms = (crate::clock::now_ns() / 1_000_000 - created_ms).max(0);
            self.metrics.pipeline_latency.observe(ms as f64 / 1000.0);
        }
        Ok(true)
    }

    /// Someone else owns this partition's progress now: drop the batch; the next rebalance
    /// (or this re-read) decides where to go on.
    fn fenced(
        &self,
        consumer: &BaseConsumer<Context>,
        assigned: &Assigned,
        topic: &str,
        partition: i32,
        prepared: Prepared,
    ) -> KafkaResult<()> {
        BatchCommit::Fenced { topic, partition }.emit(self.metrics);
        self.views.core.lock().abort(prepared);
        self.reseek(consumer, assigned)
    }

    /// Commits the batch's deltas and offsets now, retrying (consumption paused) while
    /// Postgres is down. None: fenced, the batch was aborted and the partitions re-sought.
    fn commit(
        &self,
        consumer: &BaseConsumer<Context>,
        assigned: &Assigned,
        commits: &[PartitionCommit],
        prepared: Prepared,
        stop: &AtomicBool,
    ) -> anyhow::Result<Option<Prepared>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut paused = false;
        let resume = |paused: bool| {
            if paused && let Ok(tpl) = consumer.assignment() {
                let _ = consumer.resume(&tpl);
            }
        };
        loop {
            let result = self.handle.block_on(batch::commit(
                self.pg,
                &self.settings.group_id,
                commits,
                &prepared.usage,
                &prepared.insights,
            ));
            match result {
                Ok(()) => {
                    if paused {
                        tracing::info!("postgres is back; resuming");
                    }
                    resume(paused);
                    return Ok(Some(prepared));
                }
                Err(CommitError::Fenced { topic, partition }) => {
                    resume(paused);
                    self.fenced(consumer, assigned, &topic, partition, prepared)?;
                    return Ok(None);
                }
                Err(CommitError::Db(e)) => {
                    BatchCommit::Retried {
                        error: &e,
                        first: !paused,
                    }
                    .emit(self.metrics);
                    if !paused {
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
                    let until = Instant::now() + backoff.next_delay();
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }

    /// A message is missing between the stored offset and this batch: committing would
    /// skip it. Counts the attempt so each re-read reaches further back.
    fn refuse_gap(&self, partition: i32, expected: i64, got: i64) {
        let mut gaps = self.gaps.lock();
        let seen = gaps.entry(partition).or_insert((expected, 0));
        *seen = if seen.0 == expected {
            (expected, seen.1 + 1)
        } else {
            (expected, 1)
        };
        let attempt = seen.1;
        drop(gaps);
        BatchCommit::Gap {
            partition,
            expected,
            got,
            attempt,
            give_up_after: GAP_ERROR_AFTER,
        }
        .emit(self.metrics);
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
