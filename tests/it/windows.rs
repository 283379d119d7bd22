//! Absolute windows: `start` and `end` (RFC 3339, Unix seconds or nanoseconds) select exactly
//! the lines between them, in the views, from Loki for a window older than the views, and in
//! an export; the answer and its summary name the window; bad combinations are a 400 naming
//! the field.

use std::collections::BTreeMap;

use ailogs::config::Config;
use serde_json::{Value, json};

use crate::fake_loki::{Entry, FakeLoki};
use crate::harness::{TestApp, now_ns, rfc3339, test_config};

const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;

fn line(i: i64) -> String {
    json!({"level": "error", "service": "api", "message": format!("upstream call {i} failed")}).to_string()
}

/// A line a minute for the last hour in the views; the two hours before only in Loki.
async fn app(loki: &FakeLoki, now: i64) -> TestApp {
    let old: Vec<Entry> = (0..120)
        .map(|i| Entry {
            ts_ns: now - 180 * MIN + i * MIN,
            line: line(1_000 + i),
            metadata: BTreeMap::new(),
        })
        .collect();
    loki.push(&[("service_name", "api")], old);
    let mut config: Config = test_config();
    config.loki_url = Some(loki.url());
    let app = TestApp::with_config(config).await;
    let recent: Vec<(i64, String)> = (0..60).map(|i| (now - 60 * MIN + i * MIN, line(i))).collect();
    app.push_stream(json!({"service_name": "api"}), &recent).await;
    app.wait_inserted(60).await;
    app
}

#[tokio::test]
async fn start_and_end_select_exactly_the_lines_between_them() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let app = app(&loki, now).await;
    // Lines 10..=19 of the views, by RFC 3339 and by Unix seconds with a fraction.
    let (start, end) = (now - 50 * MIN, now - 41 * MIN);
    let seconds = |ns: i64| format!("{}.{:09}", ns / S, ns % S);
    for (s, e) in [(rfc3339(start), rfc3339(end)), (seconds(start), seconds(end))] {
        let q = format!("/api/v1/ai_logs/query?services=api&start={s}&end={e}&limit=100");
        let (status, body) = app.get_json(&q).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_matched"], 10, "{body}");
        assert_eq!(body["source"], "views", "the views hold the window: {body}");
        assert_eq!(body["window"]["start"], rfc3339(start), "{}", body["window"]);
        assert_eq!(body["window"]["time_range"], Value::Null);
        assert!(
            body["summary"].as_str().is_some_and(|t| t.contains("between")),
            "{}",
            body["summary"]
        );
    }
    // A window older than the views is read from Loki: lines 1030..=1059.
    let (start, end) = (now - 150 * MIN, now - 121 * MIN);
    let q = format!(
        "/api/v1/ai_logs/query?services=api&start={}&end={}&limit=100",
        start, end
    );
    let (status, body) = app.get_json(&q).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_matched"], 30, "{body}");
    assert_eq!(body["source"], "loki", "{body}");
    // `end` with `time_range` back from it: the 5 minutes before line 30.
    let q = format!(
        "/api/v1/ai_logs/query?services=api&end={}&time_range=5m&limit=100",
        rfc3339(now - 30 * MIN)
    );
    let (_, body) = app.get_json(&q).await;
    assert_eq!(body["total_matched"], 6, "lines 25..=30: {body}");
    // An export takes the same window.
    let resp = app
        .client
        .post(app.url("/api/v1/ai_logs/export"))
        .json(&json!({"format": "ndjson", "services": ["api"], "start": rfc3339(now - 50 * MIN), "end": rfc3339(now - 41 * MIN)}))
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body").lines().count(), 10);
    app.stop().await;
}

#[tokio::test]
async fn window_parameters_that_do_not_make_one_window_are_refused_by_name() {
    let loki = FakeLoki::start(5_000, None).await;
    let app = TestApp::with_config({
        let mut c = test_config();
        c.loki_url = Some(loki.url());
        c
    })
    .await;
    let now = now_ns();
    for (query, field) in [
        ("start=yesterday".to_owned(), "start"),
        (format!("start={}&time_range=1h", now / S - 60), "time_range"),
        (format!("start={}&end={}", now / S, now / S - 60), "end"),
        (format!("start={}", now / S - 40 * 86_400), "start"),
        (format!("start={}&end={}", now / S - 40 * 86_400, now / S), "end"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/ai_logs/query?{query}")).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
    app.stop().await;
}
