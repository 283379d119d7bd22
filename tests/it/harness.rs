//! Starts ailogs on a free port and talks to it.

use std::time::{Duration, Instant};

use ailogs::api::AppState;
use ailogs::app::Application;
use ailogs::config::Config;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        workers: 2,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with_config(test_config()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let app = Application::build(config).await.expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let state = app.state();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            state,
            stop: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("JSON body");
        (status, body)
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(ce) = encoding {
            req = req.header("content-encoding", ce);
        }
        let resp = req.send().await.expect("request sent");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }

    /// Pushes one stream as Loki JSON: (timestamp ns, line) pairs; expects 204.
    pub async fn push_stream(&self, labels: Value, lines: &[(i64, String)]) {
        let values: Vec<Value> = lines
            .iter()
            .map(|(ts, l)| serde_json::json!([ts.to_string(), l]))
            .collect();
        let body = serde_json::json!({"streams": [{"stream": labels, "values": values}]});
        let (status, text) = self
            .post(
                "/loki/api/v1/push",
                Some("application/json"),
                None,
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, 204, "{text}");
    }

    /// Pushes the Promtail-shaped golden request from `shared/loki-golden`; returns the status.
    pub async fn push_golden(&self) -> u16 {
        self.post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            golden("push.snappy"),
        )
        .await
        .0
    }

    /// Waits until the views have taken in `n` lines in all (pushes are asynchronous).
    pub async fn wait_inserted(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let inserted = self.state.views.stats().held.inserted_total;
            if inserted >= n {
                assert_eq!(inserted, n, "more lines than pushed reached the views");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {inserted} of {n} lines reached the views"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server the way a signal would, and waits for the drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stopped cleanly");
        }
    }
}

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().expect("now fits in i64 ns")
}

pub fn rfc3339(ns: i64) -> String {
    ailogs_pipeline::normalize::time::format_rfc3339(ns)
}

pub fn golden(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/loki-golden")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (tests need ../shared beside the checkout)",
            path.display()
        )
    })
}

/// The string `field` of each object in a JSON array (none when `array` is not an array).
pub fn strings<'a>(array: &'a Value, field: &str) -> Vec<&'a str> {
    array
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o[field].as_str())
        .collect()
}
