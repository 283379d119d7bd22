//! With Kafka, every API replica feeds its hub from the topics instead of from a consumer
//! in its own process: alerts from `ai-logs.alerts` (one partition, so one order of alerts
//! on every replica, each carrying its offset) and live lines from `ai-logs.lines`, which the
//! consumers publish already enriched (a replica decodes and matches nothing). No consumer
//! group: each replica reads every partition, and commits nothing.
//!
//! At start the alerts partition is read from `retain_alerts` before its end, so a client
//! can resume by offset right after a replica (re)starts; those alerts are retained, not
//! sent live. Lines start at the end: they are live only.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ailogs_pipeline::anomaly::Alert;
use ailogs_pipeline::stream::StreamLine;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{Hub, Payload};
use crate::backoff::Backoff;
use crate::kafka::{client_config, topic_partitions};

#[derive(Debug, Clone)]
pub struct TailSettings {
    pub brokers: String,
    pub alerts_topic: String,
    pub lines_topic: String,
    /// Alerts read back at start.
    pub retain_alerts: usize,
}

/// Most messages published to the hub at once (one lock, one id range).
const MAX_BATCH: usize = 512;
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the tail on its own thread until `stop` is set.
/// `reading` is true while the tail is assigned and polling (for /health).
pub fn spawn(settings: TailSettings, hub: Arc<Hub>, stop: Arc<AtomicBool>, reading: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("ailogs-stream-tail".into())
        .spawn(move || {
            let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
            while !stop.load(Ordering::Relaxed) {
                let result = run(&settings, &hub, &stop, &reading);
                reading.store(false, Ordering::Relaxed);
                match result {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "stream tail of kafka failed; retrying");
                        std::thread::sleep(backoff.next_delay());
                    }
                }
            }
        })
        .expect("spawning the stream tail thread")
}

fn run(settings: &TailSettings, hub: &Hub, stop: &AtomicBool, reading: &AtomicBool) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(&settings.brokers)
        // Required by the client; with `assign` (no `subscribe`) no group is joined.
        .set("group.id", "ailogs-stream-tail")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    // Alerts before these offsets (per partition) were raised before this replica started:
    // retained for resuming clients, not sent live.
    let mut history: HashMap<i32, i64> = HashMap::new();
    for p in topic_partitions(&consumer, &settings.alerts_topic, METADATA_TIMEOUT)? {
        let (low, high) = consumer.fetch_watermarks(&settings.alerts_topic, p, METADATA_TIMEOUT)?;
        let from = (high - settings.retain_alerts as i64).max(low);
        tpl.add_partition_offset(&settings.alerts_topic, p, Offset::Offset(from))?;
        history.insert(p, high);
    }
    for p in topic_partitions(&consumer, &settings.lines_topic, METADATA_TIMEOUT)? {
        tpl.add_partition_offset(&settings.lines_topic, p, Offset::End)?;
    }
    consumer.assign(&tpl)?;
    reading.store(true, Ordering::Relaxed);
    tracing::info!(alerts = %settings.alerts_topic, lines = %settings.lines_topic, "stream tails kafka");
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut past = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(first) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        // Take what is already fetched too, and publish it in one go.
        let mut next = Some(first);
        while let Some(m) = next {
            match m {
                Ok(m) => {
                    let old = m.topic() == settings.alerts_topic
                        && history.get(&m.partition()).is_some_and(|&high| m.offset() < high);
                    let into = if old { &mut past } else { &mut batch };
                    into.extend(payload(settings, &m));
                }
                Err(e) => tracing::warn!(error = %e, "stream tail: kafka error"),
            }
            next = if batch.len() + past.len() < MAX_BATCH {
                consumer.poll(Duration::ZERO)
            } else {
                None
            };
        }
        hub.retain(past.drain(..));
        hub.publish(batch.drain(..));
    }
    Ok(())
}

fn payload(settings: &TailSettings, m: &BorrowedMessage<'_>) -> Option<Payload> {
    if m.topic() == settings.alerts_topic {
        match serde_json::from_slice::<Alert>(m.payload().unwrap_or_default()) {
            Ok(alert) => Some(Payload::Alert {
                alert,
                offset: Some(m.offset()),
            }),
            Err(e) => {
                tracing::warn!(offset = m.offset(), error = %e, "not an alert on the alerts topic; skipped");
                None
            }
        }
    } else {
        match serde_json::from_slice::<StreamLine>(m.payload().unwrap_or_default()) {
            Ok(line) => Some(Payload::Line(Arc::new(line))),
            Err(e) => {
                tracing::warn!(offset = m.offset(), error = %e, "not a stream line on the lines topic; skipped");
                None
            }
        }
    }
}
