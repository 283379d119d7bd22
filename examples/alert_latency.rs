//! How late alerts reach a stream subscriber, embedded or through Kafka (librdkafka's mock
//! cluster, a consumer, `ai-logs.alerts` and the replica's tail). Each incident is a new
//! request with errors in two services, which raises one cascade alert; the first error
//! line carries its push time, so the subscriber measures push -> alert received.
//!
//! cargo run --release --example alert_latency -- [embedded|kafka] [incidents/s] [seconds] [batch wait ms]
//! Kafka mode creates and drops a scratch database on postgres://postgres@127.0.0.1:5432.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs::app::Application;
use ailogs::config::Config;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio_tungstenite::tungstenite::Message;

/// Batches free thousands of records at once, which glibc's malloc handles poorly
/// (consolidation); mimalloc keeps the core ~18% faster on the same work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kafka = args.get(1).is_some_and(|m| m == "kafka");
    let rate: u64 = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let batch_wait_ms: Option<u64> = args.get(4).map(|s| s.parse()).transpose()?;

    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    let mut cluster = None;
    let mut db = None;
    if kafka {
        let c = MockCluster::new(1)?;
        c.create_topic(ailogs::kafka::RAW_TOPIC, 12, 1)?;
        c.create_topic(ailogs::kafka::DLQ_TOPIC, 1, 1)?;
        c.create_topic(ailogs::kafka::ALERTS_TOPIC, 1, 1)?;
        c.create_topic(ailogs::kafka::LINES_TOPIC, 3, 1)?;
        config.kafka_brokers = Some(c.bootstrap_servers());
        if let Some(ms) = batch_wait_ms {
            config.kafka.batch_max_wait_ms = ms;
        }
        config.kafka.spool_dir = std::env::temp_dir().join(format!("ailogs-latency-{}", std::process::id()));
        let name = format!("ailogs_latency_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(ADMIN).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        config.database_url = Some(format!("postgres://postgres@127.0.0.1:5432/{name}").into());
        cluster = Some(c);
        db = Some(name);
    }
    let config_wait = config.kafka.batch_max_wait_ms;
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/ai_logs/stream")).await?;
    ws.send(Message::text(
        json!({"type": "subscribe", "filter": {"pattern_alerts": ["cascade"], "logs": false}}).to_string(),
    ))
    .await?;
    let latency = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
    ));
    let seen = Arc::clone(&latency);
    let reader = tokio::spawn(async move {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            // Only an incident's first publication: repeats would measure the fold window.
            if v["type"] != "alert" || v["alert"]["count"].as_u64() != Some(2) {
                continue;
            }
            let pushed = v["alert"]["samples"][0]
                .as_str()
                .and_then(|s| s.rsplit(" #").next())
                .and_then(|n| n.parse::<i64>().ok());
            if let Some(pushed) = pushed {
                seen.lock()
                    .saturating_record(((now_ns() - pushed) / 1000).max(1) as u64);
            }
        }
    });

    let client = reqwest::Client::new();
    let push = format!("http://{addr}/loki/api/v1/push");
    // Warm up until an alert comes through (with Kafka, the consumer joins its group first),
    // then measure from a clean histogram.
    let warm = Instant::now();
    let mut n = 0u64;
    while latency.lock().is_empty() {
        anyhow::ensure!(warm.elapsed() < Duration::from_secs(60), "no alert within 60 s");
        n += 1;
        push_incident(&client, &push, &format!("warmup-{n}")).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("first alert after {:.1} s of warm-up", warm.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    latency.lock().reset();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    let started = Instant::now();
    let mut incidents = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        incidents += 1;
        push_incident(&client, &push, &format!("req-{incidents}")).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    reader.abort();
    let _ = stop_tx.send(());
    let _ = server.await;
    let latency = latency.lock().clone();
    println!(
        "{} mode (consumer batch wait {} ms), {incidents} incidents at {rate}/s: {} alerts received; push -> alert p50 {} us, p99 {} us, max {} us",
        if kafka { "kafka" } else { "embedded" },
        config_wait,
        latency.len(),
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max()
    );
    drop(cluster);
    if let Some(name) = db {
        let mut conn = PgConnection::connect(ADMIN).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
    }
    Ok(())
}

/// One request with errors in two services: one cascade alert. The first line carries the
/// push time.
async fn push_incident(client: &reqwest::Client, push: &str, id: &str) -> anyhow::Result<()> {
    let t = now_ns();
    let id = format!("{id}-{t}");
    let lines = [
        json!({"service": "gateway", "level": "error", "correlation_id": id, "message": format!("model call failed #{t}")}),
        json!({"service": "api", "level": "error", "correlation_id": id, "message": "upstream failed"}),
    ];
    let values: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| json!([(t + i as i64).to_string(), l.to_string()]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": "latency"}, "values": values}]});
    client.post(push).json(&body).send().await?.error_for_status()?;
    Ok(())
}
