//! End-to-end check of a running deployment: pushes a workload with known token totals to
//! ailogs' Loki endpoint, waits until the consumers have written them, and compares
//! Postgres usage, the billing report's reconciliation and the API's workspace summary
//! with the truth. Exits non-zero on any difference.
//!
//! cargo run --release --example e2e_check -- <ailogs base URL> <postgres URL> [requests]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ailogs::store::postgres::Postgres;
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let db = args
        .get(2)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("usage: e2e_check <base url> <postgres url> [requests]"))?;
    let n: usize = args.get(3).map_or(Ok(5_000), |s| s.parse())?;
    let pg = Postgres::connect(&db).await?;
    let before = totals(&pg).await?;

    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let w = ailogs_pipeline::synth::usage_workload(n, now as u64, now);
    let mut expected = before.clone();
    for r in &w.requests {
        let t = expected
            .entry((r.workspace.clone(), r.model.to_owned()))
            .or_insert([0; 4]);
        t[0] += 1;
        t[1] += r.input;
        t[2] += r.output;
        t[3] += r.cached;
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    // E2E_PUSH_S spreads the pushes over that many seconds, so chaos lands mid-stream.
    let spread = Duration::from_secs_f64(
        std::env::var("E2E_PUSH_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
    );
    let chunks = w.lines.len().div_ceil(1000).max(1) as u32;
    for (i, chunk) in w.lines.chunks(1000).enumerate() {
        let due = started + spread * i as u32 / chunks;
        tokio::time::sleep_until(due.into()).await;
        let values: Vec<_> = chunk.iter().map(|l| json!([now.to_string(), l])).collect();
        let body = json!({"streams": [{"stream": {"app": "gateway", "job": "e2e"}, "values": values}]});
        let resp = client
            .post(format!("{base}/loki/api/v1/push"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().as_u16() == 204,
            "push answered {}: {}",
            resp.status(),
            resp.text().await?
        );
    }
    println!(
        "pushed {} lines ({n} requests) in {:.2} s",
        w.lines.len(),
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now()
        + Duration::from_secs(
            std::env::var("E2E_WAIT_S")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300),
        );
    loop {
        // Postgres may be down on purpose (E2E_CHAOS): keep waiting.
        let got = match totals(&pg).await {
            Ok(t) => t,
            Err(e) if Instant::now() < deadline => {
                eprintln!("postgres not answering ({e}); waiting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if got == expected {
            break;
        }
        if Instant::now() > deadline {
            for (k, v) in &expected {
                if got.get(k) != Some(v) {
                    eprintln!("{k:?}: expected {v:?}, got {:?}", got.get(k));
                }
            }
            if let Ok(brokers) = std::env::var("AILOGS_KAFKA_BROKERS") {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let c: BaseConsumer = ailogs::kafka::client_config(&brokers)
                    .set("group.id", "e2e-probe")
                    .create()?;
                let dlq: i64 = (0..3)
                    .filter_map(|p| {
                        c.fetch_watermarks(ailogs::kafka::DLQ_TOPIC, p, Duration::from_secs(5))
                            .ok()
                    })
                    .map(|(low, high)| high - low)
                    .sum();
                eprintln!(
                    "dead letters in {}: {dlq} (the workload has {} undecodable lines)",
                    ailogs::kafka::DLQ_TOPIC,
                    w.undecodable
                );
                report_holes(&brokers)?;
            }
            if let Ok(metrics) = reqwest::get(format!("{base}/metrics")).await {
                for line in metrics.text().await.unwrap_or_default().lines() {
                    if line.starts_with("ailogs_spool") || line.starts_with("ailogs_kafka") {
                        eprintln!("serve: {line}");
                    }
                }
            }
            anyhow::bail!("usage totals did not reach the truth within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "usage equals the truth to the token after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = ailogs::billing::report(&pg, &month, None).await?;
    anyhow::ensure!(
        report.mismatches.is_empty(),
        "billing does not reconcile: {:?}",
        report.mismatches
    );
    println!(
        "billing report for {month} reconciles with ai_operations ({} rows)",
        report.rows.len()
    );
    let summary: serde_json::Value = client
        .get(format!("{base}/api/v1/ai_logs/workspace/ws-0/summary?time_range=6h"))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        summary["total_requests"].as_i64().is_some(),
        "workspace summary: {summary}"
    );
    println!(
        "API workspace summary answers from {}: ws-0 has {} requests in 6h",
        summary["source"], summary["total_requests"]
    );
    Ok(())
}

type Totals = BTreeMap<(String, String), [i64; 4]>;

async fn totals(pg: &Postgres) -> anyhow::Result<Totals> {
    let rows: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT workspace_id, model, SUM(requests)::int8, SUM(input_tokens)::int8, SUM(output_tokens)::int8, \
         SUM(cached_tokens)::int8 FROM ai_workspace_usage GROUP BY 1, 2",
    )
    .fetch_all(pg.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(w, m, r, i, o, c)| ((w, m), [r, i, o, c]))
        .collect())
}

/// Reads every partition of the raw topic from its start and prints the offsets the broker
/// does not serve although they are below its high watermark: tells a broker that lost lines
/// from a consumer that skipped them.
fn report_holes(brokers: &str) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let topic = ailogs::kafka::RAW_TOPIC;
    let c: BaseConsumer = ailogs::kafka::client_config(brokers)
        .set("group.id", "e2e-holes")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    let mut held = 0;
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(5))?;
        held += high - low;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        c.assign(&tpl)?;
        let (mut next, mut holes, mut idle) = (low, Vec::new(), 0);
        while next < high && idle < 50 {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if m.offset() > next {
                        holes.push(next..m.offset());
                    }
                    next = next.max(m.offset() + 1);
                    idle = 0;
                }
                Some(Err(e)) => eprintln!("partition {p}: {e}"),
                None => idle += 1,
            }
        }
        if next < high {
            holes.push(next..high);
        }
        if !holes.is_empty() {
            eprintln!("{topic}/{p}: offsets {low}..{high}, not served: {holes:?}");
        }
    }
    eprintln!("{topic} holds {held} messages");
    Ok(())
}
