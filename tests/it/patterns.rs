//! The pattern catalog API: counts from pushed lines, custom patterns added, refused,
//! replaced and removed, and hot-loaded into the running matcher.

use serde_json::{Value, json};

use crate::harness::{TestApp, now_ns};

async fn push_lines(app: &TestApp, lines: &[&str]) {
    let t = now_ns();
    let lines: Vec<(i64, String)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (t + i as i64, l.to_string()))
        .collect();
    app.push_stream(json!({"app": "gateway"}), &lines).await;
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["patterns"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("pattern {id} not listed: {list}"))
}

#[tokio::test]
async fn catalog_lists_counts_and_filters() {
    let app = TestApp::start().await;
    push_lines(
        &app,
        &[
            r#"{"level":"error","message":"HTTP 429 Too Many Requests from openai"}"#,
            r#"{"level":"error","message":"upstream call failed","error":"dial tcp 10.0.0.5:6379: connect: connection refused"}"#,
            r#"{"level":"warn","message":"query took 3200 ms","duration_ms":3200}"#,
            r#"{"level":"info","message":"query took 12 ms","duration_ms":12}"#,
            r#"{"level":"error","message":"Rate limit exceeded for gpt-4o"}"#,
        ],
    )
    .await;
    app.wait_inserted(5).await;
    let (status, all) = app.get_json("/api/v1/ai_logs/patterns").await;
    assert_eq!(status, 200, "{all}");
    assert!(all["total_patterns"].as_u64().unwrap_or(0) >= 30);
    assert_eq!(all["total_matches"], 4, "{all}");
    let rl = find(&all, "rate_limit_exceeded");
    assert_eq!(
        (rl["count"].as_u64(), rl["severity"].as_str()),
        (Some(2), Some("medium"))
    );
    assert_eq!(rl["services"]["gateway"], 2);
    assert!(rl["first_seen"].is_string() && rl["suggestion"].is_string());
    assert_eq!(
        find(&all, "connection_refused")["count"],
        1,
        "matched in the error field"
    );
    assert_eq!(find(&all, "slow_query")["count"], 1, "12 ms is under the threshold");
    assert_eq!(find(&all, "disk_full")["count"], 0);

    let (_, ai) = app
        .get_json("/api/v1/ai_logs/patterns?category=ai&min_severity=high")
        .await;
    let ai = ai["patterns"].as_array().cloned().unwrap_or_default();
    assert!(!ai.is_empty());
    assert!(
        ai.iter()
            .all(|p| p["category"] == "ai" && ["high", "critical"].contains(&p["severity"].as_str().unwrap_or("")))
    );

    let (status, e) = app.get_json("/api/v1/ai_logs/patterns?category=network").await;
    assert_eq!((status, e["field"].as_str()), (400, Some("category")), "{e}");
    let (status, e) = app.get_json("/api/v1/ai_logs/patterns?severty=high").await;
    assert_eq!((status, e["field"].as_str()), (400, Some("severty")), "{e}");
    app.stop().await;
}

#[tokio::test]
async fn custom_patterns_are_validated_hot_loaded_replaced_and_removed() {
    let app = TestApp::start().await;
    let teapot = json!({
        "id": "teapot_refused", "regex": "i'?m a teapot|\\b418\\b", "severity": "low",
        "category": "data", "suggestion": "Brew coffee elsewhere.",
        "examples": {"positive": ["HTTP 418 I'm a teapot"], "negative": ["tea served"]}
    });
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/ai_logs/patterns",
        Some(teapot.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/ai_logs/patterns",
        Some(teapot.clone()),
    )
    .await;
    assert_eq!(status, 409, "a second POST of the same id conflicts");

    push_lines(
        &app,
        &[r#"{"level":"error","message":"upstream said 418 I'm a teapot"}"#],
    )
    .await;
    app.wait_inserted(1).await;
    let (_, list) = app.get_json("/api/v1/ai_logs/patterns?source=custom").await;
    assert_eq!(list["total_patterns"], 1);
    assert_eq!(
        find(&list, "teapot_refused")["count"],
        1,
        "the new pattern matched at once"
    );

    // Refused: a regex that does not compile, a failing example, a shipped id, a bad field.
    let mut bad = teapot.clone();
    bad["regex"] = json!("(unclosed");
    let (status, e) = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/ai_logs/patterns/teapot_refused",
        Some(bad),
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("regex")), "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("teapot_refused"), "{e}");
    let mut wrong = teapot.clone();
    wrong["examples"]["negative"] = json!(["418"]);
    let (status, e) = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/ai_logs/patterns/teapot_refused",
        Some(wrong),
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("examples")), "{e}");
    let mut shipped = teapot.clone();
    shipped["id"] = json!("disk_full");
    let (status, _) = send(&app, reqwest::Method::POST, "/api/v1/ai_logs/patterns", Some(shipped)).await;
    assert_eq!(status, 409);
    let mut sev = teapot.clone();
    sev["severity"] = json!("apocalyptic");
    let (status, e) = send(&app, reqwest::Method::POST, "/api/v1/ai_logs/patterns", Some(sev)).await;
    assert_eq!(status, 400, "{e}");
    let mut extra = teapot.clone();
    extra["colour"] = json!("green");
    let (status, e) = send(&app, reqwest::Method::POST, "/api/v1/ai_logs/patterns", Some(extra)).await;
    assert_eq!((status, e["field"].as_str()), (400, Some("colour")), "{e}");

    // The refused changes left the running pattern alone; a valid PUT replaces it.
    let mut v2 = teapot.clone();
    v2["severity"] = json!("high");
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/ai_logs/patterns/teapot_refused",
        Some(v2),
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = app.get_json("/api/v1/ai_logs/patterns?source=custom").await;
    assert_eq!(find(&list, "teapot_refused")["severity"], "high");

    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/ai_logs/patterns/teapot_refused",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/ai_logs/patterns/teapot_refused",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/v1/ai_logs/patterns/disk_full",
        None,
    )
    .await;
    assert_eq!(status, 409, "shipped patterns cannot be removed");
    push_lines(&app, &[r#"{"level":"error","message":"418 again"}"#]).await;
    app.wait_inserted(2).await;
    let (_, list) = app.get_json("/api/v1/ai_logs/patterns?source=custom").await;
    assert_eq!(list["total_patterns"], 0);
    let (_, all) = app.get_json("/api/v1/ai_logs/patterns").await;
    assert_eq!(all["total_matches"], 1, "the removed pattern no longer matches");
    app.stop().await;
}

#[tokio::test]
async fn records_are_tagged_with_their_template_on_arrival() {
    let app = TestApp::start().await;
    push_lines(
        &app,
        &[
            r#"{"level":"info","message":"user 42 logged in from 10.0.0.1"}"#,
            r#"{"level":"info","message":"user 7 logged in from 10.0.0.9"}"#,
            r#"{"level":"info","message":"cache flushed"}"#,
        ],
    )
    .await;
    app.wait_inserted(3).await;
    let recs = app.state.views.select_all(&Default::default());
    let tags: Vec<_> = recs.iter().map(|r| r.template.expect("tagged")).collect();
    assert_eq!(tags.len(), 3);
    assert_eq!(tags[0].id, tags[1].id, "one event, one template");
    assert_ne!(tags[0].id, tags[2].id);
    assert_eq!(tags.iter().map(|t| t.new).collect::<Vec<_>>(), [true, false, true]);
    app.stop().await;
}
