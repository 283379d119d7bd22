//! The stream across replicas: a consumer process raises an alert and produces it to
//! `ai-logs.alerts`; two API replicas (separate applications, neither running a consumer)
//! tail the topic, so subscribers on both get the alert with the same offset, a client
//! resumes by that offset on either, and live lines come from `ai-logs.lines`, enriched by the
//! consumer (with their template), not decoded again by the replicas.

use std::time::{Duration, Instant};

use ailogs::app::Application;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::env::{Kafka, TestDb};
use crate::exactly_once::spawn_consumer;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Replica {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn replica(brokers: &str) -> Replica {
    let config = crate::env::kafka_ingest_config(brokers, crate::env::spool_dir());
    let app = Application::build(config).await.expect("replica builds");
    let base = format!("{}", app.local_addr());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Replica { base, stop, server }
}

async fn subscribe(r: &Replica, subscribe: Value) -> Socket {
    let url = format!("ws://{}/api/v1/ai_logs/stream", r.base);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    ws.send(Message::text(subscribe.to_string())).await.expect("send");
    let connected = next_of(&mut ws, &["connected"], Duration::from_secs(10))
        .await
        .expect("connected");
    assert_eq!(connected["type"], "connected");
    ws
}

/// The next message of one of `kinds`, or None after `within`.
async fn next_of(ws: &mut Socket, kinds: &[&str], within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let msg = tokio::time::timeout(left, ws.next()).await.ok()?;
        if let Some(Ok(Message::Text(t))) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"].as_str().is_some_and(|k| kinds.contains(&k)) {
                return Some(v);
            }
        }
    }
}

async fn push(r: &Replica, message: &str) {
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let line = json!({"service": "gateway", "level": "error", "message": message, "correlation_id": "req-replicas"});
    let body = json!({"streams": [{"stream": {"app": "gateway"}, "values": [[now.to_string(), line.to_string()]]}]});
    let resp = reqwest::Client::new()
        .post(format!("http://{}/loki/api/v1/push", r.base))
        .json(&body)
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status().as_u16(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_every_replica_with_one_offset_and_resume_on_any() {
    let kafka = Kafka::start(2);
    kafka
        .cluster
        .create_topic(ailogs::kafka::ALERTS_TOPIC, 1, 1)
        .expect("alerts topic");
    let db = TestDb::create().await;
    let log = std::env::temp_dir().join(format!("ailogs-replicas-{}.log", db.name()));
    let mut consumer = spawn_consumer(&kafka.brokers, &db.url, &log);
    let a = replica(&kafka.brokers).await;
    let b = replica(&kafka.brokers).await;

    let timeouts = json!({"type": "subscribe", "filter": {"pattern_alerts": ["timeout"], "logs": false}});
    let mut on_a = subscribe(&a, timeouts.clone()).await;
    let mut on_b = subscribe(&b, timeouts.clone()).await;
    let mut lines_b = subscribe(
        &b,
        json!({"type": "subscribe", "filter": {"services": ["gateway"], "severity_threshold": "error"}}),
    )
    .await;

    // A line pushed to replica A reaches B's live subscribers through the consumer and
    // ai-logs.lines (B's tail may still be starting, so push until one arrives).
    let mut live = None;
    for i in 0..30 {
        push(&a, &format!("warming up {i}")).await;
        live = next_of(&mut lines_b, &["log"], Duration::from_secs(1)).await;
        if live.is_some() {
            break;
        }
    }
    let live = live.expect("a live line on replica B");
    assert_eq!(live["log"]["service"], "gateway", "{live}");
    assert!(live["log"]["template_id"].is_string(), "mined by the consumer: {live}");

    // The consumer process raises the alert; both replicas deliver it, same offset.
    push(&b, "upstream request timed out after 30s").await;
    let wait = Duration::from_secs(60);
    let from_a = next_of(&mut on_a, &["alert"], wait).await.expect("alert on replica A");
    let from_b = next_of(&mut on_b, &["alert"], wait).await.expect("alert on replica B");
    let offset = from_a["offset"].as_i64().expect("alert offset");
    assert_eq!(from_b["offset"].as_i64(), Some(offset), "{from_a} / {from_b}");
    assert_eq!(from_a["alert"], from_b["alert"]);
    assert!(from_a["alert"]["key"].as_str().is_some_and(|k| k.contains("timeout")));
    assert!(
        from_a["alert"]["samples"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("upstream request timed out after 30s"))),
        "evidence: {from_a}"
    );

    let health: Value = reqwest::get(format!("http://{}/api/v1/ai_logs/health", b.base))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    let stream = &health["components"]["stream"];
    assert_eq!(stream["status"], "ok", "{stream}");
    assert_eq!(stream["hub"]["subscribers"], 2, "{stream}");
    assert!(stream["hub"]["newest_offset"].as_i64() >= Some(offset), "{stream}");

    // A client that saw offset - 1 on A resumes on B and gets exactly that alert again;
    // one that saw it gets nothing replayed.
    let mut resumed = subscribe(
        &b,
        json!({"type": "subscribe", "resume_from_offset": offset - 1, "filter": {"pattern_alerts": ["timeout"], "logs": false}}),
    )
    .await;
    let again = next_of(&mut resumed, &["alert", "gone"], Duration::from_secs(10))
        .await
        .expect("replayed");
    assert_eq!(
        (again["type"].as_str(), again["offset"].as_i64()),
        (Some("alert"), Some(offset))
    );
    let mut current = subscribe(
        &a,
        json!({"type": "subscribe", "resume_from_offset": offset, "filter": {"pattern_alerts": ["timeout"], "logs": false}}),
    )
    .await;
    assert_eq!(
        next_of(&mut current, &["alert", "gone"], Duration::from_secs(2)).await,
        None,
        "nothing after the offset it saw"
    );

    // A replica started after the alert holds it as history: resumable, not sent live.
    let c = replica(&kafka.brokers).await;
    let mut fresh = subscribe(&c, timeouts).await;
    let mut resumed_on_c = None;
    for _ in 0..50 {
        let mut ws = subscribe(
            &c,
            json!({"type": "subscribe", "resume_from_offset": offset - 1, "filter": {"pattern_alerts": ["timeout"], "logs": false}}),
        )
        .await;
        resumed_on_c = next_of(&mut ws, &["alert"], Duration::from_millis(200)).await;
        if resumed_on_c.is_some() {
            break;
        }
    }
    let resumed_on_c = resumed_on_c.expect("replica C read the alert back at start");
    assert_eq!(resumed_on_c["offset"].as_i64(), Some(offset));
    assert_eq!(
        next_of(&mut fresh, &["alert"], Duration::from_secs(1)).await,
        None,
        "history is not news"
    );

    let _ = consumer.kill();
    let _ = consumer.wait();
    for r in [a, b, c] {
        let _ = r.stop.send(());
        r.server.await.expect("replica task").expect("replica stopped");
    }
    db.drop_db().await;
    let _ = std::fs::remove_file(log);
}
