//! Postgres becomes unreachable mid-run: the consumer pauses, retries and resumes; nothing is
//! lost and nothing is counted twice.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::env::{Kafka, TestDb, committed, usage_totals, wait_until, workload};
use crate::exactly_once::{PARTITIONS, ingest, spawn_consumer};

async fn set_connections(db: &TestDb, allowed: bool) {
    let admin =
        std::env::var("AILOGS_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = PgConnection::connect(&admin).await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS {allowed}",
        db.name()
    )))
    .execute(&mut conn)
    .await
    .expect("alter database");
    if !allowed {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(db.name())
        .execute(&mut conn)
        .await
        .expect("terminate connections");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_pauses_and_resumes_without_loss() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let kafka = Kafka::start(PARTITIONS);
    let w = workload(12_000, 5);
    ingest(&kafka.brokers, &w.lines).await;
    let total = w.lines.len() as i64;

    let log = std::env::temp_dir().join(format!("{}-consumer.log", db.name()));
    let mut child = spawn_consumer(&kafka.brokers, &db.url, &log);
    let probe = pg.clone();
    wait_until(
        "the consumer to commit its first batch",
        Duration::from_secs(60),
        || {
            let pg = probe.clone();
            async move { committed(&pg).await > 0 }
        },
    )
    .await;
    set_connections(&db, false).await;
    let paused = "postgres unavailable; pausing consumption";
    let probe = log.clone();
    wait_until("the consumer to pause on the outage", Duration::from_secs(60), || {
        let log = probe.clone();
        async move { std::fs::read_to_string(&log).is_ok_and(|l| l.contains(paused)) }
    })
    .await;
    // A consumer restarted during the outage waits for Postgres instead of exiting: its own
    // log says it is waiting, and it is still running after saying so twice.
    child.kill().expect("kill the consumer during the outage");
    child.wait().expect("reap");
    let restarted_log = std::env::temp_dir().join(format!("{}-restarted.log", db.name()));
    let mut child = spawn_consumer(&kafka.brokers, &db.url, &restarted_log);
    let waiting = "postgres not ready; retrying";
    let probe = restarted_log.clone();
    wait_until(
        "the restarted consumer to wait for postgres",
        Duration::from_secs(60),
        || {
            let log = probe.clone();
            async move { std::fs::read_to_string(&log).is_ok_and(|l| l.matches(waiting).count() >= 2) }
        },
    )
    .await;
    assert!(
        child.try_wait().expect("status").is_none(),
        "the restarted consumer is still running, waiting"
    );
    set_connections(&db, true).await;

    let pg = db.pg().await;
    let probe = pg.clone();
    wait_until(
        "every line committed after the outage",
        Duration::from_secs(120),
        || {
            let pg = probe.clone();
            async move { committed(&pg).await >= total }
        },
    )
    .await;
    child.kill().expect("stop the consumer");
    child.wait().expect("reap");

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log_text.contains("postgres unavailable; pausing"),
        "the outage hit the consumer:\n{log_text}"
    );
    let restarted = std::fs::read_to_string(&restarted_log).unwrap_or_default();
    assert!(
        restarted.contains("postgres not ready; retrying"),
        "the restarted consumer waited:\n{restarted}"
    );
    assert_eq!(committed(&pg).await, total);
    assert_eq!(
        usage_totals(&pg).await,
        w.expected,
        "no line lost or counted twice across the outage"
    );
    db.drop_db().await;
}
