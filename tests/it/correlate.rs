//! /correlate on pushed requests with a known answer: the request flow, the root cause with
//! its evidence, a live request, the service neighbourhood, and 4xx answers.

use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns, strings};

const MS: i64 = 1_000_000;

#[tokio::test]
async fn correlate_explains_a_cascade_and_maps_dependencies() {
    let app = TestApp::start().await;
    let t = now_ns() - 600_000 * MS;
    let mut lines: Vec<(i64, String)> = Vec::new();
    let mut line = |dt_ms: i64, l: Value| lines.push((t + dt_ms * MS, l.to_string()));
    // req-1: browser -> api -> llm-gateway -> vector-db; the vector store times out and
    // the callers fail after it.
    line(
        0,
        json!({"service": "browser", "correlation_id": "req-1", "message": "send"}),
    );
    line(
        5,
        json!({"service": "api", "correlation_id": "req-1", "message": "POST /chat", "target_service": "llm-gateway"}),
    );
    line(
        10,
        json!({"service": "llm-gateway", "correlation_id": "req-1", "message": "fetching context", "peer.service": "vector-db"}),
    );
    line(
        12,
        json!({"service": "vector-db", "correlation_id": "req-1", "message": "search start"}),
    );
    line(
        5012,
        json!({"level": "error", "service": "vector-db", "correlation_id": "req-1",
        "message": "qdrant search timed out after 5000 ms"}),
    );
    line(
        5020,
        json!({"level": "error", "service": "llm-gateway", "correlation_id": "req-1", "message": "context fetch failed"}),
    );
    line(
        5030,
        json!({"level": "error", "service": "api", "correlation_id": "req-1", "message": "upstream returned 502"}),
    );
    line(
        5040,
        json!({"level": "error", "service": "browser", "correlation_id": "req-1", "message": "request failed"}),
    );
    // req-2: a healthy request of the same shape.
    line(
        100,
        json!({"service": "api", "correlation_id": "req-2", "message": "POST /chat", "target_service": "llm-gateway"}),
    );
    line(
        900,
        json!({"service": "llm-gateway", "correlation_id": "req-2", "message": "answered", "duration_ms": 780}),
    );
    // A line 400 s later moves event time on: both requests are idle, so complete.
    line(
        400_000,
        json!({"service": "api", "correlation_id": "req-3", "message": "POST /chat"}),
    );
    line(400_001, json!({"service": "api", "message": "health check"}));
    app.push_stream(json!({"app": "ai"}), &lines).await;
    app.wait_inserted(12).await;

    let (status, r) = app.get_json("/api/v1/ai_logs/correlate?correlation_id=req-1").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "complete", "{r}");
    assert_eq!(r["root_cause"]["service"], "vector-db", "{r}");
    assert_eq!(
        r["root_cause"]["propagated_to"],
        json!(["llm-gateway", "api", "browser"])
    );
    let evidence = &r["root_cause"]["evidence"][0];
    assert!(
        evidence["message"].as_str().is_some_and(|m| m.contains("timed out")),
        "{r}"
    );
    assert!(
        evidence["patterns"].as_array().is_some_and(|p| !p.is_empty()),
        "the timeout line matched the catalog: {r}"
    );
    assert!(r["recommendations"].as_array().is_some_and(|a| !a.is_empty()), "{r}");
    let edges: Vec<(String, String, String)> = r["request_flow"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("from"), s("to"), s("source"))
        })
        .collect();
    for want in [
        ("api", "llm-gateway", "explicit"),
        ("llm-gateway", "vector-db", "explicit"),
        ("browser", "api", "inferred"),
    ] {
        assert!(
            edges.contains(&(want.0.into(), want.1.into(), want.2.into())),
            "{want:?} in {edges:?}"
        );
    }
    assert_eq!(r["total_duration_ms"], 5040.0);
    assert_eq!(
        r["critical_path"],
        json!(["browser", "api", "llm-gateway", "vector-db"])
    );
    let timeline = strings(&r["service_timeline"], "service");
    assert_eq!(timeline, ["browser", "api", "llm-gateway", "vector-db"]);

    // Still live: answered as it stands.
    let (status, r) = app.get_json("/api/v1/ai_logs/correlate?correlation_id=req-3").await;
    assert_eq!((status, r["status"].as_str()), (200, Some("in_progress")), "{r}");

    let (status, r) = app.get_json("/api/v1/ai_logs/correlate?service=llm-gateway").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["requests_in_window"], 2, "{r}");
    let callers = r["callers"].as_array().cloned().unwrap_or_default();
    assert_eq!(callers.len(), 1, "{r}");
    assert_eq!(
        (callers[0]["from"].as_str(), callers[0]["requests"].as_u64()),
        (Some("api"), Some(2))
    );
    assert_eq!(callers[0]["error_rate"], 0.5, "failed in one request of two");
    assert_eq!(r["callees"][0]["to"], "vector-db");

    let (_, h) = app.get_json("/api/v1/ai_logs/health").await;
    let c = &h["components"]["correlation"];
    assert_eq!(
        (
            c["live_requests"].as_u64(),
            c["completed_total"].as_u64(),
            c["lines_without_correlation_id"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{h}"
    );

    let (status, r) = app.get_json("/api/v1/ai_logs/correlate?correlation_id=nope").await;
    assert_eq!(
        (status, r["error"].as_str()),
        (404, Some("correlation_not_found")),
        "{r}"
    );
    assert!(r["suggestion"].as_str().is_some_and(|s| !s.is_empty()));
    let (status, r) = app.get_json("/api/v1/ai_logs/correlate").await;
    assert_eq!((status, r["field"].as_str()), (400, Some("correlation_id")), "{r}");
    let (status, r) = app
        .get_json("/api/v1/ai_logs/correlate?correlation_id=a&service=b")
        .await;
    assert_eq!((status, r["field"].as_str()), (400, Some("service")), "{r}");
    let (status, r) = app
        .get_json("/api/v1/ai_logs/correlate?correlation_id=a&time_window=forever")
        .await;
    assert_eq!((status, r["field"].as_str()), (400, Some("time_window")), "{r}");
    let (status, r) = app.get_json("/api/v1/ai_logs/correlate?correlation_id=a&bogus=1").await;
    assert_eq!((status, r["field"].as_str()), (400, Some("bogus")), "{r}");
}
