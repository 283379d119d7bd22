//! Embedded mode's stand-in for Kafka: a bounded in-process queue between ingest and the
//! pipeline worker threads.
//!
//! The bound is in lines, held as semaphore permits from acceptance until a worker has
//! written the lines to the views. A push that finds no room waits up to `max_wait`, then is
//! refused with 503 so the shipper retries: backpressure, never a silent drop.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ailogs_pipeline::patterns::SharedMatcher;
use ailogs_pipeline::{Core, DecodeLimits, Lane, LineFormat};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ingest::PushBatch;
use crate::internal_events::{InternalEvent, LinesRejected};
use crate::metrics::Metrics;
use crate::store::dead_letters::{DeadLetter, DeadLetters};
use crate::store::memory::MemoryViews;
use crate::stream::Payload;

/// A batch waiting for a worker, holding its share of the queue's capacity.
pub struct Queued {
    pub batch: PushBatch,
    pub endpoint: &'static str,
    pub accepted_at: Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    #[error("ingest queue is full; retry later")]
    Full,
    #[error("ailogs is shutting down")]
    Closed,
}

pub struct IngestQueue {
    tx: Mutex<Option<Sender<Queued>>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    max_wait: Duration,
    metrics: Arc<Metrics>,
}

impl IngestQueue {
    pub fn new(capacity: usize, max_wait: Duration, metrics: Arc<Metrics>) -> (Arc<Self>, Receiver<Queued>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        metrics.queue_capacity_lines.set(capacity as i64);
        let queue = IngestQueue {
            tx: Mutex::new(Some(tx)),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            max_wait,
            metrics,
        };
        (Arc::new(queue), rx)
    }

    /// Lines accepted and not yet in the views.
    pub fn depth(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues a batch, waiting for room up to `max_wait`.
    pub async fn push(&self, batch: PushBatch, endpoint: &'static str) -> Result<(), EnqueueError> {
        let lines = batch.line_count();
        if lines == 0 {
            return Ok(());
        }
        // A batch larger than the whole queue takes all of it rather than waiting forever.
        let wanted = u32::try_from(lines.min(self.capacity)).unwrap_or(u32::MAX);
        let permit =
            match tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_many_owned(wanted)).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(EnqueueError::Closed),
                Err(_) => return Err(EnqueueError::Full),
            };
        let tx = self.tx.lock().clone().ok_or(EnqueueError::Closed)?;
        self.metrics.queue_depth_lines.set(self.depth() as i64);
        tx.send(Queued {
            batch,
            endpoint,
            accepted_at: Instant::now(),
            _permit: Some(permit),
        })
        .map_err(|_| EnqueueError::Closed)
    }

    /// Stops accepting; workers finish what is queued, then exit.
    pub fn close(&self) {
        self.permits.close();
        self.tx.lock().take();
    }
}

/// Everything a worker writes to.
#[derive(Clone)]
pub struct Sinks {
    pub views: Arc<MemoryViews>,
    pub dead_letters: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
    /// Redis hot views and the runtime to drive their client from worker threads.
    pub redis: Option<(crate::store::redis::RedisViews, tokio::runtime::Handle)>,
    /// The live pattern catalog; each worker's lane scans with its own scratch.
    pub patterns: SharedMatcher,
    /// The core's state (templates, anomalies, alerts, correlation), shared by the workers
    /// and locked once per batch; readers use its `CoreReader` instead.
    pub core: Arc<Mutex<Core>>,
    /// Stream subscribers' hub: every processed line and new alert.
    pub hub: Arc<crate::stream::Hub>,
}

/// How often an idle worker lets the core publish to readers.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Starts `n` worker threads; they exit when the queue is closed and drained.
pub fn spawn_workers(
    n: usize,
    rx: Receiver<Queued>,
    sinks: Sinks,
    limits: DecodeLimits,
    queue: Arc<IngestQueue>,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let rx = rx.clone();
            let sinks = sinks.clone();
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("ailogs-pipeline-{i}"))
                .spawn(move || {
                    let mut lane = Lane::new(limits, &sinks.patterns);
                    loop {
                        match rx.recv_timeout(IDLE_TICK) {
                            Ok(queued) => {
                                process(&mut lane, queued, &sinks);
                                sinks.metrics.queue_depth_lines.set(queue.depth() as i64);
                            }
                            // Idle: let the core publish what readers have not seen yet.
                            Err(RecvTimeoutError::Timeout) => sinks.core.lock().tick(crate::clock::now_ns()),
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
                .expect("spawning a pipeline thread")
        })
        .collect()
}

/// Decodes every line of a batch into the views; rejected lines become dead letters.
#[tracing::instrument(name = "pipeline_batch", skip_all, fields(lines = queued.batch.line_count(), endpoint = queued.endpoint))]
pub fn process(lane: &mut Lane, queued: Queued, sinks: &Sinks) {
    let mut records = Vec::with_capacity(queued.batch.line_count());
    let mut formats = [0u64; 3];
    lane.set_now(crate::clock::now_ns());
    for stream in &queued.batch.streams {
        for entry in &stream.entries {
            let raw = entry.raw(&stream.labels);
            match lane.ingest(&raw) {
                Ok(e) => {
                    formats[e.record.format as usize] += 1;
                    records.push(e);
                }
                Err(rejected) => {
                    LinesRejected {
                        endpoint: queued.endpoint,
                        rejection: &rejected,
                    }
                    .emit(&sinks.metrics);
                    sinks.dead_letters.push(DeadLetter::new(
                        crate::clock::now_ns(),
                        queued.endpoint,
                        &rejected,
                        entry.line.clone(),
                        (*stream.labels).clone(),
                    ));
                }
            }
        }
    }
    for (format, n) in [LineFormat::Json, LineFormat::Logfmt, LineFormat::Plain]
        .into_iter()
        .zip(formats)
    {
        if n > 0 {
            let name = match format {
                LineFormat::Json => "json",
                LineFormat::Logfmt => "logfmt",
                LineFormat::Plain => "plain",
            };
            sinks.metrics.lines_decoded.with_label_values(&[name]).inc_by(n);
        }
    }
    let out = sinks.core.lock().process(records, crate::clock::now_ns());
    sinks.metrics.count_outputs(&out);
    if let Some((redis, handle)) = &sinks.redis {
        crate::store::redis::write_blocking(redis, handle, &out.records, &sinks.metrics);
    }
    let alerts = out.alerts;
    let stored = sinks.views.insert(out.records, Instant::now());
    sinks.hub.publish(
        stored
            .into_iter()
            .map(Payload::Log)
            .chain(alerts.into_iter().map(Payload::local_alert)),
    );
    sinks
        .metrics
        .pipeline_latency
        .observe(queued.accepted_at.elapsed().as_secs_f64());
    // Dropping `queued` here returns its permits: the lines are queryable now.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{PushEntry, PushStream};

    fn batch(lines: usize) -> PushBatch {
        let entries = (0..lines)
            .map(|i| PushEntry {
                ts_ns: 1,
                line: format!("l{i}"),
                metadata: vec![],
            })
            .collect();
        PushBatch {
            streams: vec![PushStream {
                labels: ailogs_pipeline::labels_from([("a", "b")]),
                entries,
            }],
        }
    }

    // Paused time: the full queue's wait elapses at once, exactly as configured.
    #[tokio::test(start_paused = true)]
    async fn full_queue_waits_then_refuses_and_frees_on_processing() {
        let metrics = Arc::new(Metrics::new());
        let (queue, rx) = IngestQueue::new(10, Duration::from_secs(5), Arc::clone(&metrics));
        queue.push(batch(6), "test").await.expect("room for 6");
        queue.push(batch(4), "test").await.expect("room for 4 more");
        assert_eq!(queue.depth(), 10);
        let before = tokio::time::Instant::now();
        assert_eq!(queue.push(batch(1), "test").await, Err(EnqueueError::Full));
        assert_eq!(
            before.elapsed(),
            Duration::from_secs(5),
            "waited max_wait, then refused"
        );
        assert_eq!(metrics.queue_depth_lines.get(), 10);

        // A worker finishing a batch gives its room back.
        let first = rx.try_recv().expect("queued batch");
        assert_eq!(first.batch.line_count(), 6);
        drop(first);
        queue.push(batch(5), "test").await.expect("room after processing");
        // A batch larger than the queue takes all of it instead of waiting forever.
        drop(rx.try_recv());
        drop(rx.try_recv());
        queue.push(batch(25), "test").await.expect("oversized batch");
        queue.close();
        assert_eq!(queue.push(batch(1), "test").await, Err(EnqueueError::Closed));
    }
}
