//! A known workload through the Loki endpoint into Kafka; a consumer process killed with
//! SIGKILL at random points and restarted; usage must equal the truth to the token.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ailogs::app::Application;
use ailogs::config::Config;
use serde_json::json;

use crate::env::{Kafka, TestDb, committed, usage_totals, wait_until, workload};

pub const PARTITIONS: i32 = 4;

/// Pushes lines as Loki JSON bodies to an ailogs that produces to Kafka.
pub async fn ingest(brokers: &str, lines: &[String]) {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kafka_brokers: Some(brokers.to_owned()),
        ..Config::default()
    };
    config.kafka.spool_dir = crate::env::spool_dir();
    let app = Application::build(config).await.expect("ingest app");
    let url = format!("http://{}/loki/api/v1/push", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    for chunk in lines.chunks(500) {
        let values: Vec<_> = chunk.iter().map(|l| json!([now.to_string(), l])).collect();
        let body = json!({"streams": [{"stream": {"app": "gateway", "env": "test"}, "values": values}]});
        let resp = client.post(&url).json(&body).send().await.expect("push");
        assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().await.unwrap_or_default());
    }
    let _ = tx.send(());
    server.await.expect("server task").expect("ingest app stopped");
}

pub fn spawn_consumer(brokers: &str, db_url: &str, log: &std::path::Path) -> Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_ailogs"))
        .arg("consume")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("AILOGS_KAFKA_BROKERS", brokers)
        .env("AILOGS_DATABASE_URL", db_url)
        .env("AILOGS_KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("AILOGS_KAFKA__BATCH_MAX_LINES", "100")
        .env("AILOGS_KAFKA__BATCH_MAX_WAIT_MS", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn ailogs consume")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_exact_across_consumer_crashes() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let kafka = Kafka::start(PARTITIONS);
    let w = workload(12_000, 11);
    ingest(&kafka.brokers, &w.lines).await;
    let total = w.lines.len() as i64;
    assert_eq!(
        kafka.message_count(ailogs::kafka::RAW_TOPIC, PARTITIONS),
        total,
        "every acknowledged line is in Kafka"
    );

    let log = std::env::temp_dir().join(format!("{}-consumer.log", db.name()));
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut progress = Vec::new();
    for _ in 0..5 {
        let mut child = spawn_consumer(&kafka.brokers, &db.url, &log);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(3_000 + seed % 7_000)).await;
        child.kill().expect("SIGKILL the consumer");
        child.wait().expect("reap");
        progress.push(committed(&pg).await);
    }
    let mut child = spawn_consumer(&kafka.brokers, &db.url, &log);
    let pg2 = pg.clone();
    wait_until("every line committed", Duration::from_secs(180), || {
        let pg = pg2.clone();
        async move { committed(&pg).await >= total }
    })
    .await;
    child.kill().expect("stop the consumer");
    child.wait().expect("reap");
    eprintln!("committed after each kill: {progress:?} of {total}");

    assert_eq!(committed(&pg).await, total, "offsets stop at the end of the topic");
    let got = usage_totals(&pg).await;
    let log_tail = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: String = log_tail
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        got, w.expected,
        "usage must equal the truth to the token\nconsumer log tail:\n{tail}"
    );
    let requests: i64 = w.expected.values().map(|t| t[0]).sum();
    let ops: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ai_operations")
        .fetch_one(pg.pool())
        .await
        .expect("count");
    assert_eq!(ops, requests, "one ai_operations row per request");
    let unpriced: i64 =
        sqlx::query_scalar("SELECT SUM(unpriced_requests)::int8 FROM ai_workspace_usage WHERE model = 'mystery-model'")
            .fetch_one(pg.pool())
            .await
            .expect("unpriced");
    let mystery: i64 = w
        .expected
        .iter()
        .filter(|((_, m), _)| m == "mystery-model")
        .map(|(_, t)| t[0])
        .sum();
    assert_eq!(unpriced, mystery, "requests for unknown models are counted as unpriced");
    for month in months_touched() {
        let report = ailogs::billing::report(&pg, &month, None)
            .await
            .expect("billing report");
        assert!(report.mismatches.is_empty(), "{month}: {:?}", report.mismatches);
    }
    // Dead letters are produced before the batch commits: at least once each.
    assert!(kafka.message_count(ailogs::kafka::DLQ_TOPIC, 1) >= w.undecodable as i64);
    db.drop_db().await;
}

/// The workload's lines are up to five hours old.
fn months_touched() -> Vec<String> {
    let now = chrono::Utc::now();
    let mut months: Vec<String> = [now, now - chrono::Duration::hours(6)]
        .iter()
        .map(|t| t.format("%Y-%m").to_string())
        .collect();
    months.dedup();
    months
}
