//! `ailogs demo`: serves, then acts as Promtail for a simulated AI application, pushing
//! protobuf+snappy batches to its own Loki endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ailogs_pipeline::synth::{Incident, SynthLine, Traffic};

use crate::app::{Application, shutdown_signal};
use crate::cli::DemoArgs;
use crate::config::Config;
use crate::ingest::labels;
use crate::ingest::loki_proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp, encode_snappy};

const NS: i64 = 1_000_000_000;

pub async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    // With API keys configured, the simulated shipper pushes with a key of its own, made for
    // this run and known to no one else.
    let push_key = (!config.auth.api_keys.is_empty()).then(|| {
        let (key, entry) = crate::auth::generate_entry("demo-shipper", crate::config::Role::Ingest, None);
        config.auth.api_keys.push(entry);
        key
    });
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    print_banner(addr);
    let generator = tokio::spawn(generate(
        addr,
        args.rate.max(1),
        args.backfill_minutes,
        args.seed,
        push_key,
    ));
    let generator_handle = generator.abort_handle();
    let stop = async move {
        match args.duration_s {
            Some(s) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(s)) => {},
                    () = shutdown_signal() => {},
                }
            }
            None => shutdown_signal().await,
        }
        // Stop the traffic before the server stops accepting it.
        generator_handle.abort();
    };
    app.run_until_stopped(stop).await
}

fn print_banner(addr: SocketAddr) {
    let base = format!("http://{addr}");
    println!(
        "\nailogs demo is running at {base}  (embedded mode: nothing is durable)\n\
         simulated services: api, anythingllm, admin-ui, browser, worker; incidents come and go\n\n\
         try:\n  \
         curl -s '{base}/api/v1/ai_logs/query?mode=errors&time_range=15m&aggregation=by_error' | jq\n  \
         curl -s '{base}/api/v1/ai_logs/query?mode=troubleshoot&services=api&include_context=3&deduplicate=true&format=narrative' | jq -r .narrative\n  \
         curl -s '{base}/api/v1/ai_logs/query?mode=performance&time_range=1h&limit=5' | jq '.summary, .stats'\n  \
         curl -s '{base}/api/v1/ai_logs/analyze?time_range=15m' | jq '.insights[:3]'\n  \
         curl -s '{base}/api/v1/ai_logs/correlate?service=api' | jq\n  \
         curl -s \"{base}/api/v1/ai_logs/correlate?correlation_id=$(curl -s '{base}/api/v1/ai_logs/query?mode=errors&time_range=15m&limit=1' | jq -r '.lines[0].correlation_id')\" | jq '.root_cause, .critical_path'\n\n\
         health: {base}/api/v1/ai_logs/health   metrics: {base}/metrics   ctrl-c stops\n"
    );
}

/// Backfills `backfill_minutes` of traffic (with one incident of each kind), then pushes live
/// traffic every 200 ms. A line is pushed only once its timestamp has come (a timed-out model
/// call is logged 60 s after the request), as a real shipper would see it.
async fn generate(addr: SocketAddr, rate: u32, backfill_minutes: u32, seed: u64, key: Option<String>) {
    let url = format!("http://{addr}/loki/api/v1/push");
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = key.and_then(|k| reqwest::header::HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap_or_default();
    let mut traffic = Traffic::new(seed);
    let mut pending: Vec<SynthLine> = Vec::new();
    let now = now_ns();
    let per_second = i64::from(rate);
    let mut t = now - i64::from(backfill_minutes) * 60 * NS;
    let mut second = 0usize;
    while t < now {
        // Play each kind of incident once during the backfill.
        if second % 150 == 75 {
            let incident = Incident::ALL[(second / 150) % Incident::ALL.len()];
            traffic.start_incident(incident, rate * 20);
        }
        pending.extend((0..per_second).flat_map(|i| traffic.request(t + i * NS / per_second)));
        t += NS;
        second += 1;
        push(&client, &url, due(&mut pending, t)).await;
    }
    tracing::info!(minutes = backfill_minutes, "demo backfill pushed");
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let now = now_ns();
        let n = (rate / 5).max(1);
        pending.extend((0..n).flat_map(|i| traffic.request(now + i64::from(i) * NS / 5 / i64::from(n))));
        push(&client, &url, due(&mut pending, now)).await;
    }
}

/// Takes the lines whose time has come out of `pending`.
fn due(pending: &mut Vec<SynthLine>, now: i64) -> Vec<SynthLine> {
    let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(pending).into_iter().partition(|l| l.ts_ns <= now);
    *pending = later;
    ready
}

async fn push(client: &reqwest::Client, url: &str, lines: Vec<SynthLine>) {
    if lines.is_empty() {
        return;
    }
    let body = encode(lines);
    let sent = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => tracing::warn!(status = %resp.status(), "demo push refused"),
        Err(e) => tracing::warn!(error = %e, "demo push failed"),
    }
}

/// Groups lines into one stream per service, labelled as a Promtail scrape job would.
pub fn encode(lines: Vec<SynthLine>) -> Vec<u8> {
    let mut streams: BTreeMap<&str, Vec<SynthLine>> = BTreeMap::new();
    for l in lines {
        streams.entry(l.service).or_default().push(l);
    }
    let streams = streams
        .into_iter()
        .map(|(service, mut lines)| {
            lines.sort_by_key(|l| l.ts_ns);
            let labels: BTreeMap<String, String> = [("app", service), ("env", "demo"), ("job", "ailogs-demo")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            StreamAdapter {
                labels: labels::format(&labels).into_bytes(),
                entries: lines
                    .into_iter()
                    .map(|l| EntryAdapter {
                        timestamp: Some(Timestamp::from_ns(l.ts_ns)),
                        line: l.line.into_bytes(),
                        structured_metadata: Vec::new(),
                        parsed: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            }
        })
        .collect();
    encode_snappy(&PushRequest {
        streams,
        format: Vec::new(),
    })
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}
