//! `GET /metrics` (aggregated) on the embedded default: buckets and refusals.

use crate::harness::TestApp;

#[tokio::test]
async fn buckets_cover_the_range_and_bad_parameters_name_the_field() {
    let app = TestApp::start().await;
    let (status, body) = app.get_json("/api/v1/ai_logs/metrics?time_range=6h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["step_s"], 900, "the smallest nice step giving at most 60 buckets");
    assert_eq!(body["buckets"].as_array().expect("buckets").len(), 24);
    assert_eq!(body["total"]["requests"], 0);
    assert_eq!(body["source"], "views");
    for (query, field) in [
        ("group_by=team", "group_by"),
        ("step=30s", "step"),
        ("time_range=30d&step=1m", "step"),
        ("time_range=1y", "time_range"),
        ("bucket=5m", "bucket"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/ai_logs/metrics?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    app.stop().await;
}
