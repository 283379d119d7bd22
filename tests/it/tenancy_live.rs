//! Tenancy beyond the REST routes: every MCP tool over `/mcp` and the live stream, with each
//! kind of key; and rate limits answered 429 to a flooding key while another key is served.

use std::time::Duration;

use ailogs::config::Role;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestApp, now_ns, test_config};
use crate::stream::{Socket, next, send};
use crate::tenancy::{Tenants, Who, tenants};

/// (tool, arguments): every tool, asked about what both workspaces share.
fn tool_calls() -> Vec<(&'static str, Value)> {
    vec![
        (
            "query_logs",
            json!({"time_range": "1h", "limit": 100, "max_bytes": 200000}),
        ),
        (
            "get_request",
            json!({"correlation_id": "req-shared", "max_bytes": 200000}),
        ),
        (
            "service_health",
            json!({"service": "api", "time_range": "1h", "max_bytes": 200000}),
        ),
        (
            "get_conversation",
            json!({"conversation_id": "conv-a", "max_bytes": 200000}),
        ),
        (
            "workspace_usage",
            json!({"workspace_id": "ws-a", "time_range": "1h", "max_bytes": 200000}),
        ),
        ("list_patterns", json!({"max_bytes": 200000})),
        (
            "explain_template",
            json!({"template_id": "0000000000000001", "time_range": "1h"}),
        ),
        ("recent_alerts", json!({"time_range": "1h", "max_bytes": 200000})),
    ]
}

/// One stateless JSON-RPC call to `/mcp`: (HTTP status, the JSON-RPC answer).
async fn mcp(t: &Tenants, who: Who, tool: &str, args: &Value) -> (u16, Value) {
    let mut req = t
        .app
        .client
        .post(t.app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}));
    if let Some(key) = t.key(who) {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(json!({"raw": text})))
}

#[tokio::test]
async fn every_mcp_tool_answers_a_reader_from_its_workspaces_only() {
    let t = tenants().await;
    let all_tools: Vec<&str> = tool_calls().iter().map(|(n, _)| *n).collect();
    let (_, listed) = {
        let req = t
            .app
            .client
            .post(t.app.url("/mcp"))
            .bearer_auth(t.key(Who::Admin).expect("key"))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
        let resp = req.send().await.expect("sent");
        (resp.status(), resp.json::<Value>().await.expect("json"))
    };
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        all_tools.len(),
        "a tool was added without a tenancy call here: {names:?}"
    );
    assert!(names.iter().all(|n| all_tools.contains(n)), "{names:?}");
    for (tool, args) in tool_calls() {
        for who in [
            Who::Admin,
            Who::ReaderA,
            Who::ReaderB,
            Who::Ingest,
            Who::Revoked,
            Who::Nobody,
        ] {
            let (status, answer) = mcp(&t, who, tool, &args).await;
            let text = answer.to_string();
            match who {
                Who::Revoked | Who::Nobody => assert_eq!(status, 401, "{who:?} {tool}: {text}"),
                Who::Ingest => assert_eq!(status, 403, "{who:?} {tool}: {text}"),
                _ => assert_eq!(status, 200, "{who:?} {tool}: {text}"),
            }
            if who == Who::ReaderA {
                for m in ["only-in-b", "ws-b", "conv-b", "user-b", "no-workspace-line"] {
                    assert!(!text.contains(m), "reader A's {tool} revealed {m:?}: {text}");
                }
            }
            if who == Who::ReaderB && tool == "get_conversation" {
                // Another workspace's conversation is unknown to B, as an id that does not exist.
                assert_eq!(answer["result"]["isError"], json!(true), "{text}");
                assert!(!text.contains("user-a"), "{text}");
            }
            if who == Who::ReaderB && tool == "workspace_usage" {
                assert_eq!(answer["result"]["isError"], json!(true), "{text}");
                assert!(text.contains("403"), "{text}");
            }
            if who == Who::Admin && tool == "query_logs" {
                assert!(text.contains("only-in-a") && text.contains("only-in-b"), "{text}");
            }
            if who == Who::ReaderA && tool == "query_logs" {
                assert!(text.contains("only-in-a"), "{text}");
            }
        }
    }
    t.app.stop().await;
}

async fn subscribe(t: &Tenants, who: Who) -> Socket {
    let url = t.app.url("/api/v1/ai_logs/stream").replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().expect("request");
    let key = t.key(who).expect("a key");
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    send(
        &mut socket,
        json!({"type": "subscribe", "filter": {"severity_threshold": "debug"}}),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "connected");
    socket
}

/// The `log` messages until one contains `until`.
async fn logs_until(socket: &mut Socket, until: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let v = next(socket).await;
        if v["type"] == "log" {
            let text = v.to_string();
            let done = text.contains(until);
            seen.push(text);
            if done {
                return seen;
            }
        } else {
            seen.push(v.to_string());
        }
    }
}

#[tokio::test]
async fn the_stream_sends_a_reader_only_its_workspaces_lines_and_no_alerts() {
    let t = tenants().await;
    let mut a = subscribe(&t, Who::ReaderA).await;
    let mut admin = subscribe(&t, Who::Admin).await;
    // An ingest key may not read the stream.
    let url = t.app.url("/api/v1/ai_logs/stream").replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().expect("request");
    let ingest = t.key(Who::Ingest).expect("key");
    req.headers_mut()
        .insert("authorization", format!("Bearer {ingest}").parse().expect("header"));
    let (mut refused, _) = tokio_tungstenite::connect_async(req).await.expect("upgrade");
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), refused.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4003));
    // B's line first, then A's: when A's arrives, B's would have come before it.
    let now = now_ns();
    let line = |ws: Option<&str>, text: &str| {
        let mut v = json!({"level": "error", "service": "api", "message": text});
        if let Some(ws) = ws {
            v["workspace_id"] = json!(ws);
        }
        v.to_string()
    };
    let body = json!({"streams": [{"stream": {"service_name": "api"}, "values": [
        [now.to_string(), line(Some("ws-b"), "live only-in-b")],
        [(now + 1).to_string(), line(None, "live no-workspace-line")],
        [(now + 2).to_string(), line(Some("ws-a"), "live only-in-a")],
    ]}]});
    let pushed = t
        .call(
            Who::Ingest,
            "POST",
            "/loki/api/v1/push",
            Some(("application/json", body.to_string())),
        )
        .await;
    assert_eq!(pushed.0, 204, "{}", pushed.1);
    let seen_by_a = logs_until(&mut a, "live only-in-a").await;
    for m in seen_by_a {
        assert!(!m.contains("only-in-b") && !m.contains("no-workspace-line"), "{m}");
        assert!(!m.contains("\"type\":\"alert\""), "alerts span workspaces: {m}");
    }
    let seen_by_admin = logs_until(&mut admin, "live only-in-a").await.join("\n");
    assert!(seen_by_admin.contains("live only-in-b") && seen_by_admin.contains("live no-workspace-line"));
    t.app.stop().await;
}

#[tokio::test]
async fn a_flooding_key_gets_429_with_a_retry_time_and_others_are_served() {
    let mut config = test_config();
    // One query and one push per 10 s per key, with a bucket of one.
    config.rate_limits.query_per_minute = 6;
    config.rate_limits.push_per_minute = 6;
    config.rate_limits.burst_s = 10;
    let mut keys = Vec::new();
    for (name, role) in [("flood", Role::Admin), ("calm", Role::Reader)] {
        let (key, entry) = ailogs::auth::generate_entry(name, role, None);
        config.auth.api_keys.push(entry);
        keys.push(key);
    }
    let app = TestApp::with_config(config).await;
    let get = |key: &str| {
        app.client
            .get(app.url("/api/v1/ai_logs/query?time_range=5m"))
            .bearer_auth(key)
            .send()
    };
    let first = get(&keys[0]).await.expect("sent");
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "6");
    let flooded = get(&keys[0]).await.expect("sent");
    assert_eq!(flooded.status().as_u16(), 429);
    let retry: u64 = flooded.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=10).contains(&retry), "retry in {retry} s");
    assert_eq!(flooded.headers()["ratelimit-remaining"], "0");
    let body: Value = flooded.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["limit"], "query_per_minute");
    // Another key is not held back by the flood.
    assert_eq!(get(&keys[1]).await.expect("sent").status().as_u16(), 200);
    // Pushes are refused as Loki refuses them: 429, plain text, Retry-After.
    let push = || {
        app.client
            .post(app.url("/loki/api/v1/push"))
            .bearer_auth(&keys[0])
            .header("content-type", "application/json")
            .body(
                json!({"streams": [{"stream": {"service_name": "x"}, "values": [[now_ns().to_string(), "hello"]]}]})
                    .to_string(),
            )
            .send()
    };
    assert_eq!(push().await.expect("sent").status().as_u16(), 204);
    let refused = push().await.expect("sent");
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    assert!(refused.text().await.expect("text").contains("push"));
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("ailogs_rate_limited_total{class=\"query\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("ailogs_rate_limited_total{class=\"push\"} 1"));
    app.stop().await;
}

#[tokio::test]
async fn stream_messages_over_the_key_s_limit_are_refused_and_the_connection_stays() {
    let mut config = test_config();
    // 12 a minute with a 10 s bucket: two tokens, for the connection and the subscribe.
    config.rate_limits.stream_per_minute = 12;
    let (key, entry) = ailogs::auth::generate_entry("watcher", Role::Reader, None);
    config.auth.api_keys.push(entry);
    let app = TestApp::with_config(config).await;
    let url = app.url("/api/v1/ai_logs/stream").replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    send(&mut socket, json!({"type": "subscribe", "filter": {}})).await;
    assert_eq!(next(&mut socket).await["type"], "connected");
    send(
        &mut socket,
        json!({"type": "update_filter", "filter": {"services": ["api"]}}),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["limit"], "stream_per_minute");
    assert!(
        refused["retry_after_s"].as_u64().is_some_and(|s| (1..=5).contains(&s)),
        "{refused}"
    );
    // The connection stays up: the next message gets its answer (refused again).
    send(&mut socket, json!({"type": "unsubscribe"})).await;
    assert_eq!(next(&mut socket).await["code"], "rate_limited");
    app.stop().await;
}
