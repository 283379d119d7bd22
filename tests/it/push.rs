//! The push endpoints: every body kind Loki accepts, every malformed kind refused.

use std::io::Write;

use serde_json::json;

use crate::harness::{TestApp, golden, now_ns, strings, test_config};

#[tokio::test]
async fn golden_protobuf_push_lands_exactly() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post(
            "/loki/api/v1/push",
            Some("application/x-protobuf"),
            None,
            golden("push.snappy"),
        )
        .await;
    assert_eq!((status, body.as_str()), (204, ""));
    app.wait_inserted(1).await;
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!(
        health["components"]["views"]["newest_event"],
        "2023-11-14T22:13:20.123456789Z"
    );
    let recs = app.state.views.select_all(&Default::default());
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(&*r.message, "hello");
    assert_eq!(r.ts_ns, 1_700_000_000_123_456_789);
    assert_eq!(r.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(r.labels.get("job").map(String::as_str), Some("x"));
    assert_eq!(
        r.metadata.as_ref().and_then(|m| m.get("trace_id")).map(String::as_str),
        Some("abc")
    );
    assert_eq!(
        r.correlation_id.as_deref(),
        Some("abc"),
        "trace_id metadata correlates the line"
    );
    assert_eq!(&*r.service, "web", "service from the app label");

    let (status, body) = app
        .get_json("/api/v1/ai_logs/query?correlation_id=abc&verbosity=detailed")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_matched"], 1, "{body}");
    let line = &body["lines"][0];
    assert_eq!(line["t"], "2023-11-14T22:13:20.123456789Z");
    assert_eq!(line["ts_ns"], 1_700_000_000_123_456_789_i64);
    assert_eq!(line["message"], "hello");
    assert_eq!(line["labels"], serde_json::json!({"app": "web", "job": "x"}));
    assert_eq!(line["metadata"], serde_json::json!({"trace_id": "abc"}));
    app.stop().await;
}

fn json_push(ts: i64, line: &str, trace: &str) -> Vec<u8> {
    json!({"streams":[{"stream":{"app":"gateway","env":"test"},"values":[[ts.to_string(), line, {"trace_id": trace}]]}]})
        .to_string()
        .into_bytes()
}

async fn query_correlation(app: &TestApp, id: &str) -> serde_json::Value {
    let (status, body) = app
        .get_json(&format!(
            "/api/v1/ai_logs/query?mode=errors&correlation_id={id}&verbosity=detailed"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn json_gzip_and_deflate_pushes_are_queryable() {
    let app = TestApp::start().await;
    let now = now_ns();
    let line = |msg: &str| {
        json!({"level": "error", "message": msg, "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 2}}).to_string()
    };

    let plain = json_push(now - 3_000_000_000, &line("plain json"), "t-plain");
    assert_eq!(
        app.post("/loki/api/v1/push", Some("application/json"), None, plain.clone())
            .await
            .0,
        204
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json_push(now - 2_000_000_000, &line("gzip json"), "t-gzip"))
        .expect("gzip");
    assert_eq!(
        app.post(
            "/loki/api/v1/push",
            Some("application/json; charset=utf-8"),
            Some("gzip"),
            gz.finish().expect("gz")
        )
        .await
        .0,
        204
    );

    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&json_push(now - 1_000_000_000, &line("deflate json"), "t-deflate"))
        .expect("zlib");
    assert_eq!(
        app.post(
            "/loki/api/v1/push",
            Some("application/json"),
            Some("deflate"),
            z.finish().expect("z")
        )
        .await
        .0,
        204
    );

    app.wait_inserted(3).await;
    for (id, msg) in [
        ("t-plain", "plain json"),
        ("t-gzip", "gzip json"),
        ("t-deflate", "deflate json"),
    ] {
        let body = query_correlation(&app, id).await;
        assert_eq!(body["total_matched"], 1, "{body}");
        let l = &body["lines"][0];
        assert_eq!(l["message"], msg);
        assert_eq!(l["service"], "gateway");
        assert_eq!(l["tokens_used"], 12);
        assert_eq!(l["labels"]["env"], "test");
        assert_eq!(l["metadata"]["trace_id"], id);
    }
    app.stop().await;
}

#[tokio::test]
async fn ndjson_ingest_accepts_good_lines_and_dead_letters_bad_ones() {
    let app = TestApp::start().await;
    let good =
        json!({"service": "direct", "level": "warn", "message": "ok line", "correlation_id": "nd-1"}).to_string();
    let (status, body) = app
        .post(
            "/api/v1/ai_logs/ingest",
            Some("application/x-ndjson"),
            None,
            format!("{good}\n{good}\n").into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["accepted"],
        2
    );

    let (status, body) = app
        .post(
            "/api/v1/ai_logs/ingest",
            None,
            None,
            format!("{good}\nnot json\n[1]\n").into_bytes(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!((v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(1), Some(2)));
    assert_eq!(v["lines"][0]["line"], 2);
    assert_eq!(v["lines"][0]["reason"], "invalid_json");
    assert_eq!(v["lines"][1]["reason"], "not_an_object");

    app.wait_inserted(3).await;
    let (_, q) = app.get_json("/api/v1/ai_logs/query?correlation_id=nd-1").await;
    assert_eq!(q["total_matched"], 3);
    let (_, dl) = app.get_json("/api/v1/ai_logs/dead_letters").await;
    assert_eq!(dl["returned"], 2);
    assert_eq!(dl["dead_letters"][0]["reason"], "not_an_object");
    assert_eq!(dl["dead_letters"][1]["line"], "not json");
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_4xx_and_the_server_keeps_serving() {
    let mut config = test_config();
    config.ingest.max_body_bytes = 64 * 1024;
    let app = TestApp::with_config(config).await;
    let big = vec![b'x'; 65 * 1024];
    let bad_labels = {
        use ailogs::ingest::loki_proto::*;
        encode_snappy(&PushRequest {
            streams: vec![StreamAdapter {
                labels: b"{app=web}".to_vec(),
                entries: vec![],
                hash: 0,
            }],
            format: vec![],
        })
    };
    // (name, content type, content encoding, body, status, what the error must mention)
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "bad snappy",
            Some("application/x-protobuf"),
            None,
            b"definitely not snappy".to_vec(),
            400,
            "snappy",
        ),
        (
            "bad protobuf",
            Some("application/x-protobuf"),
            None,
            snap::raw::Encoder::new()
                .compress_vec(&[0x0a, 0xff, 0xff, 0xff])
                .expect("snappy"),
            400,
            "protobuf",
        ),
        (
            "framed snappy",
            Some("application/x-protobuf"),
            None,
            {
                let mut w = snap::write::FrameEncoder::new(Vec::new());
                w.write_all(&golden("push.pb")).expect("frame");
                w.into_inner().expect("frame")
            },
            400,
            "snappy",
        ),
        (
            "bad labels",
            Some("application/x-protobuf"),
            None,
            bad_labels,
            400,
            "couldn't parse labels",
        ),
        (
            "numeric timestamp",
            Some("application/json"),
            None,
            br#"{"streams":[{"stream":{"a":"b"},"values":[[1700000000,"x"]]}]}"#.to_vec(),
            400,
            "timestamp",
        ),
        (
            "bad json",
            Some("application/json"),
            None,
            b"{\"streams\": [".to_vec(),
            400,
            "JSON",
        ),
        (
            "non-string metadata",
            Some("application/json"),
            None,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":true}]]}]}"#.to_vec(),
            400,
            "metadata",
        ),
        (
            "no content type",
            None,
            None,
            golden("push.snappy"),
            400,
            "Content-Type",
        ),
        (
            "unsupported encoding",
            Some("application/json"),
            Some("br"),
            b"{}".to_vec(),
            400,
            "not supported",
        ),
        (
            "bad gzip",
            Some("application/json"),
            Some("gzip"),
            b"not gzip".to_vec(),
            400,
            "gzip",
        ),
        ("too large", Some("application/json"), None, big, 413, "larger than"),
    ];
    for (name, ct, ce, body, want, needle) in cases {
        let (status, text) = app.post("/loki/api/v1/push", ct, ce, body).await;
        assert_eq!(status, want, "{name}: {text}");
        assert!(text.contains(needle), "{name}: {text:?} should mention {needle}");
        assert!(
            text.ends_with('\n'),
            "{name}: Loki's plain-text errors end in a newline"
        );
    }
    let resp = app.client.get(app.url("/loki/api/v1/push")).send().await.expect("sent");
    assert_eq!(resp.status().as_u16(), 405);
    let (status, health) = app.get_json("/api/v1/ai_logs/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(app.push_golden().await, 204);
    app.wait_inserted(1).await;
    app.stop().await;
}

/// A producer with a broken clock must not poison freshness: events stamped far in the
/// future or before 1970 are dead-lettered with their reason, the rest of the push lands.
#[tokio::test]
async fn events_from_the_far_future_or_before_1970_are_dead_lettered() {
    let app = TestApp::start().await;
    let now = now_ns();
    let line = |ts: &str, msg: &str| json!({"timestamp": ts, "level": "info", "message": msg}).to_string();
    app.push_stream(
        json!({"app": "clocks"}),
        &[
            (now, line("2100-01-01T00:00:00Z", "from the future")),
            (now, line("1960-05-01T00:00:00Z", "from the past")),
            (now, line(&crate::harness::rfc3339(now), "on time")),
        ],
    )
    .await;
    app.wait_inserted(1).await;
    let (_, dl) = app.get_json("/api/v1/ai_logs/dead_letters").await;
    assert_eq!(dl["returned"], 2, "{dl}");
    for d in dl["dead_letters"].as_array().expect("dead letters") {
        assert_eq!(d["reason"], "timestamp_out_of_range", "{d}");
    }
    let details = strings(&dl["dead_letters"], "detail");
    assert!(
        details
            .iter()
            .any(|d| d.contains("2100-01-01") && d.contains("after the receive time")),
        "{details:?}"
    );
    assert!(details.iter().any(|d| d.contains("before 1970")), "{details:?}");
    let (_, health) = app.get_json("/api/v1/ai_logs/health").await;
    let newest = health["components"]["views"]["newest_event"]
        .as_str()
        .expect("newest event");
    assert!(!newest.starts_with("2100"), "freshness poisoned: {newest}");
    app.stop().await;
}
