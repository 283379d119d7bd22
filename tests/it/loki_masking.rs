//! Lines read back from Loki are masked like pushed ones: Loki holds what shippers sent,
//! secrets included, and no answer (first read or cached) may carry them.

use std::collections::BTreeMap;

use serde_json::json;

use crate::fake_loki::{Entry, FakeLoki};
use crate::harness::{TestApp, now_ns, test_config};

const S: i64 = 1_000_000_000;

#[tokio::test]
async fn secrets_in_lines_only_loki_holds_are_masked_in_every_answer() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let entries: Vec<Entry> = (0..20)
        .map(|i| Entry {
            ts_ns: now - 7_200 * S + i * 60 * S,
            line: json!({"level": "error", "service": "api", "correlation_id": format!("r-{i}"),
                         "message": format!("login {i} failed for jane.doe@example.com with Bearer abcdefghijklmnopqrstuvwxyz0123456789")})
            .to_string(),
            metadata: BTreeMap::from([("user_email".to_owned(), "jane.doe@example.com".to_owned())]),
        })
        .collect();
    loki.push(&[("service_name", "api")], entries);
    let mut config = test_config();
    config.loki_url = Some(loki.url());
    let app = TestApp::with_config(config).await;
    // A fixed window, so both reads ask Loki for the same part.
    let query = &format!(
        "/api/v1/ai_logs/query?services=api&start={}&end={}&limit=100&verbosity=detailed",
        (now - 10_800 * S) / S,
        now / S + 1
    );
    for read in ["from Loki", "from the cache"] {
        let (status, body) = app.get_json(query).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_matched"], 20, "{read}: {body}");
        let text = body.to_string();
        assert!(!text.contains("jane.doe@example.com"), "{read}: {text}");
        assert!(!text.contains("abcdefghijklmnopqrstuvwxyz0123456789"), "{read}: {text}");
        assert!(text.contains("<email:"), "{read}: the mask is there: {text}");
    }
    assert_eq!(loki.requests(), 1, "the second answer came from the cache");
    app.stop().await;
}
