//! Ingest into Kafka: every accepted line becomes one message on `ai-logs.raw`, keyed by
//! its correlation id (else a hash of its stream labels) so a request's lines share a
//! partition. The push is answered only after Kafka acknowledged every message (acks=all,
//! idempotent producer).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use ailogs_pipeline::{DecodeLimits, Decoder, RawEntry};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use super::PushBatch;
use crate::kafka::{RawMessage, client_config};

pub struct KafkaIngest {
    producer: FutureProducer,
    topic: String,
    limits: DecodeLimits,
}

/// A message ready to send.
struct Prepared {
    key: String,
    payload: Vec<u8>,
    ts_ms: i64,
}

impl KafkaIngest {
    pub fn new(brokers: &str, topic: &str, limits: DecodeLimits) -> Result<Self, KafkaError> {
        let producer: FutureProducer = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(KafkaIngest {
            producer,
            topic: topic.to_owned(),
            limits,
        })
    }

    /// Produces every line of the batch and waits for all acknowledgements.
    pub async fn produce(&self, batch: PushBatch) -> Result<usize, KafkaError> {
        let limits = self.limits;
        let prepared = tokio::task::spawn_blocking(move || prepare(&batch, limits))
            .await
            .map_err(|_| KafkaError::Canceled)?;
        let mut deliveries = Vec::with_capacity(prepared.len());
        for m in &prepared {
            let mut record = FutureRecord::to(&self.topic)
                .key(&m.key)
                .payload(&m.payload)
                .timestamp(m.ts_ms);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // The local queue is full: let librdkafka send, then retry.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        self.producer.poll(Timeout::After(Duration::from_millis(10)));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        }
        let n = deliveries.len();
        for delivery in futures::future::join_all(deliveries).await {
            match delivery {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e),
                Err(_) => return Err(KafkaError::Canceled),
            }
        }
        Ok(n)
    }

    /// Waits for in-flight messages (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(Timeout::After(timeout))
    }
}

fn prepare(batch: &PushBatch, limits: DecodeLimits) -> Vec<Prepared> {
    let mut decoder = Decoder::new(limits);
    let mut out = Vec::with_capacity(batch.line_count());
    for stream in &batch.streams {
        let labels_key = labels_hash(&stream.labels);
        for entry in &stream.entries {
            let raw = RawEntry {
                ts_ns: entry.ts_ns,
                line: &entry.line,
                labels: &stream.labels,
                metadata: &entry.metadata,
            };
            // Undecodable lines still go to Kafka; the consumer dead-letters them with the reason.
            let key = decoder
                .decode(&raw)
                .ok()
                .and_then(|r| r.correlation_id)
                .unwrap_or_else(|| labels_key.clone());
            let message = RawMessage {
                ts_ns: entry.ts_ns,
                labels: (*stream.labels).clone(),
                line: entry.line.clone(),
                metadata: entry.metadata.clone(),
            };
            let payload = serde_json::to_vec(&message).expect("a RawMessage always serializes");
            out.push(Prepared {
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
