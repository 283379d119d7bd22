//! The Loki fallback against a fake Loki that behaves as LOKI.md documents: a window half in
//! the views and half in Loki, pagination past the 5000 cap, identical timestamps at a page
//! edge, Loki down or slow, injection strings, a request only Loki holds, the cache.

use std::collections::BTreeMap;

use ailogs::config::{Config, LokiIds};
use serde_json::{Value, json};

use crate::fake_loki::{Behaviour, Entry, FakeLoki};
use crate::harness::{TestApp, now_ns, strings, test_config};

const S: i64 = 1_000_000_000;

fn config(loki: &FakeLoki) -> Config {
    let mut c = test_config();
    c.loki_url = Some(loki.url());
    c.loki.timeout_ms = 5_000;
    c
}

fn line(i: usize, service: &str) -> String {
    json!({"level": "warn", "service": service, "correlation_id": format!("r-{i}"), "message": format!("step {i} done")})
        .to_string()
}

fn entries(lines: &[(i64, String)]) -> Vec<Entry> {
    lines
        .iter()
        .map(|(ts, l)| Entry {
            ts_ns: *ts,
            line: l.clone(),
            metadata: BTreeMap::new(),
        })
        .collect()
}

fn window<'a>(body: &'a Value, source: &str) -> &'a Value {
    body["windows"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["source"] == source))
        .unwrap_or_else(|| panic!("no {source} window in {body}"))
}

#[tokio::test]
async fn a_window_half_in_the_views_and_half_in_loki_has_no_gap_and_no_duplicate() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    // One line every 30 s for two hours; Loki holds them all, ailogs only the last hour
    // (it started then).
    let lines: Vec<(i64, String)> = (0..240)
        .map(|i| (now - 7_200 * S + i as i64 * 30 * S, line(i, "api")))
        .collect();
    loki.push(&[("service_name", "api")], entries(&lines));
    let app = TestApp::with_config(config(&loki)).await;
    app.push_stream(json!({"service_name": "api"}), &lines[120..]).await;
    app.wait_inserted(120).await;

    let (status, body) = app
        .get_json("/api/v1/ai_logs/query?services=api&time_range=3h&limit=1000&verbosity=detailed")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "views+loki", "{body}");
    assert_eq!(body["total_matched"], 240, "every line once: {}", body["windows"]);
    let mut messages = strings(&body["lines"], "message");
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 240, "no duplicate, no gap");
    assert_eq!(body["coverage"]["complete"], true, "{body}");
    let l = window(&body, "loki");
    assert!(
        l["logql"]
            .as_str()
            .is_some_and(|q| q.starts_with(r#"{service_name="api"}"#)),
        "{l}"
    );
    // Loki was asked only for the part before the views' coverage.
    let views_from = body["coverage"]["views_hold_since"].as_str().expect("views coverage");
    assert!(l["end"].as_str().expect("loki end") < "9", "{l}");
    assert!(l["start"].as_str() < Some(views_from), "{l} / {views_from}");
    // A window the views cover whole does not ask Loki.
    let before = loki.requests();
    let (_, recent) = app.get_json("/api/v1/ai_logs/query?services=api&time_range=30m").await;
    assert_eq!(recent["source"], "views", "{recent}");
    assert_eq!(loki.requests(), before);
    app.stop().await;
}

#[tokio::test]
async fn twelve_thousand_lines_page_past_the_cap_with_the_total_right_and_are_cached() {
    let loki = FakeLoki::start(5_000, Some("team-a")).await;
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..12_000)
        .map(|i| (now - 3_000 * S + i as i64 * S / 4, line(i, "api")))
        .collect();
    loki.push(&[("service_name", "api"), ("job", "ai")], entries(&lines));
    let mut c = config(&loki);
    c.loki.tenant = Some("team-a".into());
    let app = TestApp::with_config(c).await;

    // A fixed window: a `time_range` window moves with the clock, and two reads on either side
    // of a minute boundary ask Loki for different (minute-aligned) parts, each cached apart.
    let q = &format!(
        "/api/v1/ai_logs/query?services=api&start={}&end={}&limit=5",
        (now - 7_200 * S) / S,
        now / S + 1
    );
    let (status, body) = app.get_json(q).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "loki", "{body}");
    assert_eq!(body["total_matched"], 12_000, "{}", body["windows"]);
    let l = window(&body, "loki");
    assert_eq!(l["lines"], 12_000);
    assert!(
        l["requests"].as_u64().is_some_and(|r| r >= 3),
        "5000 per request at most: {l}"
    );
    assert_eq!(l["truncated"], false);
    assert_eq!(l["cached"], false);
    // The lines went through the core: templates, ids, ordered newest first.
    let first = &body["lines"][0];
    assert!(first["template_id"].as_str().is_some_and(|t| t.len() == 16), "{first}");
    assert_eq!(first["message"], "step 11999 done", "{first}");

    let requests = loki.requests();
    let (_, again) = app.get_json(q).await;
    assert_eq!(window(&again, "loki")["cached"], true, "{again}");
    assert_eq!(again["total_matched"], 12_000);
    assert_eq!(loki.requests(), requests, "served from the cache");
    let (_, fresh) = app.get_json(&format!("{q}&cache=false")).await;
    assert_eq!(window(&fresh, "loki")["cached"], false);
    assert!(loki.requests() > requests, "cache=false asks Loki");
    app.stop().await;
}

#[tokio::test]
async fn a_budget_says_truncated_and_how_to_narrow() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..3_000)
        .map(|i| (now - 3_000 * S + i as i64 * S, line(i, "api")))
        .collect();
    loki.push(&[("service_name", "api")], entries(&lines));
    let mut c = config(&loki);
    c.loki.max_lines = 1_000;
    let app = TestApp::with_config(c).await;
    let (_, body) = app.get_json("/api/v1/ai_logs/query?services=api&time_range=2h").await;
    assert_eq!(body["truncated"], true, "{body}");
    assert!(
        body["truncated_reason"].as_str().is_some_and(|r| r.contains("narrow")),
        "{body}"
    );
    assert_eq!(body["coverage"]["complete"], false);
    assert_eq!(body["total_matched"], 1_000);
    app.stop().await;
}

#[tokio::test]
async fn identical_timestamps_at_a_page_edge_are_neither_lost_nor_doubled() {
    // The server's cap is 100: learned from its 400, then paged.
    let loki = FakeLoki::start(100, None).await;
    let now = now_ns();
    // 350 lines in groups of 7 sharing one timestamp: page edges fall inside groups.
    let lines: Vec<(i64, String)> = (0..350)
        .map(|i| (now - 1_000 * S + (i / 7) as i64 * S, line(i, "api")))
        .collect();
    loki.push(&[("service_name", "api")], entries(&lines));
    let app = TestApp::with_config(config(&loki)).await;
    let (status, body) = app
        .get_json("/api/v1/ai_logs/query?services=api&time_range=1h&limit=1000")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_matched"], 350, "{}", body["windows"]);
    let mut messages = strings(&body["lines"], "message");
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 350);
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(health["components"]["loki"]["max_entries_per_request"], 100, "{health}");
    assert_eq!(health["components"]["loki"]["status"], "ok", "{health}");
    app.stop().await;
}

#[tokio::test]
async fn loki_down_still_answers_the_views_part_and_says_missing() {
    let loki = FakeLoki::start(5_000, None).await;
    loki.set(Behaviour::Down);
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..10).map(|i| (now - 60 * S + i as i64 * S, line(i, "api"))).collect();
    let app = TestApp::with_config(config(&loki)).await;
    app.push_stream(json!({"service_name": "api"}), &lines).await;
    app.wait_inserted(10).await;
    let (status, body) = app.get_json("/api/v1/ai_logs/query?services=api&time_range=1h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing"], json!(["loki"]), "{body}");
    assert_eq!(body["total_matched"], 10, "{body}");
    assert_eq!(body["coverage"]["complete"], false);
    assert_eq!(window(&body, "loki")["failed"], true);
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(health["components"]["loki"]["status"], "unreachable", "{health}");
    assert!(
        health["components"]["loki"]["last_error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{health}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_slow_loki_opens_the_breaker_and_queries_stop_waiting_for_it() {
    let loki = FakeLoki::start(5_000, None).await;
    loki.set(Behaviour::Slow(std::time::Duration::from_secs(30)));
    let mut c = config(&loki);
    c.loki.timeout_ms = 200;
    c.loki.attempts = 1;
    c.loki.breaker_failures = 2;
    c.loki.breaker_open_s = 600;
    let app = TestApp::with_config(c).await;
    let q = "/api/v1/ai_logs/query?services=api&time_range=1h&cache=false";
    for _ in 0..2 {
        let (_, body) = app.get_json(q).await;
        assert_eq!(body["missing"], json!(["loki"]), "{body}");
    }
    let asked = loki.requests();
    let (status, body) = app.get_json(q).await;
    assert_eq!(status, 200);
    assert_eq!(body["missing"], json!(["loki"]));
    assert!(
        window(&body, "loki")["error"]
            .as_str()
            .is_some_and(|e| e.contains("circuit breaker")),
        "{body}"
    );
    assert_eq!(loki.requests(), asked, "an open breaker sends nothing");
    app.stop().await;
}

#[tokio::test]
async fn injection_strings_reach_loki_only_as_the_values_they_are() {
    // Ids as line text (only verbatim values narrow the query) and as structured metadata
    // (every value is in the LogQL, escaped).
    for ids_in in [LokiIds::Text, LokiIds::Metadata] {
        let loki = FakeLoki::start(5_000, None).await;
        let now = now_ns();
        // Service names with control characters are refused by the API (400).
        let nasty = [
            r#"a"} |= "x"#,
            "back`tick\\ and \"quote\" | json | level=\"error\"",
            "}{ ✓ 中文 🚀 !~ `.*`",
        ];
        for (i, svc) in nasty.iter().enumerate() {
            let id = format!("{svc} | json");
            let l = json!({"level": "error", "service": svc, "correlation_id": id, "message": format!("boom {i}")});
            let mut e = entries(&[(now - 600 * S, l.to_string())]);
            e[0].metadata.insert("correlation_id".into(), id);
            loki.push(&[("service_name", svc)], e);
        }
        // A decoy the injection would reach if it escaped its string.
        loki.push(&[("service_name", "x")], entries(&[(now - 600 * S, line(99, "x"))]));
        let mut c = config(&loki);
        c.loki.ids_in = ids_in;
        let app = TestApp::with_config(c).await;
        for (i, svc) in nasty.iter().enumerate() {
            let url = format!(
                "/api/v1/ai_logs/query?time_range=1h&verbosity=detailed&services={}&correlation_id={}",
                urlencode(svc),
                urlencode(&format!("{svc} | json"))
            );
            let (status, body) = app.get_json(&url).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["missing"], json!([]), "Loki parsed the query: {body}");
            assert_eq!(strings(&body["lines"], "message"), vec![format!("boom {i}")], "{body}");
            let logql = window(&body, "loki")["logql"].as_str().unwrap_or_default().to_owned();
            assert_eq!(
                logql.contains("correlation_id="),
                ids_in == LokiIds::Metadata,
                "{logql}"
            );
        }
        let asked = loki.fake.queries.lock().len();
        assert_eq!(asked, nasty.len(), "one query each");
        app.stop().await;
    }
}

#[tokio::test]
async fn correlate_rebuilds_a_request_only_loki_holds_with_its_root_cause() {
    let loki = FakeLoki::start(5_000, None).await;
    let t = now_ns() - 1_800 * S;
    let ms = 1_000_000;
    let req = [
        (
            0,
            json!({"service": "api", "correlation_id": "old-1", "message": "POST /chat", "target_service": "llm-gateway"}),
        ),
        (
            10,
            json!({"service": "llm-gateway", "correlation_id": "old-1", "message": "fetching context", "peer.service": "vector-db"}),
        ),
        (
            12,
            json!({"service": "vector-db", "correlation_id": "old-1", "message": "search start"}),
        ),
        (
            5012,
            json!({"level": "error", "service": "vector-db", "correlation_id": "old-1", "message": "qdrant search timed out after 5000 ms"}),
        ),
        (
            5020,
            json!({"level": "error", "service": "llm-gateway", "correlation_id": "old-1", "message": "context fetch failed"}),
        ),
        (
            5030,
            json!({"level": "error", "service": "api", "correlation_id": "old-1", "message": "upstream returned 502"}),
        ),
    ];
    for (dt, l) in req {
        let svc = l["service"].as_str().expect("service").to_owned();
        loki.push(&[("service_name", &svc)], entries(&[(t + dt * ms, l.to_string())]));
    }
    let app = TestApp::with_config(config(&loki)).await;
    let (status, r) = app
        .get_json("/api/v1/ai_logs/correlate?correlation_id=old-1&time_window=2h")
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["source"], "loki", "{r}");
    assert_eq!(r["status"], "complete", "{r}");
    assert_eq!(r["root_cause"]["service"], "vector-db", "{r}");
    assert!(
        r["root_cause"]["evidence"][0]["patterns"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "Loki's lines matched the catalog: {r}"
    );
    let (status, _) = app
        .get_json("/api/v1/ai_logs/correlate?correlation_id=nowhere&time_window=2h")
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn rate_limited_calls_are_retried_then_reported() {
    let loki = FakeLoki::start(5_000, None).await;
    loki.set(Behaviour::RateLimited);
    let app = TestApp::with_config(config(&loki)).await;
    let (status, body) = app.get_json("/api/v1/ai_logs/query?services=api&time_range=1h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing"], json!(["loki"]));
    assert_eq!(loki.requests(), 3, "429 is retried up to loki.attempts times");
    assert!(
        window(&body, "loki")["error"]
            .as_str()
            .is_some_and(|e| e.contains("429")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_conversations_related_logs_include_what_only_loki_holds() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let conv = |dt_s: i64, msg: &str| {
        let l = json!({"level": "info", "service": "chat", "conversation_id": "c-1", "workspace_id": "w-1",
            "model": "gpt-4o-mini", "input_tokens": 12, "output_tokens": 30, "message": msg});
        (now - dt_s * S, l.to_string())
    };
    let old = vec![conv(3_600, "turn 1"), conv(3_500, "turn 2")];
    let recent = vec![conv(600, "turn 3"), conv(500, "turn 4")];
    loki.push(
        &[("service_name", "chat")],
        entries(&[old.clone(), recent.clone()].concat()),
    );
    let app = TestApp::with_config(config(&loki)).await;
    app.push_stream(json!({"service_name": "chat"}), &recent).await;
    app.wait_inserted(2).await;
    let (status, body) = app
        .get_json("/api/v1/ai_logs/conversations/c-1?include_related_logs=true&time_buffer=2h")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["related_logs_total"], 4, "{body}");
    assert_eq!(body["related_logs_source"], "views+loki", "{body}");
    assert_eq!(
        strings(&body["related_logs"], "message"),
        vec!["turn 1", "turn 2", "turn 3", "turn 4"]
    );
    assert_eq!(
        body["related_logs"][0]["input_tokens"], 12,
        "usage fields from Loki's lines"
    );
    app.stop().await;
}

#[tokio::test]
async fn analyze_reads_a_window_older_than_the_views_from_loki() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..6)
        .map(|i| {
            let l = json!({"level": "error", "service": "gateway",
                "message": format!("OpenAI API error: Rate limit reached for gpt-4o in organization org-{i} on tokens per min")});
            (now - 7_200 * S + i * S, l.to_string())
        })
        .collect();
    loki.push(&[("service_name", "gateway")], entries(&lines));
    let app = TestApp::with_config(config(&loki)).await;
    let (status, r) = app.get_json("/api/v1/ai_logs/analyze?time_range=3h").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["source"], "loki", "{r}");
    assert_eq!(r["lines_examined"], 6, "{r}");
    let patterns = r["patterns"].as_array().cloned().unwrap_or_default();
    assert!(
        patterns
            .iter()
            .any(|p| p["id"] == "rate_limit_exceeded" && p["count"] == 6),
        "{r}"
    );
    let top = r["top_templates"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        top.first().map(|t| t["count"].clone()),
        Some(json!(6)),
        "one template: {top:?}"
    );
    assert!(
        top[0]["template"].as_str().is_some_and(|t| t.contains("<*>")),
        "{top:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_redis_loki_answers_are_cached_there_for_every_replica() {
    let loki = FakeLoki::start(5_000, None).await;
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..50)
        .map(|i| (now - 7_200 * S + i as i64 * S, line(i, "api")))
        .collect();
    loki.push(&[("service_name", "api")], entries(&lines));
    let prefix = format!("ailogs-test-{}", uuid::Uuid::new_v4().simple());
    let replica = |loki: &FakeLoki| {
        let mut c = config(loki);
        c.redis_url = Some(crate::redis::redis_url().into());
        c.redis_prefix = prefix.clone();
        c
    };
    let a = TestApp::with_config(replica(&loki)).await;
    let b = TestApp::with_config(replica(&loki)).await;
    // A fixed window, so both reads ask for the same part (see the paging test).
    let q = &format!(
        "/api/v1/ai_logs/query?services=api&start={}&end={}",
        (now - 10_800 * S) / S,
        now / S + 1
    );
    let (_, first) = a.get_json(q).await;
    assert_eq!(first["total_matched"], 50, "{first}");
    assert_eq!(window(&first, "loki")["cached"], false);
    let asked = loki.requests();
    let (_, second) = b.get_json(q).await;
    assert_eq!(
        window(&second, "loki")["cached"],
        true,
        "another replica reads the cache: {second}"
    );
    assert_eq!(second["total_matched"], 50);
    assert_eq!(loki.requests(), asked);
    crate::redis::delete_prefix(&prefix).await;
    a.stop().await;
    b.stop().await;
}
