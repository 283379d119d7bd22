//! `POST /export`: formats, columns, RFC 4180, gzip, errors, and a client that goes away.

use std::io::Read;
use std::time::{Duration, Instant};

use ailogs_pipeline::{Enriched, Level, LogRecord};
use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns, test_config};

const TRICKY: &str = "upstream said \"no\", then\nretried; 50% done\r\nend";

async fn app_with_lines() -> TestApp {
    let app = TestApp::start().await;
    let now = now_ns();
    let lines: Vec<(i64, String)> = vec![
        (
            now - 5_000_000_000,
            json!({"level": "info", "message": "plain start"}).to_string(),
        ),
        (
            now - 4_000_000_000,
            json!({"level": "error", "message": TRICKY, "correlation_id": "req-1"}).to_string(),
        ),
        (
            now - 3_000_000_000,
            json!({"level": "error", "message": "OpenAI API error: 429 Too Many Requests, rate limit exceeded",
                   "correlation_id": "req-2", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 20,
                   "workspace_id": "ws-1", "request_type": "ai_completion"})
            .to_string(),
        ),
    ];
    app.push_stream(json!({"service": "gateway"}), &lines).await;
    app.wait_inserted(3).await;
    app
}

async fn export(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/ai_logs/export"))
        .json(&body)
        .send()
        .await
        .expect("export request")
}

#[tokio::test]
async fn csv_round_trips_quotes_and_newlines_with_enrichment_columns() {
    let app = app_with_lines().await;
    let resp = export(&app, json!({"format": "csv", "time_range": "15m"})).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["x-export-total"], "3");
    assert_eq!(headers["x-export-complete"], "true");
    assert!(headers["content-type"].to_str().expect("ascii").starts_with("text/csv"));
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(disposition.starts_with("attachment; filename=\"ailogs-export-") && disposition.ends_with(".csv\""));
    let text = resp.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_owned).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("RFC 4180 record")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert_eq!(&rows[0][col("message")], "plain start", "oldest first");
    assert_eq!(&rows[1][col("message")], TRICKY, "quotes, commas and newlines survive");
    let ai = &rows[2];
    assert!(
        ai[col("patterns")].contains("rate"),
        "catalog pattern ids: {:?}",
        &ai[col("patterns")]
    );
    assert!(!ai[col("pattern_categories")].is_empty(), "{:?}", &ai[col("patterns")]);
    assert_eq!(ai[col("template_id")].len(), 16);
    assert_eq!(&ai[col("input_tokens")], "1000");
    let cost: f64 = ai[col("cost_usd")].parse().expect("a priced cost");
    assert!(cost > 0.0);
    assert_eq!(
        &rows[0][col("cost_usd")],
        "",
        "a line that is no AI request has no cost"
    );
    app.stop().await;
}

#[tokio::test]
async fn json_ndjson_gzip_and_chosen_fields() {
    let app = app_with_lines().await;
    let resp = export(
        &app,
        json!({"format": "json", "mode": "errors", "fields": ["message", "level"]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-export-total"], "2");
    let text = resp.text().await.expect("body");
    let array: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(array.len(), 2);
    for row in &array {
        assert_eq!(
            row.as_object().expect("object").len(),
            2,
            "only the chosen fields: {row}"
        );
        assert_eq!(row["level"], "error");
    }
    assert!(text.starts_with("[{\"message\":"), "in the order asked: {text}");
    let resp = export(
        &app,
        json!({"format": "ndjson", "compress": "gzip", "services": ["gateway"], "limit": 2}),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    assert_eq!(resp.headers()["x-export-total"], "2");
    assert_eq!(resp.headers()["x-export-matched"], "3");
    assert_eq!(resp.headers()["x-export-complete"], "false", "a limit leaves lines out");
    let gz = resp.bytes().await.expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gzip");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["correlation_id"], "req-1");
    let resp = export(&app, json!({"services": ["nobody"]})).await;
    assert_eq!(resp.headers()["x-export-total"], "0");
    assert_eq!(resp.text().await.expect("body"), "", "no lines, no bytes");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = TestApp::start().await;
    for (body, field) in [
        (json!({"format": "xml"}), "format"),
        (json!({"fields": ["mesage"]}), "fields"),
        (json!({"time_range": "forever"}), "time_range"),
        (json!({"severity": "error"}), "severity"),
        (json!({"limit": -1}), "limit"),
        (json!({"services": "api"}), "services"),
    ] {
        let resp = export(&app, body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.expect("json error");
        assert_eq!(err["error"], "invalid_parameter", "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/ai_logs/export"))
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    app.stop().await;
}

/// Lines put straight into the views: the export, not ingest, is under test.
pub fn fill_views(app: &TestApp, n: usize) {
    let now = now_ns();
    let start = now - 600_000_000_000;
    let step = 600_000_000_000 / n as i64;
    let batch = 50_000;
    for chunk_start in (0..n).step_by(batch) {
        let records: Vec<Enriched> = (chunk_start..(chunk_start + batch).min(n))
            .map(|i| {
                let mut r = LogRecord::new(
                    start + i as i64 * step,
                    "bulk",
                    if i % 10 == 0 { Level::Error } else { Level::Info },
                    format!("request {i} finished in {} ms", i % 997),
                );
                r.correlation_id = Some(format!("req-{i}").into());
                Enriched::new(r)
            })
            .collect();
        app.state.views.insert(records, Instant::now());
    }
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_export() {
    let mut config = test_config();
    config.views.max_lines = 200_000;
    let app = TestApp::with_config(config).await;
    fill_views(&app, 200_000);
    let aborted = || {
        app.state
            .metrics
            .exports
            .with_label_values(&["ndjson", "aborted"])
            .get()
    };
    let mut resp = export(&app, json!({"time_range": "1h"})).await;
    assert_eq!(resp.headers()["x-export-total"], "200000");
    let first = resp.chunk().await.expect("a chunk").expect("not empty");
    assert!(!first.is_empty());
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(30);
    while aborted() == 0 {
        assert!(Instant::now() < deadline, "the writer did not notice the client left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = app.state.metrics.export_lines.with_label_values(&["ndjson"]).get();
    assert!(written < 200_000, "stopped early: {written} lines written");
    app.stop().await;
}
