//! The rebalance hook: on assignment, partitions start from the offsets stored in Postgres
//! (blocking inside librdkafka's poll, before any message of theirs is handed out).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::runtime::Handle;

use super::offsets::fetch_start;
use crate::backoff::Backoff;
use crate::kafka::MAX_BATCH_MESSAGES;
use crate::store::postgres::Postgres;

/// Stored offsets of the partitions this consumer owns: where its next batch must start.
pub(super) type Assigned = Arc<Mutex<BTreeMap<i32, Option<i64>>>>;

pub(super) struct Context {
    pub(super) pg: Postgres,
    pub(super) handle: Handle,
    pub(super) group: String,
    pub(super) topic: String,
    pub(super) assigned: Assigned,
    /// Bumped at every assignment change and re-seek: buffered messages of an older
    /// generation will be fetched again from the stored offsets, so they are dropped.
    pub(super) generation: Arc<AtomicU64>,
    pub(super) stop: Arc<AtomicBool>,
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
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.handle.block_on(self.pg.stored_offsets(&self.group, &self.topic)) {
                Ok(offsets) => return offsets,
                Err(e) if !self.stop.load(Ordering::Relaxed) => {
                    tracing::warn!(error = %e, "cannot read stored offsets; retrying");
                    std::thread::sleep(backoff.next_delay());
                }
                Err(_) => return HashMap::new(),
            }
        }
    }
}
