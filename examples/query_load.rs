//! Query load harness: fills a running ailogs with synthetic AI traffic up to each held-line
//! count, then, while more traffic keeps arriving, sends each kind of query at a fixed rate
//! and reports latency percentiles per kind.
//!
//! cargo run --release -- serve   (embedded; views.max_lines must hold the largest count)
//! cargo run --release --example query_load -- http://127.0.0.1:8080 50000,500000 1000 5
//! (base URL, held-line counts, queries per second, seconds per query kind)
//!
//! With API keys: `AILOGS_API_KEY` is sent with every call (a reader key scoped to some
//! workspaces measures the scoped path), `AILOGS_LOAD_PUSH_KEY` with the pushes.
//!
//! Latency is measured from each query's scheduled send time, so a server that falls
//! behind the rate is charged for the queueing it causes (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ailogs::demo::encode;
use ailogs_pipeline::synth::{SynthLine, Traffic};
use hdrhistogram::Histogram;

const QUERIES: &[(&str, &str)] = &[
    // The floor: what the harness, HTTP and this machine cost for a static answer.
    ("floor: GET / (static)", "/"),
    ("errors", "/api/v1/ai_logs/query?mode=errors&limit=20"),
    (
        "troubleshoot+context",
        "/api/v1/ai_logs/query?mode=troubleshoot&include_context=3&limit=20",
    ),
    ("by_error", "/api/v1/ai_logs/query?mode=errors&aggregation=by_error"),
    (
        "errors dedupe",
        "/api/v1/ai_logs/query?mode=errors&deduplicate=true&limit=20",
    ),
    ("performance", "/api/v1/ai_logs/query?mode=performance&limit=20"),
    ("audit", "/api/v1/ai_logs/query?mode=audit&limit=20"),
    ("conversation", "/api/v1/ai_logs/query?mode=conversation&limit=20"),
    (
        "narrative",
        "/api/v1/ai_logs/query?mode=troubleshoot&format=narrative&limit=10",
    ),
];

/// Lines per second pushed while queries run.
const INGEST_RATE: usize = 2_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let counts: Vec<usize> = args
        .get(2)
        .map_or("50000,500000", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let rate: u64 = args.get(3).map_or(Ok(1_000), |s| s.parse())?;
    let seconds: u64 = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(key) = std::env::var("AILOGS_API_KEY") {
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .default_headers(headers)
        .build()?;
    let mut traffic = Traffic::new(7);
    let mut clock = now_ns() - 1_800_000_000_000;

    println!("| held lines | query | achieved q/s | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for held in counts {
        let have = held_lines(&client, &base).await?;
        if held > have {
            push_lines(&client, &base, &mut traffic, &mut clock, held - have).await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ingest = tokio::spawn(ingest(client.clone(), base.clone(), Arc::clone(&stop)));
        for (name, q) in QUERIES {
            let url = format!("{base}{q}");
            let (hist, achieved, failed) = run_at_rate(&client, &url, rate, seconds).await?;
            println!(
                "| {} | {name} | {achieved:.0} | {failed} | {:.2} | {:.2} | {:.2} |",
                held_lines(&client, &base).await?,
                hist.value_at_quantile(0.5) as f64 / 1000.0,
                hist.value_at_quantile(0.99) as f64 / 1000.0,
                hist.max() as f64 / 1000.0
            );
        }
        stop.store(true, Ordering::Relaxed);
        ingest.await??;
    }
    Ok(())
}

/// Sends `rate` queries per second for `seconds`: latency in µs from the scheduled time,
/// queries answered per second, and how many failed (timeouts, errors).
///
/// A blocking thread paces the sends with the OS's fine sleep: tokio's timer wheel rounds
/// every deadline up to the next millisecond, which would charge the server up to 1 ms of
/// the generator's own lateness on every query.
async fn run_at_rate(
    client: &reqwest::Client,
    url: &str,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<(Histogram<u64>, f64, usize)> {
    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let runtime = tokio::runtime::Handle::current();
    let (client, url) = (client.clone(), url.to_owned());
    let start = std::time::Instant::now();
    let tasks = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                std::thread::sleep(wait);
            }
            let (client, url) = (client.clone(), url.clone());
            tasks.push(runtime.spawn(async move {
                let ok = match client.get(&url).send().await {
                    Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                    Err(_) => false,
                };
                (ok, due.elapsed())
            }));
        }
        tasks
    })
    .await?;
    let mut hist = Histogram::<u64>::new(3)?;
    let mut failed = 0;
    for t in tasks {
        let (ok, latency) = t.await?;
        failed += usize::from(!ok);
        hist.record(latency.as_micros() as u64)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((hist, total as f64 / elapsed, failed))
}

/// Pushes `n` lines of backfill and waits until the views hold them.
async fn push_lines(
    client: &reqwest::Client,
    base: &str,
    traffic: &mut Traffic,
    clock: &mut i64,
    n: usize,
) -> anyhow::Result<()> {
    let before = inserted(client, base).await?;
    let mut pushed = 0;
    while pushed < n {
        let mut lines: Vec<SynthLine> = Vec::with_capacity(1_100);
        while lines.len() < 1_000.min(n - pushed) {
            lines.extend(traffic.request(*clock));
            *clock += 3_000_000;
        }
        lines.truncate(n - pushed);
        pushed += lines.len();
        post(client, base, encode(lines)).await?;
    }
    while inserted(client, base).await? < before + n as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Live traffic at `INGEST_RATE` lines/s, stamped now, until `stop`.
async fn ingest(client: reqwest::Client, base: String, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut traffic = Traffic::new(11);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = now_ns();
        let mut lines = Vec::new();
        let mut t = now - 100_000_000;
        while lines.len() < INGEST_RATE / 10 {
            lines.extend(traffic.request(t));
            t += 1_000_000;
        }
        post(&client, &base, encode(lines)).await?;
    }
    Ok(())
}

async fn post(client: &reqwest::Client, base: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let resp = client
        .post(format!("{base}/loki/api/v1/push"))
        .bearer_auth(
            std::env::var("AILOGS_LOAD_PUSH_KEY")
                .or_else(|_| std::env::var("AILOGS_API_KEY"))
                .unwrap_or_default(),
        )
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(resp.status().as_u16() == 204, "push answered {}", resp.status());
    Ok(())
}

async fn health(client: &reqwest::Client, base: &str) -> anyhow::Result<serde_json::Value> {
    Ok(client
        .get(format!("{base}/api/v1/ai_logs/health"))
        .send()
        .await?
        .json()
        .await?)
}

async fn inserted(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    health(client, base).await?["components"]["views"]["inserted_total"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("health has no inserted_total"))
}

async fn held_lines(client: &reqwest::Client, base: &str) -> anyhow::Result<usize> {
    health(client, base).await?["components"]["views"]["lines"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| anyhow::anyhow!("health has no views.lines"))
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}
