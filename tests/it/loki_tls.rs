//! The fallback over https: a Loki behind TLS whose certificate a private CA signed answers
//! once `loki.ca_file` names that CA; without it the certificate is refused, the answer says
//! `missing: ["loki"]` and health says why; a ca_file that is not PEM stops start-up.

use std::collections::BTreeMap;

use ailogs::config::Config;
use serde_json::json;

use crate::fake_loki::{Entry, FakeLoki};
use crate::harness::{TestApp, now_ns, test_config};

const S: i64 = 1_000_000_000;

fn config(loki: &FakeLoki, ca_file: Option<std::path::PathBuf>) -> Config {
    let mut c = test_config();
    c.loki_url = Some(loki.url());
    c.loki.ca_file = ca_file;
    c.loki.timeout_ms = 5_000;
    c.loki.attempts = 1;
    c
}

#[tokio::test]
async fn an_https_loki_signed_by_a_private_ca_answers_once_the_ca_is_trusted() {
    let (loki, ca_pem) = FakeLoki::start_tls(5_000).await;
    let now = now_ns();
    // Two hours ago: only Loki holds these.
    let entries: Vec<Entry> = (0..50)
        .map(|i| Entry {
            ts_ns: now - 7_200 * S + i * 60 * S,
            line: json!({"level": "error", "service": "api", "message": format!("upstream call {i} failed")})
                .to_string(),
            metadata: BTreeMap::new(),
        })
        .collect();
    loki.push(&[("service_name", "api")], entries);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("CA file");
    let query = "/api/v1/ai_logs/query?services=api&time_range=3h&limit=100";

    let trusted = TestApp::with_config(config(&loki, Some(ca_file))).await;
    let (status, body) = trusted.get_json(query).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_matched"], 50, "{body}");
    assert!(body["missing"].as_array().is_none_or(Vec::is_empty), "{body}");
    trusted.stop().await;
    let answered = loki.requests();
    assert!(answered > 0);

    // The system's roots do not know this CA: no request gets past the handshake.
    let untrusted = TestApp::with_config(config(&loki, None)).await;
    let (status, body) = untrusted.get_json(query).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing"], json!(["loki"]), "{body}");
    assert_eq!(body["total_matched"], 0, "{body}");
    assert_eq!(loki.requests(), answered, "refused before HTTP");
    let (_, health) = untrusted.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(health["components"]["loki"]["status"], "unreachable", "{health}");
    untrusted.stop().await;
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_stops_start_up_with_its_name() {
    let (loki, _) = FakeLoki::start_tls(5_000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, "not a certificate").expect("file");
    let err = ailogs::app::Application::build(config(&loki, Some(ca_file)))
        .await
        .err()
        .expect("start-up refuses the file");
    let chain = format!("{err:#}");
    assert!(chain.contains("loki.ca_file"), "{chain}");
    let missing = ailogs::app::Application::build(config(&loki, Some(dir.path().join("absent.pem"))))
        .await
        .err()
        .expect("start-up refuses a missing file");
    assert!(format!("{missing:#}").contains("absent.pem"), "{missing:#}");
}
