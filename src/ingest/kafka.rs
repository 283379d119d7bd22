//! Ingest into Kafka: every accepted line becomes one message on `ai-logs.raw`, keyed by
//! its correlation id (else a hash of its stream labels) so a request's lines share a
//! partition. A push is answered 204 only once each of its messages is either acknowledged
//! by Kafka (acks=all, idempotent producer) or fsynced to the local spool. While the spool
//! holds anything, new pushes go to it too, so replay keeps the order lines arrived in.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ailogs_pipeline::DecodeLimits;
use ailogs_pipeline::partition_key::KeyExtractor;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::PushBatch;
use super::spool::{Spool, SpoolError, SpooledMessage};
use crate::kafka::{RawMessage, client_config};
use crate::metrics::Metrics;

pub struct KafkaIngest {
    producer: FutureProducer,
    topic: String,
    limits: DecodeLimits,
    spool: Option<Arc<Spool>>,
    /// False after a delivery failed, until a metadata request succeeds again.
    reachable: AtomicBool,
    metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka did not acknowledge the lines and no spool is configured: {0}")]
    Kafka(KafkaError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// How a push's lines were made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Produced {
    pub acknowledged: usize,
    pub spooled: usize,
}

impl KafkaIngest {
    pub fn new(
        brokers: &str,
        topic: &str,
        limits: DecodeLimits,
        spool: Option<Arc<Spool>>,
        metrics: Arc<Metrics>,
        delivery_timeout_ms: u32,
    ) -> Result<Self, KafkaError> {
        let producer: FutureProducer = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("batch.num.messages", crate::kafka::MAX_BATCH_MESSAGES.to_string())
            .set("message.timeout.ms", delivery_timeout_ms.to_string())
            .create()?;
        if let Some(spool) = &spool {
            metrics.spool_bytes.set(spool.used() as i64);
        }
        Ok(KafkaIngest {
            producer,
            topic: topic.to_owned(),
            limits,
            spool,
            reachable: AtomicBool::new(true),
            metrics,
        })
    }

    /// Makes every line of the batch durable: acknowledged by Kafka, or spooled.
    pub async fn produce(&self, batch: PushBatch) -> Result<Produced, IngestError> {
        let limits = self.limits;
        let prepared = tokio::task::spawn_blocking(move || prepare(&batch, limits))
            .await
            .map_err(|_| IngestError::Kafka(KafkaError::Canceled))?;
        let backlog = self.spool.as_ref().is_some_and(|s| s.used() > 0);
        if (backlog || !self.reachable.load(Ordering::Relaxed)) && self.spool.is_some() {
            let spooled = self.spool_messages(&prepared).await?;
            return Ok(Produced {
                acknowledged: 0,
                spooled,
            });
        }
        let failed = self.send_all(&prepared).await;
        if failed.is_empty() {
            return Ok(Produced {
                acknowledged: prepared.len(),
                spooled: 0,
            });
        }
        self.reachable.store(false, Ordering::Relaxed);
        let (first_error, failed): (KafkaError, Vec<SpooledMessage>) = {
            let err = failed[0].1.clone();
            (err, failed.into_iter().map(|(i, _)| prepared[i].clone()).collect())
        };
        if self.spool.is_none() {
            return Err(IngestError::Kafka(first_error));
        }
        tracing::warn!(error = %first_error, lines = failed.len(), "kafka did not acknowledge; spooling");
        let spooled = self.spool_messages(&failed).await?;
        Ok(Produced {
            acknowledged: prepared.len() - spooled,
            spooled,
        })
    }

    async fn spool_messages(&self, messages: &[SpooledMessage]) -> Result<usize, IngestError> {
        let Some(spool) = self.spool.clone() else {
            return Err(IngestError::Kafka(KafkaError::Canceled));
        };
        let owned = messages.to_vec();
        let n = owned.len();
        // fsync: blocking IO.
        let appended = tokio::task::spawn_blocking(move || spool.append(&owned).map(|()| spool.used()))
            .await
            .map_err(|_| IngestError::Kafka(KafkaError::Canceled))?;
        let used = appended?;
        self.metrics.spool_bytes.set(used as i64);
        self.metrics.spool_lines.inc_by(n as u64);
        Ok(n)
    }

    /// Sends every message; returns the indexes (and errors) of those Kafka did not take.
    async fn send_all(&self, messages: &[SpooledMessage]) -> Vec<(usize, KafkaError)> {
        let mut deliveries = Vec::with_capacity(messages.len());
        let mut failed = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut record = FutureRecord::to(&self.topic)
                .key(&m.key)
                .payload(&m.payload)
                .timestamp(m.ts_ms);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push((i, delivery));
                        break;
                    }
                    // The local queue is full: the producer's own thread is sending; yield
                    // to the runtime (never block it) and retry.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        failed.push((i, e));
                        break;
                    }
                }
            }
        }
        let (indexes, futures): (Vec<usize>, Vec<_>) = deliveries.into_iter().unzip();
        for (i, delivery) in indexes.into_iter().zip(futures::future::join_all(futures).await) {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => failed.push((i, e)),
                Err(_) => failed.push((i, KafkaError::Canceled)),
            }
        }
        failed.sort_by_key(|(i, _)| *i);
        failed
    }

    /// Replays the spool, oldest segment first, whenever Kafka answers; runs until aborted.
    pub async fn replay_spool(self: Arc<Self>) {
        let Some(spool) = self.spool.clone() else { return };
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if spool.used() == 0 && self.reachable.load(Ordering::Relaxed) {
                continue;
            }
            if !self.probe().await {
                continue;
            }
            self.reachable.store(true, Ordering::Relaxed);
            let reader = Arc::clone(&spool);
            let Ok(Ok(Some((seq, batches)))) = tokio::task::spawn_blocking(move || reader.oldest()).await else {
                continue;
            };
            let messages: Vec<SpooledMessage> = batches.into_iter().flatten().collect();
            let failed = self.send_all(&messages).await;
            if !failed.is_empty() {
                // Kafka went away again; the whole segment is tried again later.
                tracing::warn!(failed = failed.len(), "spool replay interrupted");
                self.reachable.store(false, Ordering::Relaxed);
                continue;
            }
            if let Err(e) = spool.remove(seq) {
                tracing::error!(error = %e, "cannot delete a replayed spool segment");
                continue;
            }
            self.metrics.spool_replayed_lines.inc_by(messages.len() as u64);
            self.metrics.spool_bytes.set(spool.used() as i64);
            tracing::info!(
                lines = messages.len(),
                left_bytes = spool.used(),
                "spool segment replayed into kafka"
            );
        }
    }

    /// Whether a broker answers a metadata request.
    async fn probe(&self) -> bool {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Waits for in-flight messages (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(timeout))
    }
}

fn prepare(batch: &PushBatch, limits: DecodeLimits) -> Vec<SpooledMessage> {
    let mut keys = KeyExtractor::new(limits);
    let mut out = Vec::with_capacity(batch.line_count());
    for stream in &batch.streams {
        let labels_key = labels_hash(&stream.labels);
        for entry in &stream.entries {
            let raw = entry.raw(&stream.labels);
            // Undecodable lines still go to Kafka; the consumer dead-letters them with the reason.
            let key = keys.correlation_id(&raw).unwrap_or_else(|| labels_key.clone());
            let message = RawMessage {
                ts_ns: entry.ts_ns,
                labels: (*stream.labels).clone(),
                line: entry.line.clone(),
                metadata: entry.metadata.clone(),
            };
            let payload = serde_json::to_string(&message).expect("a RawMessage always serializes");
            out.push(SpooledMessage {
                key,
                payload,
                ts_ms: entry.ts_ns.div_euclid(1_000_000),
            });
        }
    }
    out
}

fn labels_hash(labels: &ailogs_pipeline::Labels) -> String {
    let mut h = rustc_hash::FxHasher::default();
    labels.hash(&mut h);
    format!("labels-{:016x}", h.finish())
}
