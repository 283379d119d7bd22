//! Health, metrics, correlation ids and graceful shutdown.

use crate::harness::{TestApp, test_config};

#[tokio::test]
async fn health_reports_every_component() {
    let mut config = test_config();
    // Nothing listens on the discard port: Loki is configured but unreachable.
    config.loki_url = Some("http://127.0.0.1:9".into());
    let app = TestApp::with_config(config).await;
    let (status, h) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        (h["mode"].as_str(), h["durable"].as_bool()),
        (Some("embedded"), Some(false))
    );
    assert_eq!(h["status"], "degraded", "an unreachable Loki is not silently ignored");
    assert_eq!(h["components"]["loki"]["status"], "unreachable", "{h}");
    assert_eq!(h["components"]["loki"]["breaker"], "closed", "{h}");
    let why = h["components"]["loki"]["message"].as_str().unwrap_or("");
    assert!(why.contains("missing"), "{why}");
    assert_eq!(h["components"]["kafka"]["status"], "not_configured");
    assert_eq!(h["components"]["pipeline"]["workers"], 2);
    assert_eq!(h["components"]["ingest"]["queue_capacity_lines"], 200_000);
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_lines_and_requests() {
    let app = TestApp::start().await;
    assert_eq!(app.push_golden().await, 204);
    assert_eq!(
        app.post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            b"junk".to_vec()
        )
        .await
        .0,
        400
    );
    let (status, _) = app
        .post(
            "/api/v1/ai_logs/ingest",
            None,
            None,
            b"{\"message\":\"a\"}\n{\"message\":\"\"}\n".to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    app.wait_inserted(3).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    for needle in [
        "ailogs_lines_received_total{endpoint=\"loki_push\"} 1",
        "ailogs_lines_received_total{endpoint=\"ndjson\"} 2",
        "ailogs_lines_decoded_total{format=\"plain\"} 1",
        "ailogs_lines_decoded_total{format=\"json\"} 2",
        "ailogs_push_requests_rejected_total{endpoint=\"loki_push\",reason=\"bad_request\"} 1",
        "ailogs_queue_capacity_lines 200000",
        "ailogs_pipeline_latency_seconds_count",
        "ailogs_http_request_duration_seconds_count{method=\"POST\",route=\"/loki/api/v1/push\",status=\"204\"} 1",
        "ailogs_view_lines 3",
    ] {
        assert!(text.contains(needle), "metrics should contain {needle}\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn correlation_id_is_echoed_or_generated() {
    let app = TestApp::start().await;
    let resp = app
        .client
        .get(app.url("/api/v1/ai_logs/health"))
        .header("x-correlation-id", "abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["x-correlation-id"], "abc-123");
    let resp = app
        .client
        .get(app.url("/api/v1/ai_logs/query?mode=bad"))
        .send()
        .await
        .expect("sent");
    let generated = resp.headers()["x-correlation-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_drains_the_queue() {
    let app = TestApp::start().await;
    let state = app.state.clone();
    let lines: String = (0..20_000)
        .map(|i| format!("{{\"message\":\"line {i}\",\"service\":\"s\"}}\n"))
        .collect();
    for _ in 0..5 {
        assert_eq!(
            app.post("/api/v1/ai_logs/ingest", None, None, lines.clone().into_bytes())
                .await
                .0,
            200
        );
    }
    app.stop().await;
    assert_eq!(
        state.views.stats().held.inserted_total,
        100_000,
        "every accepted line is processed before stop returns"
    );
    assert_eq!(state.queue.depth(), 0);
}
