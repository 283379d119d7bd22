//! Kafka unreachable: pushes are still answered 204 from the local spool, and every line
//! reaches Kafka exactly once when it is back.

use std::collections::BTreeSet;
use std::time::Duration;

use ailogs::app::Application;
use ailogs::kafka::{RAW_TOPIC, RawMessage};
use serde_json::json;

use crate::env::{Kafka, read_all, spool_dir, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_outage_is_absorbed_by_the_spool() {
    let kafka = Kafka::start(2);
    let dir = spool_dir();
    let config = crate::env::kafka_ingest_config(&kafka.brokers, dir.clone());
    let app = Application::build(config).await.expect("app");
    let state = app.state();
    let url = format!("http://{}/loki/api/v1/push", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let push = |from: usize| {
        let values: Vec<_> = (from..from + 100)
            .map(|i| json!([now.to_string(), format!("{{\"message\":\"line {i}\"}}")]))
            .collect();
        client
            .post(&url)
            .json(&json!({"streams": [{"stream": {"app": "spool"}, "values": values}]}))
            .send()
    };
    assert_eq!(push(0).await.expect("push").status().as_u16(), 204);
    kafka.cluster.broker_down(1).expect("broker down");
    for from in [100, 200, 300] {
        let resp = push(from).await.expect("push while kafka is down");
        assert_eq!(
            resp.status().as_u16(),
            204,
            "answered from the spool: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    assert!(state.metrics.spool_lines.get() >= 300, "lines waited in the spool");
    assert!(state.metrics.spool_bytes.get() > 0);
    kafka.cluster.broker_up(1).expect("broker up");
    let probe = state.clone();
    wait_until("the spool to drain", Duration::from_secs(60), || {
        let s = probe.clone();
        async move { s.metrics.spool_bytes.get() == 0 }
    })
    .await;
    assert_eq!(push(400).await.expect("push after recovery").status().as_u16(), 204);
    let _ = tx.send(());
    server.await.expect("server").expect("stopped");

    let lines: Vec<String> = read_all(&kafka.brokers, RAW_TOPIC, 2)
        .iter()
        .map(|p| serde_json::from_slice::<RawMessage>(p).expect("raw message").line)
        .collect();
    let distinct: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(distinct.len(), 500, "every acknowledged line is in Kafka");
    assert_eq!(lines.len(), 500, "and only once");
    let _ = std::fs::remove_dir_all(dir);
}
