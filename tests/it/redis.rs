//! Redis hot views (real Redis on 127.0.0.1:6379): written by the pipeline, read by /query,
//! and a stalled Redis answered from the memory views with the gap said plainly.

use serde_json::json;

use crate::harness::{TestApp, now_ns, rfc3339, test_config};

pub fn redis_url() -> String {
    std::env::var("AILOGS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn delete_prefix(prefix: &str) {
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.expect("del");
    }
}

#[tokio::test]
async fn queries_read_redis_and_fall_back_when_it_stalls() {
    let prefix = format!("ailogs-test-{}", uuid::Uuid::new_v4().simple());
    let mut config = test_config();
    config.redis_url = Some(redis_url().into());
    config.redis_prefix = prefix.clone();
    let app = TestApp::with_config(config).await;
    let now = now_ns();
    let lines: String = (0..30)
        .map(|i| {
            let level = if i % 10 == 0 { "error" } else { "info" };
            format!(
                "{}\n",
                json!({"timestamp": rfc3339(now - (40 - i) * 1_000_000_000), "service": "svc", "level": level,
                "message": format!("step {i}"), "correlation_id": "r-1"})
            )
        })
        .collect();
    assert_eq!(
        app.post("/api/v1/ai_logs/ingest", None, None, lines.into_bytes())
            .await
            .0,
        200
    );
    app.wait_inserted(30).await;

    let (status, q) = app
        .get_json("/api/v1/ai_logs/query?mode=errors&services=svc&include_context=1")
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["views"], "redis", "{q}");
    assert_eq!(q["total_matched"], 3);
    assert_eq!(q["lines"][0]["message"], "step 20");
    assert_eq!(
        q["lines"][0]["context"]["before"][0]["message"], "step 19",
        "context from the redis records"
    );
    let (_, by_id) = app.get_json("/api/v1/ai_logs/query?correlation_id=r-1").await;
    assert_eq!(
        (by_id["views"].as_str(), by_id["total_matched"].as_u64()),
        (Some("redis"), Some(30))
    );
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(health["components"]["redis"]["status"], "ok");

    // Redis stops answering (every client paused): the query still answers, from memory.
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .expect("pause");
    let (status, q) = app.get_json("/api/v1/ai_logs/query?mode=errors&services=svc").await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["views"], "memory");
    assert_eq!(q["missing"], json!(["redis"]));
    assert_eq!(q["coverage"]["complete"], false);
    assert_eq!(q["total_matched"], 3, "this process consumed every line itself");
    // The pause ends by itself; stop once Redis answers again, so the next test finds it up.
    let mut answering = false;
    for _ in 0..100 {
        let ping = redis::cmd("PING").query_async::<String>(&mut conn).await;
        if ping.is_ok() {
            answering = true;
            break;
        }
    }
    assert!(answering, "redis answers again after the pause");
    app.stop().await;
    delete_prefix(&prefix).await;
}

#[tokio::test]
async fn redis_down_at_start_is_reported_not_fatal() {
    let mut config = test_config();
    // Nothing listens on port 1.
    config.redis_url = Some("redis://127.0.0.1:1".into());
    let app = TestApp::with_config(config).await;
    let line = json!({"service": "svc", "level": "error", "message": "boom"}).to_string();
    assert_eq!(
        app.post("/api/v1/ai_logs/ingest", None, None, line.into_bytes())
            .await
            .0,
        200
    );
    app.wait_inserted(1).await;
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["components"]["redis"]["status"], "unreachable");
    let (status, q) = app.get_json("/api/v1/ai_logs/query?mode=errors").await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        (q["views"].as_str(), q["total_matched"].as_u64()),
        (Some("memory"), Some(1))
    );
    assert_eq!(q["missing"], json!(["redis"]));
    app.stop().await;
}
