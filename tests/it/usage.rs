//! Workspace summary and conversation detail, embedded mode (from the in-memory views).

use serde_json::json;

use crate::harness::{TestApp, now_ns, rfc3339, strings};

/// Posts JSON lines to the NDJSON endpoint and waits until the views hold them all.
async fn ingest(app: &TestApp, lines: &[serde_json::Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (status, text) = app.post("/api/v1/ai_logs/ingest", None, None, body.into_bytes()).await;
    assert_eq!(status, 200, "{text}");
    app.wait_inserted(lines.len() as u64).await;
}

async fn app_with_usage() -> TestApp {
    let app = TestApp::start().await;
    let now = now_ns();
    let t = |s: i64| rfc3339(now - s * 1_000_000_000);
    let lines = [
        json!({"timestamp": t(50), "service": "gw", "workspace_id": "w1", "conversation_id": "c1", "user_id": "u1", "model": "gpt-4o",
               "input_tokens": 1000, "output_tokens": 500, "duration_ms": 1200, "prompt_hash": "sha256:aa", "message": "done"}),
        json!({"timestamp": t(40), "service": "gw", "workspace_id": "w1", "conversation_id": "c1", "model": "gpt-4o",
               "input_tokens": 10, "output_tokens": 0, "duration_ms": 800, "error": "rate limit exceeded (429)", "success": false, "message": "failed"}),
        json!({"timestamp": t(30), "service": "gw", "workspace_id": "w1", "conversation_id": "c2", "model": "mystery-model",
               "input_tokens": 7, "output_tokens": 3, "message": "done"}),
        json!({"timestamp": t(20), "service": "api", "workspace_id": "w1", "conversation_id": "c1", "message": "POST /chat 200"}),
        json!({"timestamp": t(10), "service": "gw", "workspace_id": "w2", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 5, "message": "done"}),
    ];
    ingest(&app, &lines).await;
    app
}

#[tokio::test]
async fn workspace_summary_from_views() {
    let app = app_with_usage().await;
    let (status, s) = app.get_json("/api/v1/ai_logs/workspace/w1/summary?time_range=1h").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["source"], "views");
    assert_eq!(s["total_requests"], 3);
    assert_eq!(s["total_tokens"], 1520);
    assert_eq!(s["total_conversations"], 2);
    assert_eq!(s["error_count"], 1);
    assert_eq!(s["average_response_time_ms"], 1000.0);
    assert_eq!(s["top_error_patterns"][0]["pattern"], "rate limit exceeded (<n>)");
    // gpt-4o: 1010 input * $2.50/M + 500 output * $10/M = 0.002525 + 0.005 USD; mystery-model unpriced.
    assert_eq!(s["cost_breakdown"]["total"]["nanousd"], 7_525_000);
    assert_eq!(s["cost_breakdown"]["unpriced_requests"], 1);
    let (_, no_costs) = app
        .get_json("/api/v1/ai_logs/workspace/w1/summary?include_costs=false")
        .await;
    assert!(no_costs.get("cost_breakdown").is_none());
    let (status, err) = app.get_json("/api/v1/ai_logs/workspace/w1/summary?time_range=5w").await;
    assert_eq!((status, err["field"].as_str()), (400, Some("time_range")));
    let (status, err) = app
        .get_json("/api/v1/ai_logs/workspace/w1/summary?include_cost=true")
        .await;
    assert_eq!(status, 400);
    assert!(
        err["suggestion"].as_str().unwrap_or("").contains("include_costs"),
        "{err}"
    );
    app.stop().await;
}

#[tokio::test]
async fn conversation_detail_from_views() {
    let app = app_with_usage().await;
    let (status, c) = app
        .get_json(
            "/api/v1/ai_logs/conversations/c1?include_prompts=true&include_responses=true&include_related_logs=true",
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!((c["lines"].as_i64(), c["requests"].as_i64()), (Some(3), Some(2)));
    assert_eq!(c["workspace_id"], "w1");
    assert_eq!(c["metrics"]["total_tokens"], 1510);
    assert_eq!(c["metrics"]["error_rate"], 0.5);
    assert_eq!(c["metrics"]["model_distribution"]["gpt-4o"], 2);
    assert_eq!(c["prompts"]["prompt_hashes"], json!(["sha256:aa"]));
    assert_eq!(c["responses"]["outcomes"][1]["error"], "rate limit exceeded (429)");
    assert_eq!(c["related_logs"].as_array().map(Vec::len), Some(3));
    let (status, e) = app.get_json("/api/v1/ai_logs/conversations/nope").await;
    assert_eq!((status, e["error"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

/// A workspace's failing requests count even when the failing lines are not AI operations and
/// do not name the workspace (a gateway's upstream error): they share the request's id.
#[tokio::test]
async fn workspace_summary_counts_the_errors_of_its_requests() {
    let app = TestApp::start().await;
    let now = now_ns();
    let t = |s: i64| rfc3339(now - s * 1_000_000_000);
    let lines = [
        json!({"timestamp": t(30), "service": "api", "workspace_id": "w3", "correlation_id": "r9", "level": "info", "message": "POST /api/v1/workspace/w3/chat received"}),
        json!({"timestamp": t(29), "service": "gateway", "correlation_id": "r9", "level": "error", "message": "upstream anythingllm request failed: connection refused"}),
        json!({"timestamp": t(28), "service": "api", "workspace_id": "w3", "correlation_id": "r9", "level": "error", "message": "POST /api/v1/workspace/w3/chat 502"}),
        json!({"timestamp": t(27), "service": "gateway", "correlation_id": "r10", "level": "error", "message": "another workspace's failure"}),
        json!({"timestamp": t(26), "service": "api", "workspace_id": "w4", "correlation_id": "r10", "level": "info", "message": "POST /api/v1/workspace/w4/chat received"}),
    ];
    ingest(&app, &lines).await;
    let (status, s) = app.get_json("/api/v1/ai_logs/workspace/w3/summary?time_range=1h").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["error_count"], 2, "{s}");
    let patterns = strings(&s["top_error_patterns"], "pattern");
    assert!(
        patterns
            .iter()
            .any(|p| p.starts_with("upstream anythingllm request failed")),
        "{patterns:?}"
    );
    assert!(
        !patterns.iter().any(|p| p.contains("another workspace")),
        "{patterns:?}"
    );
    app.stop().await;
}
