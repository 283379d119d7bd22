//! What a batch sends back to Kafka: dead letters (before its commit, awaited) and the
//! alerts it raised (after its commit, not awaited) for every API replica's stream.

use ailogs_pipeline::anomaly::Alert;
use ailogs_pipeline::stream::StreamLine;
use ailogs_pipeline::{Enriched, Rejection};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::runtime::Handle;

use super::offsets::Pending;
use crate::internal_events::{InternalEvent, LinesRejected, StreamLineUnpublished};
use crate::metrics::Metrics;

pub(super) struct Outputs<'a> {
    pub(super) producer: &'a FutureProducer,
    pub(super) handle: &'a Handle,
    pub(super) metrics: &'a Metrics,
    pub(super) topic: &'a str,
    pub(super) dlq_topic: &'a str,
    pub(super) alerts_topic: &'a str,
    pub(super) lines_topic: &'a str,
}

impl Outputs<'_> {
    /// Produces dead letters (reason, detail and source in headers) and waits for Kafka to
    /// acknowledge them: the batch's offsets must not commit past a line that went nowhere.
    pub(super) fn dead_letter(&self, dead: &[(&Pending, Rejection)]) -> anyhow::Result<()> {
        let mut deliveries = Vec::new();
        for (m, rejection) in dead {
            let reason = rejection.reason.as_str();
            LinesRejected {
                endpoint: "kafka",
                rejection,
            }
            .emit(self.metrics);
            let source = format!("{}/{}/{}", self.topic, m.partition, m.offset);
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reason",
                    value: Some(reason),
                })
                .insert(Header {
                    key: "detail",
                    value: Some(rejection.detail.as_str()),
                })
                .insert(Header {
                    key: "source",
                    value: Some(source.as_str()),
                });
            let payload = m.payload.as_deref().unwrap_or_default();
            let record = FutureRecord::<(), [u8]>::to(self.dlq_topic)
                .payload(payload)
                .headers(headers);
            deliveries.push(self.producer.send_result(record).map_err(|(e, _)| e)?);
        }
        if deliveries.is_empty() {
            return Ok(());
        }
        for d in self.handle.block_on(futures::future::join_all(deliveries)) {
            match d {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => anyhow::bail!("dead-letter produce failed: {e}"),
                Err(_) => anyhow::bail!("dead-letter produce cancelled"),
            }
        }
        Ok(())
    }

    /// Produces the committed lines, enriched and compact (`StreamLine`), for the live stream
    /// of every API replica. Not awaited and not retried: the stream is live only, and a line
    /// lost here is still counted and held in the views.
    pub(super) fn publish_lines(&self, records: &[Enriched]) {
        let mut payload = Vec::with_capacity(256);
        for r in records {
            payload.clear();
            if let Err(e) = serde_json::to_writer(&mut payload, &StreamLine::from(r)) {
                tracing::error!(error = %e, "cannot serialize a stream line");
                continue;
            }
            let record = FutureRecord::<(), [u8]>::to(self.lines_topic).payload(&payload);
            if let Err((e, _)) = self.producer.send_result(record) {
                StreamLineUnpublished { error: &e }.emit(self.metrics);
            }
        }
    }

    /// Produces alerts to `ai-logs.alerts`, which every API replica tails for its stream.
    /// Not awaited: the next batch need not wait for them, and a failure is logged. An
    /// alert raised after the commit is lost if this process dies before Kafka has it (a
    /// re-read batch would not raise it again: its lines are counted).
    pub(super) fn publish_alerts(&self, alerts: &[Alert]) {
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
            let record = FutureRecord::<str, [u8]>::to(self.alerts_topic)
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
}
