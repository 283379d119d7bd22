//! Partitions nobody consumes. Every consumer reports what it owns to Postgres
//! (`partition_owners`, with each partition's end as it sees it) and reads back the whole
//! group: a partition with lag whose owner stopped reporting is *unowned*; one whose owner
//! reports but whose stored offset has not moved is *stalled*. Both are counted in
//! `ailogs_consumer_partitions`, logged when they change, and shown by `/health`; a consumer
//! that sees partitions unowned for long re-joins the group so the broker reassigns them
//! (a broker that keeps dead members, as tansu 0.6 was seen to, never does on its own).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;
use tokio::runtime::Handle;

use super::rebalance::Assigned;
use crate::config::KafkaConfig;
use crate::kafka::{client_config, topic_partitions};
use crate::metrics::Metrics;
use crate::store::postgres::{PartitionRow, Postgres};

#[derive(Debug, Clone, Copy)]
pub struct OwnerSettings {
    pub report_every: Duration,
    pub bounds: Bounds,
    pub rejoin_after: Duration,
}

impl From<&KafkaConfig> for OwnerSettings {
    fn from(k: &KafkaConfig) -> Self {
        OwnerSettings {
            report_every: Duration::from_millis(k.owner_report_ms.max(100)),
            bounds: Bounds {
                owner_stale: Duration::from_millis(k.owner_stale_ms),
                stall: Duration::from_millis(k.stall_after_ms),
            },
            // Never before a broker that evicts dead members has had its chance.
            rejoin_after: Duration::from_millis(k.rejoin_after_ms.max(2 * u64::from(k.session_timeout_ms))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    /// Nothing left to consume.
    CaughtUp,
    /// Lag, and an owner that reports and commits.
    Consuming,
    /// Lag, and no owner reporting within the staleness bound.
    Unowned,
    /// Lag, an owner reporting, but its stored offset has not moved within the stall bound.
    Stalled,
}

impl PartitionState {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionState::CaughtUp => "caught_up",
            PartitionState::Consuming => "consuming",
            PartitionState::Unowned => "unowned",
            PartitionState::Stalled => "stalled",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// An owner that has not reported for this long is gone.
    pub owner_stale: Duration,
    /// A stored offset that has not moved for this long (with lag) is stalled.
    pub stall: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub partition: i32,
    pub state: PartitionState,
    pub lag: i64,
    pub owner: Option<String>,
    pub heartbeat_age_s: Option<f64>,
}

pub fn classify(row: &PartitionRow, bounds: Bounds) -> PartitionReport {
    let lag = (row.high_watermark - row.stored_offset.unwrap_or(0)).max(0);
    let fresh = row
        .heartbeat_age_s
        .is_some_and(|age| age <= bounds.owner_stale.as_secs_f64());
    let state = if lag == 0 {
        PartitionState::CaughtUp
    } else if row.owner.is_none() || !fresh {
        PartitionState::Unowned
    } else if row.progressed_age_s.is_some_and(|age| age > bounds.stall.as_secs_f64()) {
        PartitionState::Stalled
    } else {
        PartitionState::Consuming
    };
    PartitionReport {
        partition: row.partition,
        state,
        lag,
        owner: row.owner.clone(),
        heartbeat_age_s: row.heartbeat_age_s,
    }
}

/// Counts by state, every state present (zero included) so gauges reset.
pub fn counts(reports: &[PartitionReport]) -> BTreeMap<PartitionState, usize> {
    let mut c: BTreeMap<PartitionState, usize> = [
        PartitionState::CaughtUp,
        PartitionState::Consuming,
        PartitionState::Unowned,
        PartitionState::Stalled,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for r in reports {
        *c.entry(r.state).or_default() += 1;
    }
    c
}

/// Decides when a consumer re-joins the group: once partitions have stayed unowned for
/// `after` (longer than a session timeout, so a broker that evicts dead members has had its
/// chance), then again only after twice as long each time (a re-join revokes this consumer's
/// partitions until the group settles, so it must not repeat faster than the group can).
#[derive(Debug)]
pub struct Rejoin {
    after: Duration,
    wait: Duration,
    unowned_since: Option<Instant>,
    last: Option<Instant>,
}

/// The longest wait between re-joins.
const MAX_REJOIN_WAIT: Duration = Duration::from_secs(600);

impl Rejoin {
    pub fn new(after: Duration) -> Self {
        Rejoin {
            after,
            wait: after,
            unowned_since: None,
            last: None,
        }
    }

    /// Feeds one check; true when the consumer should re-join now.
    pub fn observe(&mut self, unowned: usize, now: Instant) -> bool {
        if unowned == 0 {
            self.unowned_since = None;
            self.wait = self.after;
            return false;
        }
        let since = *self.unowned_since.get_or_insert(now);
        let due =
            now.duration_since(since) >= self.after && self.last.is_none_or(|t| now.duration_since(t) >= self.wait);
        if due {
            if self.last.is_some() {
                self.wait = (self.wait * 2).min(MAX_REJOIN_WAIT);
            }
            self.last = Some(now);
        }
        due
    }
}

/// Reports this consumer's partitions and checks the group's, every `report_every`, on its
/// own thread with its own Kafka client (metadata and watermark requests must not hold up
/// the consumer's poll loop, and with it alerts). Sets `rejoin` when the consumer should
/// re-join its group; the poll loop does it.
pub(super) struct Checker {
    settings: OwnerSettings,
    owner: String,
    group: String,
    topic: String,
    states: BTreeMap<i32, PartitionState>,
    rejoin: Rejoin,
}

/// Shared with the checker's thread.
pub(super) struct CheckerHandles {
    pub(super) assigned: Assigned,
    pub(super) pg: Postgres,
    pub(super) handle: Handle,
    pub(super) metrics: Arc<Metrics>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) rejoin: Arc<AtomicBool>,
}

impl Checker {
    pub(super) fn new(settings: OwnerSettings, group: &str, topic: &str) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        Checker {
            settings,
            owner: format!("{host}/{}/{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            group: group.to_owned(),
            topic: topic.to_owned(),
            states: BTreeMap::new(),
            rejoin: Rejoin::new(settings.rejoin_after),
        }
    }

    /// Runs the checks on a thread until `stop` is set.
    pub(super) fn spawn(mut self, brokers: &str, h: CheckerHandles) -> anyhow::Result<JoinHandle<()>> {
        // No group: this client only asks for metadata and watermarks.
        let client: BaseConsumer = client_config(brokers).set("group.id", "ailogs-owners").create()?;
        Ok(std::thread::Builder::new()
            .name("ailogs-owners".into())
            .spawn(move || {
                while !h.stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if self.run(&client, &h) {
                        h.rejoin.store(true, Ordering::Relaxed);
                    }
                    // Wake often enough to notice `stop`.
                    while started.elapsed() < self.settings.report_every && !h.stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(Duration::from_millis(50));
                    }
                }
            })?)
    }

    /// Reports, checks, counts and logs; true when the consumer should re-join the group.
    /// Failures are logged and retried at the next turn: this check never stops consuming.
    fn run(&mut self, client: &BaseConsumer, h: &CheckerHandles) -> bool {
        let owned: Vec<i32> = h.assigned.lock().keys().copied().collect();
        let ends = match partition_ends(client, &self.topic) {
            Ok(ends) => ends,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the partitions' ends; owners not reported");
                return false;
            }
        };
        let checked = h.handle.block_on(async {
            h.pg.report_owners(&self.group, &self.topic, &self.owner, &owned, &ends)
                .await?;
            h.pg.partition_rows(&self.group, &self.topic).await
        });
        let rows = match checked {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "cannot report partition owners");
                return false;
            }
        };
        let reports: Vec<PartitionReport> = rows.iter().map(|r| classify(r, self.settings.bounds)).collect();
        let counts = counts(&reports);
        for (state, n) in &counts {
            h.metrics.partitions.with_label_values(&[state.as_str()]).set(*n as i64);
        }
        h.metrics.consumer_lag_lines.set(reports.iter().map(|r| r.lag).sum());
        for r in &reports {
            h.metrics
                .partition_lag_lines
                .with_label_values(&[&r.partition.to_string()])
                .set(r.lag);
        }
        for r in &reports {
            let before = self.states.insert(r.partition, r.state);
            let bad = matches!(r.state, PartitionState::Unowned | PartitionState::Stalled);
            if bad && before != Some(r.state) {
                tracing::warn!(
                    partition = r.partition,
                    state = r.state.as_str(),
                    lag = r.lag,
                    owner = r.owner.as_deref().unwrap_or("-"),
                    "partition has lag and nobody is consuming it"
                );
            } else if !bad && before.is_some_and(|b| matches!(b, PartitionState::Unowned | PartitionState::Stalled)) {
                tracing::info!(
                    partition = r.partition,
                    state = r.state.as_str(),
                    "partition consumed again"
                );
            }
        }
        let unowned = counts.get(&PartitionState::Unowned).copied().unwrap_or(0);
        let rejoin = self.rejoin.observe(unowned, Instant::now());
        if rejoin {
            tracing::warn!(
                unowned,
                "partitions stay unowned; re-joining the group so the broker reassigns them"
            );
        }
        rejoin
    }
}

/// Every partition of `topic` with its high watermark.
fn partition_ends(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<(i32, i64)>> {
    let timeout = Duration::from_secs(2);
    topic_partitions(consumer, topic, timeout)?
        .into_iter()
        .map(|p| Ok((p, consumer.fetch_watermarks(topic, p, timeout)?.1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        owner: Option<&str>,
        heartbeat: Option<f64>,
        high: i64,
        stored: Option<i64>,
        progressed: Option<f64>,
    ) -> PartitionRow {
        PartitionRow {
            partition: 0,
            owner: owner.map(str::to_owned),
            heartbeat_age_s: heartbeat,
            high_watermark: high,
            stored_offset: stored,
            progressed_age_s: progressed,
        }
    }

    const B: Bounds = Bounds {
        owner_stale: Duration::from_secs(10),
        stall: Duration::from_secs(60),
    };

    #[test]
    fn lag_without_a_live_owner_is_unowned_and_lag_that_stops_moving_is_stalled() {
        let state = |r: PartitionRow| classify(&r, B).state;
        assert_eq!(
            state(row(Some("a"), Some(1.0), 100, Some(100), Some(500.0))),
            PartitionState::CaughtUp
        );
        assert_eq!(
            state(row(Some("a"), Some(1.0), 100, Some(40), Some(2.0))),
            PartitionState::Consuming
        );
        assert_eq!(
            state(row(Some("a"), Some(30.0), 100, Some(40), Some(2.0))),
            PartitionState::Unowned
        );
        assert_eq!(state(row(None, None, 100, None, None)), PartitionState::Unowned);
        assert_eq!(
            state(row(Some("a"), Some(1.0), 100, Some(40), Some(90.0))),
            PartitionState::Stalled
        );
        assert_eq!(classify(&row(None, None, 100, Some(40), None), B).lag, 60);
    }

    #[test]
    fn rejoins_after_partitions_stay_unowned_and_not_again_at_once() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut r = Rejoin::new(Duration::from_secs(30));
        assert!(!r.observe(2, s(0)));
        assert!(!r.observe(2, s(29)));
        assert!(r.observe(2, s(30)));
        assert!(!r.observe(2, s(45)), "not again within the bound");
        assert!(r.observe(2, s(61)));
        assert!(!r.observe(2, s(100)), "then twice as long");
        assert!(r.observe(2, s(121)));
        assert!(!r.observe(0, s(122)), "owned again: reset");
        assert!(!r.observe(1, s(130)));
        assert!(r.observe(1, s(160)));
    }
}
