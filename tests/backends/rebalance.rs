//! Two consumers split the partitions; one dies and the other takes its partitions over.
//! Totals stay exact.

use std::time::Duration;

use crate::env::{Kafka, TestDb, committed, usage_totals, wait_until, workload};
use crate::exactly_once::{PARTITIONS, ingest, spawn_consumer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_then_one_count_each_line_once() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let kafka = Kafka::start(PARTITIONS);
    let w = workload(12_000, 23);
    ingest(&kafka.brokers, &w.lines).await;
    let total = w.lines.len() as i64;

    let log_a = std::env::temp_dir().join(format!("{}-a.log", db.name()));
    let log_b = std::env::temp_dir().join(format!("{}-b.log", db.name()));
    let mut a = spawn_consumer(&kafka.brokers, &db.url, &log_a);
    let mut b = spawn_consumer(&kafka.brokers, &db.url, &log_b);
    // Both must hold partitions before a dies (on a loaded machine one may join the group
    // only after the other took everything).
    let (la, lb) = (log_a.clone(), log_b.clone());
    wait_until(
        "both consumers to be assigned partitions",
        Duration::from_secs(90),
        || {
            let assigned =
                |p: &std::path::Path| std::fs::read_to_string(p).is_ok_and(|l| l.contains("partitions assigned"));
            let both = assigned(&la) && assigned(&lb);
            async move { both }
        },
    )
    .await;
    let probe = pg.clone();
    wait_until("both consumers to make progress", Duration::from_secs(60), || {
        let pg = probe.clone();
        async move { committed(&pg).await > 0 }
    })
    .await;
    a.kill().expect("kill consumer a");
    a.wait().expect("reap a");
    // a may have finished its own partitions before it died, so every line can be committed
    // before the group notices: wait for both the totals and b taking a's partitions over.
    let probe = pg.clone();
    let lb = log_b.clone();
    wait_until(
        "the survivor to take over and finish every partition",
        Duration::from_secs(120),
        || {
            let pg = probe.clone();
            let rebalanced = std::fs::read_to_string(&lb).is_ok_and(|l| l.matches("partitions assigned").count() >= 2);
            async move { rebalanced && committed(&pg).await >= total }
        },
    )
    .await;
    b.kill().expect("stop consumer b");
    b.wait().expect("reap b");

    let log_b = std::fs::read_to_string(&log_b).unwrap_or_default();
    let assignments = log_b.matches("partitions assigned").count();
    assert!(assignments >= 2, "consumer b was rebalanced after a died:\n{log_b}");
    assert_eq!(usage_totals(&pg).await, w.expected);

    // The API reads the same numbers from Postgres.
    let config = ailogs::config::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: Some(db.url.clone().into()),
        ..Default::default()
    };
    let app = ailogs::app::Application::build(config).await.expect("api app");
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let summary: serde_json::Value =
        reqwest::get(format!("{base}/api/v1/ai_logs/workspace/ws-1/summary?time_range=7h"))
            .await
            .expect("summary")
            .json()
            .await
            .expect("json");
    let expected: i64 = w
        .expected
        .iter()
        .filter(|((ws, _), _)| ws == "ws-1")
        .map(|(_, t)| t[0])
        .sum();
    assert_eq!(summary["source"], "postgres", "{summary}");
    assert_eq!(summary["total_requests"], expected, "{summary}");
    let _ = tx.send(());
    server.await.expect("server").expect("stopped");
    db.drop_db().await;
}
