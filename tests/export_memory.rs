//! A million-line export in every format, in bounded memory. Its own test binary: the peak
//! RSS it measures must be this export's alone, not that of tests running beside it.

#[path = "it/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Instant;

use ailogs_pipeline::{Enriched, Level, LogRecord};
use serde_json::json;

use harness::{TestApp, now_ns, test_config};

const LINES: usize = 1_000_000;
/// The stated bound: what an export may add to the server's peak RSS, whatever its size.
const MAX_GROWTH_MIB: f64 = 64.0;

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets the peak RSS (VmHWM) to the current RSS.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM through /proc/self/clear_refs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_lines_export_in_bounded_memory_in_every_format() {
    let mut config = test_config();
    config.views.max_lines = LINES;
    let app = TestApp::with_config(config).await;
    let now = now_ns();
    let start = now - 1_800_000_000_000;
    for chunk in (0..LINES).collect::<Vec<_>>().chunks(100_000) {
        let records: Vec<Enriched> = chunk
            .iter()
            .map(|&i| {
                let mut r = LogRecord::new(
                    start + i as i64 * 1_000_000,
                    "bulk",
                    Level::Info,
                    format!("request {i} finished in {} ms", i % 997),
                );
                r.correlation_id = Some(format!("req-{i}").into());
                Enriched::new(r)
            })
            .collect();
        app.state.views.insert(records, Instant::now());
    }
    assert_eq!(app.state.views.stats().held.inserted_total, LINES as u64);
    for (format, compress) in [("ndjson", "none"), ("json", "none"), ("csv", "none"), ("csv", "gzip")] {
        reset_peak();
        let before = status_kib("VmRSS");
        let started = Instant::now();
        let mut resp = app
            .client
            .post(app.url("/api/v1/ai_logs/export"))
            .json(&json!({"time_range": "1h", "format": format, "compress": compress}))
            .send()
            .await
            .expect("export request");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-export-total"], LINES.to_string().as_str());
        let mut newlines = 0usize;
        let mut bytes = 0usize;
        let mut gz = Vec::new();
        while let Some(chunk) = resp.chunk().await.expect("chunk") {
            bytes += chunk.len();
            if compress == "gzip" {
                // Only the first chunk is kept, to check it is gzip; the rest is counted.
                if gz.is_empty() {
                    gz.extend_from_slice(&chunk);
                }
            } else {
                newlines += chunk.iter().filter(|&&b| b == b'\n').count();
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let growth_mib = (status_kib("VmHWM") - before) / 1024.0;
        match (format, compress) {
            (_, "gzip") => assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic"),
            // One object per line; the JSON array puts a newline after each element;
            // CSV has a header record (no field here holds a newline).
            ("csv", _) => assert_eq!(newlines, LINES + 1),
            _ => assert_eq!(newlines, LINES),
        }
        eprintln!(
            "export {format}/{compress}: {LINES} lines, {:.1} MB in {secs:.2} s ({:.0} lines/s), peak RSS +{growth_mib:.1} MiB",
            bytes as f64 / 1e6,
            LINES as f64 / secs
        );
        assert!(
            growth_mib < MAX_GROWTH_MIB,
            "{format}/{compress}: the export grew peak RSS by {growth_mib:.1} MiB (bound {MAX_GROWTH_MIB} MiB)"
        );
    }
    app.stop().await;
}
