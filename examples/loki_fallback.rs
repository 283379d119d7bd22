//! The Loki fallback measured against the fake Loki of the tests (LOKI.md §3 behaviour):
//!
//! 1. a view-only answer with and without Loki configured, interleaved in one run (the
//!    planner must cost a covered window nothing);
//! 2. a Loki-backed answer of 10,000 lines: cold (`cache=false`) and cached;
//! 3. peak memory while paginating 100,000 Loki lines under the line budget.
//!
//! cargo run --release --example loki_fallback

#[allow(dead_code)] // the tests use all of the fake; this run only part
#[path = "../tests/it/fake_loki/mod.rs"]
mod fake_loki;

use std::time::{Duration, Instant};

use ailogs::app::Application;
use ailogs::config::Config;
use fake_loki::{Entry, FakeLoki};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().expect("now fits")
}

fn line(i: usize) -> String {
    let level = if i.is_multiple_of(10) { "error" } else { "info" };
    json!({"level": level, "service": "api", "correlation_id": format!("r-{i}"),
        "model": "gpt-4o-mini", "input_tokens": 100 + i % 50, "output_tokens": 20,
        "message": format!("request {} served in {} ms", i, i % 900)})
    .to_string()
}

async fn start(config: Config) -> String {
    let app = Application::build(config).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

fn config(loki: Option<&str>, max_lines: usize) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    c.loki_url = loki.map(str::to_owned);
    c.loki.max_lines = max_lines;
    c
}

async fn push(client: &reqwest::Client, base: &str, lines: &[(i64, String)]) {
    for chunk in lines.chunks(5_000) {
        let values: Vec<Value> = chunk.iter().map(|(t, l)| json!([t.to_string(), l])).collect();
        let body = json!({"streams": [{"stream": {"service_name": "api"}, "values": values}]});
        let r = client
            .post(format!("{base}/loki/api/v1/push"))
            .json(&body)
            .send()
            .await
            .expect("push");
        assert_eq!(r.status().as_u16(), 204);
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (Duration, Value) {
    let t = Instant::now();
    let v: Value = client.get(url).send().await.expect("get").json().await.expect("json");
    (t.elapsed(), v)
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let client = reqwest::Client::new();
    let now = now_ns();
    let loki = FakeLoki::start(5_000, None).await;
    // Loki: 10,000 lines two to three hours ago (before ailogs started).
    let old: Vec<(i64, String)> = (0..10_000)
        .map(|i| (now - 3 * 3_600 * S + i as i64 * S / 2, line(i)))
        .collect();
    loki.push(
        &[("service_name", "api")],
        old.iter()
            .map(|(t, l)| Entry {
                ts_ns: *t,
                line: l.clone(),
                metadata: Default::default(),
            })
            .collect(),
    );
    // The views of both processes: 20,000 lines of the last 30 minutes.
    let recent: Vec<(i64, String)> = (0..20_000)
        .map(|i| (now - 1_800 * S + i as i64 * S / 12, line(i)))
        .collect();
    let without = start(config(None, 50_000)).await;
    let with = start(config(Some(&loki.url()), 50_000)).await;
    push(&client, &without, &recent).await;
    push(&client, &with, &recent).await;
    for base in [&without, &with] {
        loop {
            let (_, h) = get(&client, &format!("{base}/api/v1/ai_logs/health")).await;
            if h["components"]["views"]["lines"].as_u64() == Some(20_000) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // 1. View-only answers, interleaved.
    let q = "/api/v1/ai_logs/query?mode=errors&time_range=15m&limit=20";
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..4_000u32 {
        let (base, out) = if i.is_multiple_of(2) {
            (&without, &mut a)
        } else {
            (&with, &mut b)
        };
        let (d, v) = get(&client, &format!("{base}{q}")).await;
        assert_eq!(v["source"], "views");
        out.push(d);
    }
    println!("view-only /query (errors, 15m, 20k held), 2000 each, interleaved:");
    println!(
        "  without Loki: p50 {:.3} ms  p99 {:.3} ms",
        pct(a.clone(), 0.5),
        pct(a, 0.99)
    );
    println!(
        "  with Loki:    p50 {:.3} ms  p99 {:.3} ms",
        pct(b.clone(), 0.5),
        pct(b, 0.99)
    );

    // 2. A Loki-backed answer of 10,000 lines.
    let q = format!(
        "{with}/api/v1/ai_logs/query?mode=troubleshoot&severity_threshold=info&services=api&time_range=4h&limit=100"
    );
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let (d, v) = get(&client, &format!("{q}&cache=false")).await;
        let loki_lines = v["windows"]
            .as_array()
            .and_then(|w| w.iter().find(|w| w["source"] == "loki"))
            .map(|w| w["lines"].clone());
        assert_eq!(loki_lines, Some(json!(10_000)), "{}", v["windows"]);
        cold.push(d);
        let (d, v) = get(&client, &q).await;
        assert_eq!(v["total_matched"], 30_000);
        warm.push(d);
    }
    println!("Loki-backed /query, 10,000 lines from Loki + 20,000 from the views, 20 each:");
    println!(
        "  cold (cache=false): p50 {:.1} ms  max {:.1} ms",
        pct(cold.clone(), 0.5),
        pct(cold, 1.0)
    );
    println!(
        "  cached:             p50 {:.1} ms  max {:.1} ms",
        pct(warm.clone(), 0.5),
        pct(warm, 1.0)
    );

    // 3. Peak memory while paginating 100,000 lines under the default 50,000-line budget.
    let big: Vec<Entry> = (0..100_000)
        .map(|i| Entry {
            ts_ns: now - 10 * 3_600 * S + i as i64 * S / 4,
            line: line(i),
            metadata: Default::default(),
        })
        .collect();
    loki.push(&[("service_name", "big")], big);
    let before = peak_rss_mb();
    let (d, v) = get(
        &client,
        &format!(
            "{with}/api/v1/ai_logs/query?services=big&time_range=12h&limit=10&cache=false&severity_threshold=info"
        ),
    )
    .await;
    let after = peak_rss_mb();
    println!(
        "paginating: {} lines read in {} requests ({:.0} ms), truncated: {}; peak RSS {before:.0} -> {after:.0} MB (this process holds the fake Loki's 130,000 lines too)",
        v["windows"][1]["lines"],
        v["windows"][1]["requests"],
        d.as_secs_f64() * 1000.0,
        v["truncated"],
    );
}
