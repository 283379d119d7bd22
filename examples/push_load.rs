//! Load harness: pushes synthetic AI traffic to a running ailogs through the Loki endpoint
//! (protobuf + snappy, as Promtail sends it) and reports lines/s until every line is
//! queryable.
//!
//! cargo run --release --example push_load -- http://127.0.0.1:8080 500000 1000 4
//! (base URL, lines, lines per request, concurrent clients)

use std::time::{Duration, Instant};

use ailogs::demo::encode;
use ailogs_pipeline::synth::{SynthLine, Traffic};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let total: usize = args.get(2).map_or(Ok(200_000), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(1_000), |s| s.parse())?;
    let clients: usize = args.get(4).map_or(Ok(4), |s| s.parse())?;

    // Encode every request up front so the measurement is of the server, not the generator.
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut traffic = Traffic::new(1);
    let mut lines: Vec<SynthLine> = Vec::with_capacity(total + 8);
    let mut i = 0i64;
    while lines.len() < total {
        lines.extend(traffic.request(now - 600_000_000_000 + i * 1_000_000));
        i += 1;
    }
    lines.truncate(total);
    let bytes: usize = lines.iter().map(|l| l.line.len()).sum();
    let bodies: Vec<Vec<u8>> = lines.chunks(batch).map(|c| encode(c.to_vec())).collect();
    let health = format!("{base}/api/v1/ai_logs/health");
    let client = reqwest::Client::new();
    let before = inserted(&client, &health).await?;

    let url = format!("{base}/loki/api/v1/push");
    let started = Instant::now();
    let per_client: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| bodies.iter().skip(c).step_by(clients).cloned().collect())
        .collect();
    let mut tasks = Vec::new();
    for bodies in per_client {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for body in bodies {
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().as_u16() == 204, "push answered {}", resp.status());
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let accepted = started.elapsed();
    while inserted(&client, &health).await? < before + total as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{total} lines ({:.0} MB of log text) in {} requests of {batch}, {clients} clients",
        bytes as f64 / 1e6,
        latencies.len()
    );
    println!(
        "accepted (204) in {:.2} s: {:.0} lines/s",
        accepted.as_secs_f64(),
        total as f64 / accepted.as_secs_f64()
    );
    println!(
        "all queryable in {:.2} s: {:.0} lines/s",
        done.as_secs_f64(),
        total as f64 / done.as_secs_f64()
    );
    println!(
        "push latency p50 {:?} p99 {:?} max {:?}",
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}

async fn inserted(client: &reqwest::Client, health: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = client.get(health).send().await?.json().await?;
    v["components"]["views"]["inserted_total"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("health has no inserted_total"))
}
