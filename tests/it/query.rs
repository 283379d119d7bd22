//! Every query mode, format and option on a fixture whose right answers are known.

use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns, rfc3339};

const S: i64 = 1_000_000_000;

/// 13 lines over the last ~2 hours; see the assertions for what each mode must return.
fn fixture(now: i64) -> String {
    let t = |secs_ago: i64| rfc3339(now - secs_ago * S);
    let lines = vec![
        json!({"timestamp": t(100), "service": "api", "level": "info", "message": "request r1 start", "correlation_id": "r1"}),
        json!({"timestamp": t(99), "service": "api", "level": "error", "message": "upstream timeout after 30s", "correlation_id": "r1", "duration_ms": 30000}),
        json!({"timestamp": t(98), "service": "api", "level": "info", "message": "request r1 end", "correlation_id": "r1"}),
        json!({"timestamp": t(90), "service": "worker", "level": "warning", "message": "queue depth 900"}),
        json!({"timestamp": t(80), "service": "api", "level": "error", "message": "upstream timeout after 12s", "correlation_id": "r2", "duration_ms": 12000}),
        json!({"timestamp": t(70), "service": "admin-ui", "level": "info", "message": "User bob logged in"}),
        json!({"timestamp": t(60), "service": "admin-ui", "level": "info", "message": "Workspace settings updated: model=gpt-4o"}),
        json!({"timestamp": t(50), "service": "anythingllm", "level": "info", "message": "AI operation completed", "conversation_id": "c1", "workspace_id": "w1", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 50, "duration": 1.5}),
        json!({"timestamp": t(40), "service": "anythingllm", "level": "error", "message": "AI operation failed", "conversation_id": "c1", "workspace_id": "w1", "error": "rate limit exceeded", "success": false}),
        json!({"timestamp": t(30), "service": "anythingllm", "level": "info", "message": "AI operation completed", "conversation_id": "c2", "workspace_id": "w2", "duration_ms": 800}),
        json!({"timestamp": t(20), "service": "api", "level": "fatal", "message": "out of memory"}),
        json!({"timestamp": t(10), "service": "api", "level": "info", "message": "GET /health 200", "duration_ms": 2}),
        json!({"timestamp": t(7200), "service": "api", "level": "error", "message": "too old for the default window"}),
    ];
    lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

async fn app_with_fixture() -> TestApp {
    let app = TestApp::start().await;
    let (status, body) = app
        .post(
            "/api/v1/ai_logs/ingest",
            Some("application/x-ndjson"),
            None,
            fixture(now_ns()).into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.wait_inserted(13).await;
    app
}

async fn q(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/api/v1/ai_logs/query?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn messages(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|l| l["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn modes_select_and_rank_as_documented() {
    let app = app_with_fixture().await;

    let errors = q(&app, "mode=errors").await;
    assert_eq!(
        messages(&errors, "lines"),
        [
            "out of memory",
            "AI operation failed",
            "upstream timeout after 12s",
            "upstream timeout after 30s"
        ]
    );
    assert_eq!(
        (errors["total_matched"].as_u64(), errors["truncated"].as_bool()),
        (Some(4), Some(false))
    );
    assert_eq!(errors["source"], "views");
    assert_eq!(errors["coverage"]["complete"], true);
    assert_eq!(errors["window"]["time_range"], "1h");
    assert!(errors["freshness"]["newest_event"].is_string());
    assert!(
        errors["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("4 error lines (1 fatal)"),
        "{}",
        errors["summary"]
    );
    assert_eq!(q(&app, "mode=errors&time_range=3h").await["total_matched"], 5);
    assert_eq!(q(&app, "mode=errors&services=api").await["total_matched"], 3);
    assert_eq!(
        q(&app, "mode=errors&services=worker,anythingllm").await["total_matched"],
        1
    );
    assert_eq!(
        q(&app, "mode=errors&severity_threshold=fatal").await["total_matched"],
        1
    );

    let trouble = q(&app, "mode=troubleshoot").await;
    assert_eq!(
        messages(&trouble, "lines"),
        [
            "out of memory",
            "AI operation failed",
            "upstream timeout after 12s",
            "upstream timeout after 30s",
            "queue depth 900"
        ]
    );
    let r1 = &trouble["lines"][3]["context"];
    assert_eq!(
        messages(r1, "before"),
        ["request r1 start"],
        "two context lines by default, same service, in window"
    );
    assert_eq!(messages(r1, "after"), ["request r1 end", "upstream timeout after 12s"]);
    let no_ctx = q(&app, "mode=troubleshoot&include_context=0").await;
    assert!(no_ctx["lines"][0].get("context").is_none());

    let perf = q(&app, "mode=performance").await;
    assert_eq!(
        messages(&perf, "lines"),
        [
            "upstream timeout after 30s",
            "upstream timeout after 12s",
            "AI operation completed",
            "AI operation completed",
            "GET /health 200"
        ]
    );
    assert_eq!(
        perf["lines"][2]["duration_ms"], 1500.0,
        "duration in seconds normalized to ms"
    );
    assert_eq!(perf["stats"][0]["service"], "api");
    assert_eq!(perf["stats"][0]["max_ms"], 30000.0);

    let audit = q(&app, "mode=audit").await;
    assert_eq!(
        messages(&audit, "lines"),
        ["Workspace settings updated: model=gpt-4o", "User bob logged in"]
    );
    assert_eq!(audit["lines"][0]["audit_category"], "configuration");
    assert_eq!(audit["lines"][1]["audit_category"], "auth");

    let conv = q(&app, "mode=conversation").await;
    assert_eq!(conv["total_matched"], 3);
    let convs = conv["conversations"].as_array().expect("conversations");
    assert_eq!(convs.len(), 2);
    assert_eq!(
        (convs[0]["conversation_id"].as_str(), convs[0]["lines_total"].as_u64()),
        (Some("c2"), Some(1))
    );
    assert_eq!(
        (convs[1]["conversation_id"].as_str(), convs[1]["errors"].as_u64()),
        (Some("c1"), Some(1))
    );
    assert_eq!(convs[1]["tokens_used"], 150);
    assert_eq!(
        messages(&convs[1], "lines"),
        ["AI operation completed", "AI operation failed"],
        "in time order"
    );
    assert_eq!(q(&app, "mode=conversation&workspace_id=w1").await["total_matched"], 2);
    assert_eq!(
        q(&app, "mode=conversation&conversation_id=c2").await["total_matched"],
        1
    );
    let request = q(&app, "correlation_id=r1&format=timeline").await;
    assert_eq!(
        messages(&request, "timeline"),
        ["request r1 start", "upstream timeout after 30s", "request r1 end"],
        "an id lookup shows the whole request"
    );
    assert!(request["window"]["start"].is_null());
    assert_eq!(
        q(&app, "correlation_id=r1&severity_threshold=warn").await["total_matched"],
        1
    );
    assert_eq!(
        q(&app, "mode=troubleshoot&correlation_id=r1&time_range=1h").await["total_matched"],
        3
    );
    assert_eq!(
        q(&app, "mode=errors&services=api&severity_threshold=info&time_range=3h").await["total_matched"],
        4
    );
    app.stop().await;
}

#[tokio::test]
async fn options_shape_the_answer() {
    let app = app_with_fixture().await;

    let limited = q(&app, "mode=errors&limit=2").await;
    assert_eq!(
        (
            limited["returned"].as_u64(),
            limited["truncated"].as_bool(),
            limited["total_matched"].as_u64()
        ),
        (Some(2), Some(true), Some(4))
    );

    let dedup = q(&app, "mode=errors&services=api&deduplicate=true").await;
    assert_eq!(
        messages(&dedup, "lines"),
        ["out of memory", "upstream timeout after 12s"]
    );
    assert_eq!(dedup["lines"][1]["repeat_count"], 2);

    assert_eq!(
        q(&app, "mode=errors&exclude_patterns=TIMEOUT").await["total_matched"],
        2
    );
    assert_eq!(
        q(&app, "mode=errors&exclude_patterns=re:%5Eout%20of").await["total_matched"],
        3
    );
    assert_eq!(
        q(&app, "mode=errors&exclude_patterns=memory,rate%20limit").await["total_matched"],
        2,
        "error field is matched too"
    );

    let minimal = q(&app, "mode=errors&verbosity=minimal&limit=1").await;
    let mut keys: Vec<&String> = minimal["lines"][0].as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["level", "message", "service", "t"]);
    let detailed = q(&app, "mode=errors&verbosity=detailed&services=anythingllm").await;
    assert_eq!(detailed["lines"][0]["labels"]["ingest"], "ndjson");
    assert_eq!(detailed["lines"][0]["format"], "json");

    let hl = q(&app, "mode=errors&highlight=true").await;
    assert_eq!(hl["lines"][3]["highlights"], json!(["level:error", "slow:30000ms"]));

    let by_service = q(&app, "mode=troubleshoot&aggregation=by_service").await;
    let groups: Vec<(String, u64)> = by_service["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap_or("").to_owned(),
                g["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("api".to_owned(), 3),
            ("anythingllm".to_owned(), 1),
            ("worker".to_owned(), 1)
        ]
    );
    let by_error = q(&app, "mode=errors&aggregation=by_error").await;
    assert_eq!(by_error["groups"][0]["key"], "upstream timeout after <n>s");
    assert_eq!(by_error["groups"][0]["count"], 2);
    assert!(
        by_error["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["key"] == "rate limit exceeded")
    );
    let by_pattern = q(&app, "mode=performance&aggregation=by_pattern").await;
    assert_eq!(by_pattern["groups"][0]["key"], "AI operation completed");
    assert_eq!(by_pattern["groups"][0]["count"], 2);

    let timeline = q(&app, "mode=errors&format=timeline").await;
    let tl = timeline["timeline"].as_array().expect("timeline");
    assert_eq!(
        messages(&timeline, "timeline"),
        [
            "upstream timeout after 30s",
            "upstream timeout after 12s",
            "AI operation failed",
            "out of memory"
        ]
    );
    assert_eq!(tl[0]["offset_ms"], 0);
    assert_eq!(tl[3]["offset_ms"], 79_000);

    let narrative = q(&app, "mode=errors&format=narrative").await;
    let text = narrative["narrative"].as_str().expect("narrative");
    assert!(text.contains("4 lines matched in errors mode"), "{text}");
    assert!(text.contains("api 3") && text.contains("anythingllm 1"), "{text}");
    assert!(text.contains("out of memory"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_field() {
    let app = TestApp::start().await;
    for (query, field) in [
        ("mode=everything", "mode"),
        ("time_range=2w", "time_range"),
        ("time_range=99d", "time_range"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("include_context=51", "include_context"),
        ("aggregation=by_moon", "aggregation"),
        ("format=yaml", "format"),
        ("verbosity=loud", "verbosity"),
        ("severity_threshold=meh", "severity_threshold"),
        ("exclude_patterns=re:(", "exclude_patterns"),
        ("deduplicate=perhaps", "deduplicate"),
        ("context_window=forever", "context_window"),
        ("servcies=api", "servcies"),
        ("mode=errors&mode=audit", "mode"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/ai_logs/query?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "invalid_parameter", "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["suggestion"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = app.get_json("/api/v1/ai_logs/nope").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// Queries that scan lines are bounded; past the bound they are refused, and indexed ones are
/// still answered.
#[tokio::test]
async fn scans_past_the_bound_are_refused_busy_and_indexed_queries_still_answer() {
    let mut config = crate::harness::test_config();
    config.views.max_concurrent_scans = Some(0);
    let app = TestApp::with_config(config).await;
    let (status, body) = app
        .post(
            "/api/v1/ai_logs/ingest",
            Some("application/x-ndjson"),
            None,
            fixture(now_ns()).into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.wait_inserted(13).await;

    // workspace_id is not indexed: this query scans.
    let (status, body) = app.get_json("/api/v1/ai_logs/query?mode=errors&workspace_id=w1").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "busy", "{body}");
    assert!(
        body["suggestion"].as_str().is_some_and(|s| s.contains("workspace_id")),
        "{body}"
    );

    let errors = q(&app, "mode=errors").await;
    assert_eq!(errors["total_matched"].as_u64(), Some(4), "{errors}");
}
