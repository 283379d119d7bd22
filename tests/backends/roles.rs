//! The compose stack's roles as processes of the real binary, against mock Kafka and a fresh
//! Postgres database: `init` migrates and creates the topics; `serve` with
//! `AILOGS_CONSUME_IN_SERVE=false` only ingests and answers; `consume` commits what it pushed
//! and serves its metrics and health; `simulate` writes the files Promtail tails, lines every
//! one of which ailogs accepts.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, Row};
use tokio::process::{Child, Command};

use crate::env::{Kafka, TestDb, free_port};

fn ailogs(db: &TestDb, kafka: &Kafka, dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ailogs"));
    // A clean environment: the test runner's AILOGS_TEST_* variables are not settings.
    cmd.env_clear()
        .env("AILOGS_KAFKA_BROKERS", &kafka.brokers)
        .env("AILOGS_DATABASE_URL", &db.url)
        .env("AILOGS_KAFKA__SPOOL_DIR", dir.join(format!("spool-{listen}")))
        .env("AILOGS_LISTEN", listen)
        .env("AILOGS_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Waits until `url` answers 200 (the process is up), or fails after a minute.
async fn ready(http: &reqwest::Client, child: &mut Child, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{url}: the process exited with {status}");
        }
        assert!(Instant::now() < deadline, "{url} did not answer within a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_serve_consume_and_simulate_run_as_the_stack_runs_them() {
    let db = TestDb::create().await;
    let kafka = Kafka::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();

    let migrate = ailogs(&db, &kafka, dir.path(), "127.0.0.1:0")
        .arg("migrate")
        .output()
        .await
        .expect("ailogs migrate");
    let said = String::from_utf8_lossy(&migrate.stdout);
    assert!(
        migrate.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(said.contains("migrations applied"), "{said}");

    // simulate: files per service, every line one ailogs takes.
    let logs = dir.path().join("ai-apps");
    let simulate = Command::new(env!("CARGO_BIN_EXE_ailogs"))
        .env_clear()
        .args(["simulate", "--rate", "50", "--duration-s", "2", "--dir"])
        .arg(&logs)
        .output()
        .await
        .expect("ailogs simulate");
    assert!(
        simulate.status.success(),
        "{}",
        String::from_utf8_lossy(&simulate.stderr)
    );
    // Per service, its lines with their times, as Promtail would send them.
    let mut streams = Vec::new();
    let mut total = 0;
    for service in std::fs::read_dir(&logs).expect("service directories") {
        let service = service.expect("entry").path();
        let name = service.file_name().expect("name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(service.join("app.log")).expect("app.log");
        let mut values = Vec::new();
        for line in text.lines() {
            // JSON lines, and the worker's logfmt.
            let ts = if line.starts_with('{') {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
                assert_eq!(v["service"], name.as_str(), "a service writes its own file");
                v["timestamp"].as_str().expect("a timestamp").to_owned()
            } else {
                let ts = line.split_whitespace().find_map(|kv| kv.strip_prefix("ts="));
                ts.unwrap_or_else(|| panic!("{name}: neither JSON nor logfmt with ts: {line}"))
                    .to_owned()
            };
            let at = chrono::DateTime::parse_from_rfc3339(&ts).unwrap_or_else(|e| panic!("{ts}: {e}"));
            values.push(json!([at.timestamp_nanos_opt().expect("ns").to_string(), line]));
        }
        total += values.len();
        streams.push(json!({"stream": {"job": "ai-apps", "service": name}, "values": values}));
    }
    assert!(
        streams.len() >= 4 && total > 100,
        "{total} lines of {} services in 2 s",
        streams.len()
    );

    // serve (not consuming) and consume, as separate processes.
    let (serve_addr, consume_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut serve = ailogs(&db, &kafka, dir.path(), &serve_addr)
        .arg("serve")
        .env("AILOGS_CONSUME_IN_SERVE", "false")
        .spawn()
        .expect("serve");
    let mut consume = ailogs(&db, &kafka, dir.path(), &consume_addr)
        .arg("consume")
        .spawn()
        .expect("consume");
    let (serve_url, consume_url) = (format!("http://{serve_addr}"), format!("http://{consume_addr}"));
    ready(&http, &mut serve, &format!("{serve_url}/api/v1/ai_logs/health")).await;
    ready(&http, &mut consume, &format!("{consume_url}/api/v1/ai_logs/health")).await;
    let pushed = http
        .post(format!("{serve_url}/loki/api/v1/push"))
        .json(&json!({ "streams": streams }))
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.status(), reqwest::StatusCode::NO_CONTENT);

    // The consumer commits every line; the API process commits none.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut committed = 0.0;
    while committed < total as f64 {
        assert!(
            Instant::now() < deadline,
            "the consumer committed {committed} of {} lines",
            total
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        committed = metric(&http, &consume_url, "ailogs_consumer_lines_total")
            .await
            .unwrap_or(0.0);
    }
    assert_eq!(
        metric(&http, &serve_url, "ailogs_consumer_lines_total").await,
        Some(0.0)
    );
    let mut pg = PgConnection::connect(&db.url).await.expect("postgres");
    let requests: i64 = sqlx::query("SELECT COALESCE(SUM(requests), 0)::int8 FROM ai_workspace_usage")
        .fetch_one(&mut pg)
        .await
        .expect("usage")
        .get(0);
    assert!(requests > 0, "the simulated AI requests are in the usage tables");
    drop(pg);
    drop((serve, consume));
    db.drop_db().await;
}
