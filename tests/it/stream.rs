//! /stream with a real WebSocket client: subscribe with a filter, live lines and alerts,
//! a filter changed live, malformed messages answered without dropping the connection, and
//! resuming after a disconnect.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{TestApp, now_ns};

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(app: &TestApp) -> Socket {
    let url = app.url("/api/v1/ai_logs/stream").replacen("http://", "ws://", 1);
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
    socket
}

pub(crate) async fn send(socket: &mut Socket, v: Value) {
    socket.send(Message::text(v.to_string())).await.expect("send");
}

/// The next JSON message (heartbeats skipped), failing after 10 s.
pub(crate) async fn next(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }
}

/// The code of the close frame the server sends (messages before it skipped), failing after
/// 10 s; `None` when the connection ends without one.
pub(crate) async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => return Some(u16::from(frame.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

/// Messages until one of `kind` arrives; returns them all.
pub(crate) async fn until(socket: &mut Socket, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let v = next(socket).await;
        let done = v["type"] == kind;
        seen.push(v);
        if done {
            return seen;
        }
    }
}

fn line(service: &str, level: &str, message: &str) -> String {
    json!({"service": service, "level": level, "message": message, "correlation_id": "req-ws"}).to_string()
}

#[tokio::test]
async fn stream_filters_updates_and_resumes() {
    let app = TestApp::start().await;
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "filter": {"services": ["api"], "severity_threshold": "error", "pattern_alerts": ["timeout"]}}),
    )
    .await;
    let connected = next(&mut ws).await;
    assert_eq!(connected["type"], "connected", "{connected}");
    assert_eq!(connected["filter"]["severity_threshold"], "error");
    assert_eq!(connected["filter"]["services"], json!(["api"]));

    let t = now_ns();
    app.push_stream(
        json!({"app": "ai"}),
        &[
            (t, line("api", "info", "served 200")),
            (t + 1, line("worker", "error", "job crashed")),
            (t + 2, line("api", "error", "upstream request timed out after 30s")),
        ],
    )
    .await;
    let got = until(&mut ws, "alert").await;
    let logs: Vec<&Value> = got.iter().filter(|m| m["type"] == "log").collect();
    assert_eq!(logs.len(), 1, "only the api error passes: {got:?}");
    assert_eq!(logs[0]["log"]["message"], "upstream request timed out after 30s");
    let alert = &got.last().expect("alert")["alert"];
    assert_eq!(alert["kind"], "pattern", "{alert}");
    assert!(alert["key"].as_str().is_some_and(|k| k.contains("timeout")), "{alert}");
    assert!(alert["suggestion"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(alert["samples"][0], "upstream request timed out after 30s");
    assert_eq!(alert["services"], json!(["api"]));
    let log_id = logs[0]["id"].as_u64().expect("id");
    let alert_id = got.last().and_then(|m| m["id"].as_u64()).expect("alert id");
    assert!(alert_id > log_id, "ids increase");

    // Malformed and unknown messages: an error each, and the connection stays up.
    ws.send(Message::text("{nope")).await.expect("send");
    assert_eq!(next(&mut ws).await["code"], "malformed_message");
    send(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(next(&mut ws).await["code"], "unknown_type");
    send(
        &mut ws,
        json!({"type": "update_filter", "filter": {"severity_threshold": "loud"}}),
    )
    .await;
    let bad = next(&mut ws).await;
    assert_eq!(
        (bad["code"].as_str(), bad["field"].as_str()),
        (Some("invalid_filter"), Some("severity_threshold"))
    );

    // A live filter change: now the worker's errors.
    send(
        &mut ws,
        json!({"type": "update_filter", "filter": {"services": ["worker"], "severity_threshold": "error"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "filter_updated");
    app.push_stream(
        json!({"app": "ai"}),
        &[(now_ns(), line("worker", "error", "job crashed again"))],
    )
    .await;
    let worker = until(&mut ws, "log").await;
    let last = worker.last().expect("log");
    assert_eq!(last["log"]["service"], "worker");
    let last_id = last["id"].as_u64().expect("id");
    ws.close(None).await.expect("close");

    // Missed while away, then resumed from the last id seen.
    app.push_stream(
        json!({"app": "ai"}),
        &[
            (now_ns(), line("worker", "error", "missed one")),
            (now_ns() + 1, line("worker", "error", "missed two")),
        ],
    )
    .await;
    app.wait_inserted(6).await;
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "resume_from": last_id, "filter": {"services": ["worker"], "severity_threshold": "error"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    let first = next(&mut ws).await;
    let second = next(&mut ws).await;
    assert_eq!(
        (first["log"]["message"].as_str(), second["log"]["message"].as_str()),
        (Some("missed one"), Some("missed two")),
        "{first} {second}"
    );
    assert!(first["id"].as_u64() > Some(last_id));

    send(&mut ws, json!({"type": "heartbeat"})).await;
    let beat = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("heartbeat answer")
        .expect("open")
        .expect("ok");
    assert!(beat.to_text().is_ok_and(|t| t.contains("\"heartbeat\"")), "{beat:?}");
}

#[tokio::test]
async fn a_client_flooding_messages_is_closed_with_a_code_and_latency_is_measured() {
    let app = TestApp::start().await;
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "filter": {"severity_threshold": "info"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    app.push_stream(json!({"app": "ai"}), &[(now_ns(), line("api", "info", "hello"))])
        .await;
    assert_eq!(
        until(&mut ws, "log").await.last().map(|m| m["log"]["message"].clone()),
        Some(json!("hello"))
    );
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    let stream = &health["components"]["stream"];
    assert_eq!(
        (stream["source"].as_str(), stream["hub"]["subscribers"].as_u64()),
        (Some("this process's pipeline"), Some(1)),
        "{stream}"
    );
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let count = metrics
        .lines()
        .find(|l| l.starts_with("ailogs_stream_delivery_seconds_count"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(count.is_some_and(|n| n >= 1), "delivery latency measured: {count:?}");

    for _ in 0..150 {
        if ws
            .send(Message::text(json!({"type": "heartbeat"}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = close_code(&mut ws).await;
    assert_eq!(code, Some(1008), "closed for its message rate, with a code");
}

#[tokio::test]
async fn an_alert_that_keeps_firing_is_sent_again_with_its_count() {
    let app = TestApp::start().await;
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "filter": {"logs": false, "pattern_alerts": ["rate_limit"]}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    let t = now_ns() - 60_000_000_000;
    let hit = |dt_s: i64| {
        (
            t + dt_s * 1_000_000_000,
            line("gw", "warn", "Rate limit exceeded for gpt-4o"),
        )
    };
    app.push_stream(json!({"app": "ai"}), &[hit(0), hit(1), hit(2), hit(11)])
        .await;
    let first = until(&mut ws, "alert").await.pop().expect("first");
    assert_eq!(first["alert"]["count"], 1, "{first}");
    let again = until(&mut ws, "alert").await.pop().expect("again");
    assert_eq!(
        again["alert"]["count"], 4,
        "folded repeats, sent again after 10 s: {again}"
    );
    assert_eq!(again["alert"]["key"], first["alert"]["key"]);
    assert_eq!(again["alert"]["id"], first["alert"]["id"], "the same alert, updated");
    assert_eq!(
        (first["alert"]["revision"].as_u64(), again["alert"]["revision"].as_u64()),
        (Some(0), Some(1)),
        "an update is told apart from a new alert"
    );
    assert!(again["id"].as_u64() > first["id"].as_u64());
}

/// A client message over 64 KiB is answered with close code 1009 (message too big), not a
/// silently dropped connection.
#[tokio::test]
async fn a_message_over_64_kib_is_closed_with_1009() {
    let app = TestApp::start().await;
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "subscribe", "filter": {}})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    let big = json!({"type": "heartbeat", "pad": "x".repeat(70 * 1024)}).to_string();
    ws.send(Message::text(big)).await.expect("send");
    let code = close_code(&mut ws).await;
    assert_eq!(code, Some(1009));
}
