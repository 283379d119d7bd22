//! /analyze on pushed lines with known problems: pattern hits with fixes, a cascade across
//! two services, templates, and ranked insights.

use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns};

#[tokio::test]
async fn analyze_names_the_problems_and_ranks_them() {
    let app = TestApp::start().await;
    let t = now_ns();
    let mut lines: Vec<(i64, String)> = Vec::new();
    let mut line = |dt: i64, l: Value| lines.push((t + dt, l.to_string()));
    for i in 0..6 {
        line(
            i,
            json!({"level": "warn", "service": "gateway", "message": format!("Rate limit exceeded for gpt-4o, retry in {i} s")}),
        );
    }
    line(
        10,
        json!({"level": "error", "service": "gateway", "correlation_id": "req-9", "message": "model gpt-4o request timed out after 60s"}),
    );
    line(
        20,
        json!({"level": "error", "service": "api", "correlation_id": "req-9", "message": "upstream returned 504 Gateway Timeout"}),
    );
    line(
        30,
        json!({"level": "info", "service": "api", "message": "served 200 in 12ms"}),
    );
    app.push_stream(json!({"app": "ai"}), &lines).await;
    app.wait_inserted(9).await;

    let (status, r) = app.get_json("/api/v1/ai_logs/analyze?time_range=15m").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["lines_examined"], 9);
    let patterns = r["patterns"].as_array().cloned().unwrap_or_default();
    let rl = patterns
        .iter()
        .find(|p| p["id"] == "rate_limit_exceeded")
        .expect("rate limit found");
    assert_eq!(
        (rl["count"].as_u64(), rl["services"]["gateway"].as_u64()),
        (Some(6), Some(6))
    );
    assert!(rl["suggestion"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(patterns.iter().any(|p| p["id"] == "model_timeout"), "{r}");
    let cascades = r["cascades"].as_array().cloned().unwrap_or_default();
    assert_eq!(cascades.len(), 1, "{r}");
    assert_eq!(
        cascades[0]["services"],
        json!(["gateway", "api"]),
        "the gateway failed first"
    );
    let top = r["top_templates"].as_array().cloned().unwrap_or_default();
    assert_eq!(top[0]["count"], 6, "the rate-limit lines are one template: {top:?}");
    assert!(top[0]["template"].as_str().is_some_and(|t| t.contains("<*>")));
    let insights = r["insights"].as_array().cloned().unwrap_or_default();
    assert!(insights.len() >= 3);
    assert_eq!(insights[0]["rank"], 1);
    assert_eq!(insights[0]["kind"], "cascade", "a cascade ranks first: {insights:?}");

    let (_, only) = app
        .get_json("/api/v1/ai_logs/analyze?services=api&min_severity=high")
        .await;
    assert_eq!(only["lines_examined"], 2);
    assert!(
        only["patterns"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["services"].get("api").is_some()))
    );

    let (status, e) = app.get_json("/api/v1/ai_logs/analyze?categories=weather").await;
    assert_eq!((status, e["field"].as_str()), (400, Some("categories")), "{e}");
    let (status, e) = app.get_json("/api/v1/ai_logs/analyze?time_range=forever").await;
    assert_eq!((status, e["field"].as_str()), (400, Some("time_range")), "{e}");
    app.stop().await;
}
