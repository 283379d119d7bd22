//! Load harness for the WebSocket stream, with the subscribers in separate processes: this
//! process runs ailogs (embedded) and pushes error lines that match the pattern catalog at
//! a fixed rate; it starts STREAM_CLIENT_PROCS copies of itself, each holding its share of
//! STREAM_SUBSCRIBERS connections with mixed filters. Each line carries its push time, so
//! clients measure push -> receive (the ingest queue, processing and fan-out included).
//! Reports delivered messages, drops, latency percentiles from the clients and from the
//! server's own histogram (event published -> WebSocket send), and the server's memory.
//!
//! STREAM_STALLED subscribers (the first ones) subscribe to everything and never read, to
//! show they cost the others nothing; STREAM_LINE_BYTES pads each line so that they fill
//! their socket buffers within the run.
//!
//! cargo bench --bench stream_load
//!   STREAM_SUBSCRIBERS=10000 STREAM_RATE=1000 STREAM_SECONDS=10 STREAM_CLIENT_PROCS=2
//!   STREAM_STALLED=0 STREAM_LINE_BYTES=0

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs::app::Application;
use ailogs::config::Config;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Batches free thousands of records at once, which glibc's malloc handles poorly
/// (consolidation); mimalloc keeps the core ~18% faster on the same work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in a client process: "<ws url> <first subscriber index> <count> <stalled>".
const CLIENT_ROLE: &str = "STREAM_LOAD_CLIENT";

const SERVICES: [&str; 4] = ["api", "anythingllm", "worker", "browser"];
const MESSAGES: [&str; 4] = [
    "upstream request timed out after 30s",
    "Rate limit exceeded for gpt-4o",
    "DB connection pool exhausted",
    "connection refused by vector store",
];

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

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match std::env::var(CLIENT_ROLE) {
        Ok(spec) => runtime.block_on(clients(&spec)),
        Err(_) => runtime.block_on(server()),
    }
}

#[derive(serde::Deserialize)]
struct ServerMessage<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    log: Option<LogPart<'a>>,
    count: Option<u64>,
}

#[derive(serde::Deserialize)]
struct LogPart<'a> {
    /// Borrowed: the harness's messages have nothing to unescape.
    message: &'a str,
}

/// What one client process saw.
#[derive(Default)]
struct Seen {
    messages: u64,
    alerts: u64,
    dropped: u64,
    closed: u64,
}

/// A client process: connects its subscribers, prints `ready`, reads until stdin closes,
/// then prints its totals and latency histogram as one JSON line.
async fn clients(spec: &str) -> anyhow::Result<()> {
    let mut parts = spec.split_whitespace();
    let url = parts.next().unwrap_or_default().to_owned();
    let first: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let count: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let stalled: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    // Connections that never read: held open, never polled.
    let mut held = Vec::new();
    let seen = Arc::new(Mutex::new((Seen::default(), latency_histogram())));
    let mut tasks = Vec::with_capacity(count);
    for i in first..first + count {
        // tungstenite zeroes its whole read buffer (128 KiB by default) on every read; the
        // clients share the server's cores, so they use a small one.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), false).await?;
        if i < stalled {
            let everything = json!({"type": "subscribe", "filter": {"severity_threshold": "debug"}});
            ws.send(Message::text(everything.to_string())).await?;
            held.push(ws);
            continue;
        }
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
        let seen = Arc::clone(&seen);
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let text = match msg {
                    Message::Text(text) => text,
                    Message::Close(_) => {
                        seen.lock().0.closed += 1;
                        break;
                    }
                    _ => continue,
                };
                // Only the fields the harness needs: the clients share the machine with
                // the server, so they should cost it little.
                let Ok(m) = serde_json::from_str::<ServerMessage<'_>>(&text) else {
                    continue;
                };
                let mut s = seen.lock();
                match m.kind {
                    "log" => {
                        s.0.messages += 1;
                        let pushed: Option<i64> = m
                            .log
                            .and_then(|l| l.message.rsplit(" #").next().and_then(|n| n.parse().ok()));
                        if let Some(pushed) = pushed {
                            let us = ((now_ns() - pushed).max(1) / 1000).max(1) as u64;
                            s.1.saturating_record(us);
                        }
                    }
                    "alert" => {
                        s.0.messages += 1;
                        s.0.alerts += 1;
                    }
                    "dropped" => s.0.dropped += m.count.unwrap_or(0),
                    _ => {}
                }
            }
        }));
    }
    println!("ready");
    std::io::stdout().flush()?;
    let cpu_connected = cpu_seconds();
    // Runs until the harness closes stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().lock().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    let s = seen.lock();
    let hist: Vec<(u64, u64)> =
        s.1.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
    println!(
        "{}",
        json!({"messages": s.0.messages, "alerts": s.0.alerts, "dropped": s.0.dropped, "closed": s.0.closed,
            "cpu_s": cpu_seconds() - cpu_connected, "latency_us": hist})
    );
    Ok(())
}

fn start_clients(url: &str, subscribers: usize, stalled: usize, procs: usize) -> anyhow::Result<Vec<Child>> {
    let exe = std::env::current_exe()?;
    let per = subscribers.div_ceil(procs);
    let mut children = Vec::new();
    for p in 0..procs {
        let first = p * per;
        let count = per.min(subscribers.saturating_sub(first));
        let mut child = Command::new(&exe)
            .env(CLIENT_ROLE, format!("{url} {first} {count} {stalled}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.as_mut().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "client process {p} did not start: {line:?}");
        children.push(child);
    }
    Ok(children)
}

/// Quantile of the server's Prometheus histogram: the upper bound of the bucket it falls in.
fn bucket_quantile(metrics: &str, name: &str, q: f64) -> Option<String> {
    let buckets: Vec<(String, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{le=\"")))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            Some((le.to_owned(), count.parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, c)| *c >= total * q)
        .map(|(le, _)| format!("<= {le} s"))
}

async fn server() -> anyhow::Result<()> {
    let subscribers = env("STREAM_SUBSCRIBERS", 2000) as usize;
    let rate = env("STREAM_RATE", 500);
    let seconds = env("STREAM_SECONDS", 10);
    let procs = env("STREAM_CLIENT_PROCS", 2).max(1) as usize;
    let stalled = env("STREAM_STALLED", 0) as usize;
    let padding = "x".repeat(env("STREAM_LINE_BYTES", 0) as usize);
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.stream.max_subscribers = subscribers.max(1) + 10;
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let rss_idle = rss_mb();
    let ws_url = format!("{}/api/v1/ai_logs/stream", base.replacen("http://", "ws://", 1));
    let connecting = Instant::now();
    let url = ws_url.clone();
    let mut children = tokio::task::spawn_blocking(move || start_clients(&url, subscribers, stalled, procs)).await??;
    let rss_connected = rss_mb();
    println!(
        "{subscribers} subscribers in {procs} client processes connected in {:.1} s; pushing {rate} error lines/s for {seconds} s",
        connecting.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::new();
    let push = format!("{base}/loki/api/v1/push");
    // Every 10 ms at 100 lines/s and more; one line per tick below.
    let (per_tick, tick_every) = if rate >= 100 {
        (rate / 100, Duration::from_millis(10))
    } else {
        (1, Duration::from_secs_f64(1.0 / rate.max(1) as f64))
    };
    let cpu_start = cpu_seconds();
    let started = Instant::now();
    let mut tick = tokio::time::interval(tick_every);
    let mut pushed = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let values: Vec<Value> = (0..per_tick)
            .map(|k| {
                let n = pushed + k;
                let t = now_ns();
                let line = json!({
                    "service": SERVICES[(n % 4) as usize], "level": "error",
                    "message": format!("{} {padding} #{t}", MESSAGES[(n / 4 % 4) as usize]),
                });
                json!([t.to_string(), line.to_string()])
            })
            .collect();
        pushed += per_tick;
        let body = json!({"streams": [{"stream": {"app": "load"}, "values": values}]});
        client.post(&push).json(&body).send().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_cpu = cpu_seconds() - cpu_start;
    let rss_end = rss_mb();
    let metrics = client.get(format!("{base}/metrics")).send().await?.text().await?;
    let health: Value = client
        .get(format!("{base}/api/v1/ai_logs/health"))
        .send()
        .await?
        .json()
        .await?;

    let results = tokio::task::spawn_blocking(move || {
        children
            .iter_mut()
            .map(|c| {
                drop(c.stdin.take());
                let mut line = String::new();
                if let Some(out) = c.stdout.as_mut() {
                    let _ = std::io::BufReader::new(out).read_line(&mut line);
                }
                let _ = c.wait();
                serde_json::from_str::<Value>(&line).unwrap_or(Value::Null)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let _ = stop_tx.send(());
    let _ = server.await;

    let mut latency = latency_histogram();
    let (mut messages, mut alerts, mut dropped, mut closed) = (0, 0, 0, 0);
    let mut client_cpu = 0.0;
    for r in &results {
        client_cpu += r["cpu_s"].as_f64().unwrap_or(0.0);
        messages += r["messages"].as_u64().unwrap_or(0);
        alerts += r["alerts"].as_u64().unwrap_or(0);
        dropped += r["dropped"].as_u64().unwrap_or(0);
        closed += r["closed"].as_u64().unwrap_or(0);
        for pair in r["latency_us"].as_array().into_iter().flatten() {
            if let (Some(v), Some(n)) = (pair[0].as_u64(), pair[1].as_u64()) {
                latency.saturating_record_n(v, n);
            }
        }
    }
    if stalled > 0 {
        let too_slow = metrics
            .lines()
            .find(|l| l.starts_with("ailogs_stream_closed_total{reason=\"too_slow\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .unwrap_or(0);
        println!(
            "{stalled} stalled subscribers (not in the figures below): {} events lost in their inboxes, {too_slow} closed as too slow",
            health["components"]["stream"]["hub"]["lost_untold"]
        );
    }
    println!(
        "pushed {pushed} lines ({:.0}/s); delivered {messages} messages ({:.0}/s, {alerts} alerts), dropped {dropped}, closed by server {closed}",
        pushed as f64 / elapsed,
        messages as f64 / elapsed,
    );
    println!(
        "push -> client receive: p50 {} us, p99 {} us, p99.9 {} us, max {} us ({} samples)",
        latency.value_at_quantile(0.50),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max(),
        latency.len()
    );
    println!(
        "cpu over the run: server {server_cpu:.1} s (pushing included), clients {client_cpu:.1} s, of {:.0} core-seconds",
        (elapsed + 2.0) * std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
    );
    let name = "ailogs_stream_delivery_seconds";
    println!(
        "server, event published -> send: p50 {}, p99 {}",
        bucket_quantile(&metrics, name, 0.50).unwrap_or_default(),
        bucket_quantile(&metrics, name, 0.99).unwrap_or_default()
    );
    println!(
        "server resident memory: {rss_idle:.0} MB idle, {rss_connected:.0} MB with subscribers ({:.1} KB each), {rss_end:.0} MB at the end",
        (rss_connected - rss_idle) * 1000.0 / subscribers.max(1) as f64
    );
    Ok(())
}
