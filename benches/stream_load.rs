//! Load harness for the WebSocket stream: an in-process ailogs (embedded), N subscribers with
//! mixed filters, and error lines that match the pattern catalog pushed at a fixed rate
//! (each raises a `log` for matching subscribers and, once per pattern and fold window, an
//! `alert`). Reports delivered messages, drops, end-to-end latency (push to client receive,
//! including the ingest queue), the server's own histogram from event to send, and memory.
//!
//! cargo bench --bench stream_load   (STREAM_SUBSCRIBERS=2000 STREAM_RATE=500 STREAM_SECONDS=10)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ailogs::app::Application;
use ailogs::config::Config;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map_or(0.0, |pages| pages * 4096.0 / 1e6)
}

#[derive(Default)]
struct Totals {
    messages: AtomicU64,
    dropped: AtomicU64,
    closed: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

const SERVICES: [&str; 4] = ["api", "anythingllm", "worker", "browser"];
const MESSAGES: [&str; 4] = [
    "upstream request timed out after 30s",
    "Rate limit exceeded for gpt-4o",
    "DB connection pool exhausted",
    "connection refused by vector store",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env("STREAM_SUBSCRIBERS", 2000) as usize;
    let rate = env("STREAM_RATE", 500);
    let seconds = env("STREAM_SECONDS", 10);
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let rss_before = rss_mb();

    let totals = Arc::new(Totals::default());
    let ws_url = format!("{}/api/v1/ai_logs/stream", base.replacen("http://", "ws://", 1));
    let mut clients = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await?;
        let filter = match i % 4 {
            0 => json!({"severity_threshold": "warn"}),
            1 => json!({"services": [SERVICES[i % SERVICES.len()]], "severity_threshold": "error"}),
            2 => json!({"pattern_alerts": ["timeout", "rate_limit"], "logs": false}),
            _ => json!({"services": ["api", "worker"], "pattern_alerts": ["connectivity"]}),
        };
        ws.send(Message::text(
            json!({"type": "subscribe", "filter": filter}).to_string(),
        ))
        .await?;
        let totals = Arc::clone(&totals);
        clients.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        totals.closed.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match v["type"].as_str() {
                    Some("log") => {
                        totals.messages.fetch_add(1, Ordering::Relaxed);
                        let sent: i64 = v["log"]["message"]
                            .as_str()
                            .and_then(|m| m.rsplit(" #").next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        if sent > 0 {
                            totals
                                .latencies_us
                                .lock()
                                .push(((now_ns() - sent).max(0) / 1000) as u64);
                        }
                    }
                    Some("alert") => {
                        totals.messages.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("dropped") => {
                        totals
                            .dropped
                            .fetch_add(v["count"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }));
    }
    println!("{subscribers} subscribers connected; pushing {rate} error lines/s for {seconds} s");

    let client = reqwest::Client::new();
    let push = format!("{base}/loki/api/v1/push");
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut pushed = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let values: Vec<Value> = (0..per_tick)
            .map(|k| {
                let n = pushed + k;
                let t = now_ns();
                let line = json!({
                    "service": SERVICES[(n % 4) as usize], "level": "error",
                    "message": format!("{} #{t}", MESSAGES[(n / 4 % 4) as usize]),
                });
                json!([t.to_string(), line.to_string()])
            })
            .collect();
        pushed += per_tick;
        let body = json!({"streams": [{"stream": {"app": "load"}, "values": values}]});
        client.post(&push).json(&body).send().await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_mb();
    let metrics = client.get(format!("{base}/metrics")).send().await?.text().await?;
    let _ = stop_tx.send(());
    let _ = server.await;
    for c in clients {
        c.abort();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut lat = std::mem::take(&mut *totals.latencies_us.lock());
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "pushed {pushed} lines; delivered {} messages ({:.0}/s), dropped {}, closed by server {}",
        totals.messages.load(Ordering::Relaxed),
        totals.messages.load(Ordering::Relaxed) as f64 / seconds as f64,
        totals.dropped.load(Ordering::Relaxed),
        totals.closed.load(Ordering::Relaxed),
    );
    println!(
        "push -> client receive (includes the ingest queue): p50 {:?} us, p99 {:?} us, max {:?} us ({} samples)",
        pct(0.50),
        pct(0.99),
        lat.last(),
        lat.len()
    );
    println!("server event -> send histogram (ailogs_stream_delivery_seconds):");
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("ailogs_stream_delivery_seconds"))
    {
        println!("  {l}");
    }
    println!(
        "resident memory: {rss_before:.0} MB before subscribers, {rss_after:.0} MB at the end (server and clients in one process)"
    );
    Ok(())
}
