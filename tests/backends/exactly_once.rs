//! A known workload through the Loki endpoint into Kafka; a consumer process killed with
//! SIGKILL at random points and restarted; usage must equal the truth to the token.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ailogs::app::Application;
use serde_json::json;

use crate::env::{Kafka, TestDb, committed, usage_totals, wait_until, workload};

pub const PARTITIONS: i32 = 4;

/// Pushes lines as Loki JSON bodies to an ailogs that produces to Kafka.
pub async fn ingest(brokers: &str, lines: &[String]) {
    let config = crate::env::kafka_ingest_config(brokers, crate::env::spool_dir());
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
    spawn_consumer_with(brokers, db_url, log, &[])
}

/// A consumer process with more settings (`AILOGS_*` variables, later ones win).
pub fn spawn_consumer_with(brokers: &str, db_url: &str, log: &std::path::Path, extra: &[(&str, &str)]) -> Child {
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
        .envs(extra.iter().copied())
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
    let mut w = workload(12_000, 11);
    // Operational lines (no AI usage) that the pattern catalog knows, spread through.
    let incidents = [
        "upstream connect error: connection refused",
        "rate limit exceeded for key team-7",
        "pool exhausted: could not obtain a connection",
        "all good",
    ];
    for i in 0..400 {
        let line = json!({"level": "error", "service": "api", "message": incidents[i % incidents.len()]}).to_string();
        w.lines.insert(i * 29 % w.lines.len(), line);
    }
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
    // Pattern hits and templates are written in the batch transaction: exact too.
    let (decoded, hits) = expected_pattern_hits(&w.lines);
    let stored: std::collections::BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT pattern_id, SUM(count)::int8 FROM detected_patterns GROUP BY 1")
            .fetch_all(pg.pool())
            .await
            .expect("detected_patterns")
            .into_iter()
            .collect();
    assert!(!hits.is_empty(), "the workload has lines the catalog knows");
    assert_eq!(stored, hits, "pattern hits per pattern, exactly once");
    let templated: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(count), 0)::int8 FROM log_templates")
        .fetch_one(pg.pool())
        .await
        .expect("log_templates");
    assert_eq!(templated, decoded, "every decoded line counted once under its template");
    let odd: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log_templates WHERE template = '' OR service = '' OR first_seen > last_seen OR count < 1",
    )
    .fetch_one(pg.pool())
    .await
    .expect("log_templates rows");
    assert_eq!(odd, 0, "template rows are well formed");
    // Dead letters are produced before the batch commits: at least once each.
    assert!(kafka.message_count(ailogs::kafka::DLQ_TOPIC, 1) >= w.undecodable as i64);
    db.drop_db().await;
}

/// Decodes the lines as the consumer does (with the pushed stream's labels) and counts the
/// shipped catalog's hits: (decoded lines, hits per pattern id).
fn expected_pattern_hits(lines: &[String]) -> (i64, std::collections::BTreeMap<String, i64>) {
    use ailogs_pipeline::patterns::{Catalog, Matcher, SharedMatcher};
    use ailogs_pipeline::{DecodeLimits, Decoder, RawEntry};
    let matcher = SharedMatcher::new(Matcher::compile(Catalog::shipped().expect("catalog").patterns).expect("compile"));
    let mut scanner = matcher.scanner();
    let mut decoder = Decoder::new(DecodeLimits::default());
    let labels = std::sync::Arc::new(
        [("app", "gateway"), ("env", "test")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let metadata: Vec<(String, String)> = Vec::new();
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let (mut decoded, mut hits) = (0, std::collections::BTreeMap::new());
    for line in lines {
        let raw = RawEntry {
            ts_ns: now,
            line,
            labels: &labels,
            metadata: &metadata,
        };
        let Ok(record) = decoder.decode(&raw) else { continue };
        decoded += 1;
        for m in scanner.scan(&record) {
            *hits.entry(m.id.to_string()).or_insert(0) += 1;
        }
    }
    (decoded, hits)
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
