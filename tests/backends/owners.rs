//! Partitions nobody consumes are seen, not silently frozen: one of two consumers is
//! SIGKILLed with a long session timeout (the group keeps the dead member until it times
//! out), lines keep arriving; the survivor reports the dead one's partitions `unowned` with
//! their lag (the state /health shows) and logs it, and the totals end exact once the group
//! gives them to the survivor. (Re-joining, for brokers that never evict a dead member, is
//! unit-tested in `ownership`: the mock cluster does evict.)

use std::time::Duration;

use ailogs::consume::kafka::ownership::{OwnerSettings, PartitionState, classify};

use crate::env::{Kafka, TestDb, committed, usage_totals, wait_until, workload};
use crate::exactly_once::{PARTITIONS, ingest, spawn_consumer_with};

const SETTINGS: &[(&str, &str)] = &[
    ("AILOGS_KAFKA__SESSION_TIMEOUT_MS", "15000"),
    ("AILOGS_KAFKA__OWNER_REPORT_MS", "200"),
    ("AILOGS_KAFKA__OWNER_STALE_MS", "1500"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_without_a_live_owner_are_reported_and_taken_over() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let kafka = Kafka::start(PARTITIONS);
    let log_a = std::env::temp_dir().join(format!("{}-owner-a.log", db.name()));
    let log_b = std::env::temp_dir().join(format!("{}-owner-b.log", db.name()));
    let mut a = spawn_consumer_with(&kafka.brokers, &db.url, &log_a, SETTINGS);
    let mut b = spawn_consumer_with(&kafka.brokers, &db.url, &log_b, SETTINGS);
    let config = ailogs::config::Config {
        kafka: ailogs::config::KafkaConfig {
            owner_stale_ms: 1500,
            ..Default::default()
        },
        ..Default::default()
    };
    let bounds = OwnerSettings::from(&config.kafka).bounds;
    let group = config.kafka.group_id.clone();
    let topic = config.kafka.raw_topic.clone();
    let states = |pg: ailogs::store::postgres::Postgres| {
        let (group, topic) = (group.clone(), topic.clone());
        async move {
            let rows = pg.partition_rows(&group, &topic).await.expect("partition rows");
            rows.iter().map(|r| classify(r, bounds)).collect::<Vec<_>>()
        }
    };
    // Both own partitions and report them.
    let probe = pg.clone();
    wait_until("both consumers to report partitions", Duration::from_secs(90), || {
        let pg = probe.clone();
        async move {
            let owners: std::collections::HashSet<String> =
                sqlx::query_scalar::<_, Option<String>>("SELECT owner FROM partition_owners")
                    .fetch_all(pg.pool())
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect();
            owners.len() == 2
        }
    })
    .await;
    a.kill().expect("kill consumer a");
    a.wait().expect("reap a");
    let w = workload(3_000, 31);
    ingest(&kafka.brokers, &w.lines).await;
    let total = w.lines.len() as i64;

    // a's partitions: lag and no live owner, until the group gives them to b.
    let probe = pg.clone();
    wait_until(
        "a's partitions reported unowned with lag",
        Duration::from_secs(25),
        || {
            let fut = states(probe.clone());
            async move {
                fut.await
                    .iter()
                    .any(|r| r.state == PartitionState::Unowned && r.lag > 0)
            }
        },
    )
    .await;
    let probe = pg.clone();
    wait_until("every line consumed", Duration::from_secs(120), || {
        let pg = probe.clone();
        async move { committed(&pg).await >= total }
    })
    .await;
    let probe = pg.clone();
    wait_until("every partition caught up", Duration::from_secs(30), || {
        let fut = states(probe.clone());
        async move { fut.await.iter().all(|r| r.state == PartitionState::CaughtUp) }
    })
    .await;
    b.kill().expect("stop consumer b");
    b.wait().expect("reap b");
    let log_b = std::fs::read_to_string(&log_b).unwrap_or_default();
    assert!(
        log_b.contains("partition has lag and nobody is consuming it"),
        "the survivor logs the unowned partitions:\n{log_b}"
    );
    assert!(
        log_b.contains("partition consumed again"),
        "and when they are consumed again:\n{log_b}"
    );
    assert_eq!(usage_totals(&pg).await, w.expected);
    db.drop_db().await;
}
