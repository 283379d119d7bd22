//! /stream access and isolation with a real WebSocket client: API keys (header, first
//! message, URL), subscriber limits per key and per process answered with close codes, and a
//! client that stalls: told exactly how many messages it lost while the others lose none.

use std::time::Duration;

use ailogs::config::Config;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestApp, now_ns, test_config};
use crate::stream::{Socket, connect, next, send, until};

fn stream_url(app: &TestApp) -> String {
    app.url("/api/v1/ai_logs/stream").replacen("http://", "ws://", 1)
}

/// Connects with `header` set on the upgrade request; the handshake's HTTP status if refused.
async fn connect_with(app: &TestApp, header: Option<(&str, &str)>, query: &str) -> Result<Socket, u16> {
    let mut req = format!("{}{query}", stream_url(app))
        .into_client_request()
        .expect("request");
    if let Some((name, value)) = header {
        req.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed unexpectedly: {e}"),
    }
}

/// The close code the server ends the connection with (messages before it skipped).
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn keyed(names: &[&str]) -> (Config, Vec<String>) {
    let mut config = test_config();
    let keys = names
        .iter()
        .map(|n| {
            let (key, entry) = ailogs::auth::generate_entry(n, ailogs::config::Role::Admin, None);
            config.auth.api_keys.push(entry);
            key
        })
        .collect();
    (config, keys)
}

#[tokio::test]
async fn api_keys_guard_the_rest_api_and_the_stream() {
    let (config, keys) = keyed(&["ops"]);
    let key = &keys[0];
    let app = TestApp::with_config(config).await;

    // REST: refused without a key or with a wrong one; open paths stay open.
    let status = |req: reqwest::RequestBuilder| async move { req.send().await.expect("sent").status().as_u16() };
    let patterns = app.url("/api/v1/ai_logs/patterns");
    assert_eq!(status(app.client.get(&patterns)).await, 401);
    assert_eq!(
        status(app.client.get(&patterns).header("x-api-key", "ailk_wrong")).await,
        401
    );
    assert_eq!(status(app.client.get(&patterns).header("x-api-key", key)).await, 200);
    assert_eq!(status(app.client.get(&patterns).bearer_auth(key)).await, 200);
    let (code, body) = app.get_json("/api/v1/ai_logs/query?service=api").await;
    assert_eq!((code, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
    assert_eq!(status(app.client.get(app.url("/api/v1/ai_logs/health"))).await, 200);
    assert_eq!(status(app.client.get(app.url("/metrics"))).await, 200);

    // Stream, key in a header; a wrong one is refused before the upgrade.
    let bearer = format!("Bearer {key}");
    let mut ws = connect_with(&app, Some(("authorization", &bearer)), "")
        .await
        .expect("upgrade");
    send(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    assert_eq!(
        connect_with(&app, Some(("x-api-key", "ailk_wrong")), "").await.err(),
        Some(401)
    );

    // Key in the first message: `auth`, or inside `subscribe`.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "auth", "api_key": key})).await;
    assert_eq!(next(&mut ws).await["type"], "authenticated");
    send(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "subscribe", "api_key": key})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");

    // No key, or a wrong one, in the first message: an error naming why, then 4001.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(next(&mut ws).await["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, 4001);
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "auth", "api_key": "ailk_wrong"})).await;
    assert_eq!(close_code(&mut ws).await, 4001);

    // A key in the URL only where configured.
    assert_eq!(
        connect_with(&app, None, &format!("?api_key={key}")).await.err(),
        Some(400)
    );
    app.stop().await;

    let (mut config, keys) = keyed(&["browser"]);
    config.auth.allow_url_key = true;
    let app = TestApp::with_config(config).await;
    let mut ws = connect_with(&app, None, &format!("?api_key={}", keys[0]))
        .await
        .expect("URL key accepted when configured");
    send(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    app.stop().await;
}

#[tokio::test]
async fn subscriber_limits_per_key_and_per_process_close_with_codes() {
    let (mut config, keys) = keyed(&["a", "b"]);
    config.stream.max_subscribers = 3;
    config.stream.max_subscribers_per_key = 2;
    let app = TestApp::with_config(config).await;
    let key_a = ("x-api-key", keys[0].as_str());
    let key_b = ("x-api-key", keys[1].as_str());

    let mut held = Vec::new();
    for _ in 0..2 {
        let mut ws = connect_with(&app, Some(key_a), "").await.expect("upgrade");
        send(&mut ws, json!({"type": "subscribe"})).await;
        assert_eq!(next(&mut ws).await["type"], "connected");
        held.push(ws);
    }
    let mut third_a = connect_with(&app, Some(key_a), "").await.expect("upgrade");
    assert_eq!(close_code(&mut third_a).await, 4029, "key a holds its two");

    let mut ws = connect_with(&app, Some(key_b), "").await.expect("upgrade");
    send(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    held.push(ws);
    let mut fourth = connect_with(&app, Some(key_b), "").await.expect("upgrade");
    assert_eq!(close_code(&mut fourth).await, 1013, "the process serves three");

    // A closed subscription gives its slot back.
    let mut gone = held.remove(0);
    gone.close(None).await.expect("close");
    let mut again = None;
    for _ in 0..50 {
        let mut ws = connect_with(&app, Some(key_a), "").await.expect("upgrade");
        send(&mut ws, json!({"type": "subscribe"})).await;
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"connected\"") => {
                again = Some(ws);
                break;
            }
            // The server may not have seen the close yet.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(again.is_some(), "the slot came back");
    app.stop().await;
}

/// A line with a 2 KB message, so a few thousand fill the socket buffers of a client that
/// does not read.
fn bulk_line(i: usize) -> String {
    json!({"service": "bulk", "level": "info", "message": format!("bulk line {i} {}", "x".repeat(2000))}).to_string()
}

#[tokio::test]
async fn a_stalled_client_is_told_what_it_lost_and_the_others_lose_nothing() {
    let mut config = test_config();
    config.stream.queue = 1024;
    // The stall below must end in `dropped`, not in a close for a stalled send.
    config.stream.send_timeout_ms = 120_000;
    let app = TestApp::with_config(config).await;
    let filter = json!({"type": "subscribe", "filter": {"services": ["bulk"], "severity_threshold": "info"}});
    let mut fast = connect(&app).await;
    send(&mut fast, filter.clone()).await;
    assert_eq!(next(&mut fast).await["type"], "connected");
    let mut slow = connect(&app).await;
    send(&mut slow, filter).await;
    assert_eq!(next(&mut slow).await["type"], "connected");

    // The slow client reads nothing while 8,000 lines (about 17 MB of messages) go out.
    const BATCHES: usize = 16;
    const PER_BATCH: usize = 500;
    // Ids of every message the fast client gets (alerts, such as a new template, too).
    let mut fast_ids = Vec::new();
    let mut fast_logs = 0;
    for b in 0..BATCHES {
        let t = now_ns();
        let lines: Vec<(i64, String)> = (0..PER_BATCH)
            .map(|i| (t + i as i64, bulk_line(b * PER_BATCH + i)))
            .collect();
        app.push_stream(json!({"app": "bulk"}), &lines).await;
        while fast_logs < (b + 1) * PER_BATCH {
            let m = next(&mut fast).await;
            match m["type"].as_str() {
                Some("log") => fast_logs += 1,
                Some("alert") => {}
                other => panic!("the fast client loses nothing, got {other:?}"),
            }
            fast_ids.push(m["id"].as_u64().expect("id"));
        }
    }
    assert!(
        fast_ids.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive ids, none lost"
    );
    let last = *fast_ids.last().expect("ids");

    // Now it reads: what it got plus what it was told it lost is every message.
    let (mut received, mut dropped, mut told) = (0u64, 0u64, 0);
    loop {
        let m = next(&mut slow).await;
        match m["type"].as_str() {
            Some("log" | "alert") => {
                received += 1;
                if m["id"].as_u64() == Some(last) {
                    break;
                }
            }
            Some("dropped") => {
                dropped += m["count"].as_u64().expect("count");
                told += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        told >= 1 && dropped > 0,
        "the stall cost messages and the client was told"
    );
    assert_eq!(received + dropped, fast_ids.len() as u64);
    let metrics: Value = json!(
        reqwest::get(app.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    );
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains(&format!("ailogs_stream_dropped_total {dropped}"))),
        "the metric counts them"
    );
    // The slow client is still served.
    app.push_stream(json!({"app": "bulk"}), &[(now_ns(), bulk_line(999_999))])
        .await;
    let after = until(&mut slow, "log").await;
    assert!(after.last().and_then(|m| m["id"].as_u64()) > Some(last));
    app.stop().await;
}
