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

mod job;
mod offsets;
mod outputs;
pub mod ownership;
mod rebalance;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ailogs_pipeline::patterns::SharedMatcher;
use ailogs_pipeline::{Core, DecodeLimits, Lane};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use tokio::runtime::Handle;

use crate::kafka::client_config;
use crate::metrics::Metrics;
use crate::store::memory::MemoryViews;
use crate::store::postgres::Postgres;
use job::{InFlight, Job};
use offsets::Pending;
use outputs::Outputs;
use rebalance::{Assigned, Context};

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub brokers: String,
    pub group_id: String,
    pub topic: String,
    pub dlq_topic: String,
    /// Where alerts go for every API replica's stream.
    pub alerts_topic: String,
    /// Where enriched lines go for every API replica's stream.
    pub lines_topic: String,
    pub session_timeout_ms: u32,
    pub fetch_wait_ms: u32,
    /// Reporting and checking partition owners.
    pub owners: ownership::OwnerSettings,
    /// A batch is written when it has this many lines...
    pub batch_max_lines: usize,
    /// ...or when its oldest line has waited this long.
    pub batch_max_wait: Duration,
    pub limits: DecodeLimits,
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Longest a poll waits for a message.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// While a batch commits, each turn of the loop waits this long on the commit before it
/// polls Kafka again (which then does not wait).
const IN_FLIGHT_WAIT: Duration = Duration::from_millis(2);

/// Where processed records go besides Postgres: the serving process's in-memory views, and
/// the Redis hot views every API replica reads.
#[derive(Clone)]
pub struct RecordSink {
    pub memory: Option<Arc<MemoryViews>>,
    pub redis: Option<crate::store::redis::RedisViews>,
    /// The live pattern catalog every record is scanned with.
    pub patterns: SharedMatcher,
    /// The core, built durable (`CoreConfig::durable`); its reader serves the API in a
    /// serving process.
    pub core: Arc<Mutex<Core>>,
}

/// Runs the consumer on the current thread until `stop` is set. Call from a dedicated
/// thread (not a tokio worker): it blocks.
pub fn run(
    settings: ConsumerSettings,
    pg: Postgres,
    handle: Handle,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    views: RecordSink,
) -> anyhow::Result<()> {
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
        .set("fetch.wait.max.ms", settings.fetch_wait_ms.to_string())
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
    let mut lane = Lane::new(settings.limits, &views.patterns);
    let mut pending: Vec<Pending> = Vec::new();
    let mut oldest: Option<Instant> = None;
    tracing::info!(group = %settings.group_id, topic = %settings.topic, "consumer started");

    let mut job = Job {
        settings: &settings,
        pg: &pg,
        handle: &handle,
        outputs: Outputs {
            producer: &producer,
            handle: &handle,
            metrics: &metrics,
            topic: &settings.topic,
            dlq_topic: &settings.dlq_topic,
            alerts_topic: &settings.alerts_topic,
            lines_topic: &settings.lines_topic,
        },
        metrics: &metrics,
        views: &views,
        generation: &generation,
        gaps: Mutex::new(HashMap::new()),
        in_flight: None,
    };
    let rejoin = Arc::new(AtomicBool::new(false));
    // The check stops with this loop however it ends: a consumer that stopped must not go
    // on reporting that it owns partitions.
    let owners_stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let owners = ownership::Checker::new(settings.owners, &settings.group_id, &settings.topic).spawn(
        &settings.brokers,
        ownership::CheckerHandles {
            assigned: Arc::clone(&assigned),
            pg: pg.clone(),
            handle: handle.clone(),
            metrics: Arc::clone(&metrics),
            stop: Arc::clone(&owners_stop.0),
            rejoin: Arc::clone(&rejoin),
        },
    )?;
    let mut status_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if rejoin.swap(false, Ordering::Relaxed) {
            consumer.unsubscribe();
            consumer.subscribe(&[&settings.topic])?;
        }
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
        // A committed batch's alerts go out at once, not with the next batch.
        if job.in_flight.as_ref().is_some_and(InFlight::is_finished) {
            job.finish(&consumer, &assigned, &stop)?;
        }
        // Wake in time for a batch that comes due; with a commit in flight, poll without
        // waiting, and when nothing is there wait on the commit instead (woken the moment
        // it ends).
        let wait = oldest.map_or(POLL_WAIT, |t| {
            settings.batch_max_wait.saturating_sub(t.elapsed()).min(POLL_WAIT)
        });
        let in_flight = job.in_flight.is_some();
        let polled = consumer.poll(if in_flight { Duration::ZERO } else { wait });
        if polled.is_none()
            && let Some(f) = job.in_flight.as_mut()
            && f.wait(&handle, IN_FLIGHT_WAIT.min(wait))
        {
            job.finish(&consumer, &assigned, &stop)?;
        }
        if let Some(result) = polled {
            match result {
                Ok(m) => {
                    let owned = assigned.lock().contains_key(&m.partition());
                    if owned {
                        pending.push(Pending {
                            generation: generation.load(Ordering::SeqCst),
                            partition: m.partition(),
                            offset: m.offset(),
                            payload: m.payload().map(<[u8]>::to_vec),
                            created_ms: m.timestamp().to_millis(),
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
            job.write(&consumer, &assigned, &mut lane, batch, &stop)?;
        } else if pending.is_empty() {
            // Idle: let the core publish what readers have not seen yet.
            views.core.lock().tick(crate::clock::now_ns());
        }
    }
    if !pending.is_empty() {
        job.write(&consumer, &assigned, &mut lane, pending, &stop)?;
    }
    job.finish(&consumer, &assigned, &stop)?;
    drop(owners_stop);
    owners.thread().unpark();
    if owners.join().is_err() {
        tracing::error!("the partition owners check panicked");
    }
    tracing::info!("consumer stopped");
    Ok(())
}
