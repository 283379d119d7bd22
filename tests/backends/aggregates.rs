//! `GET /metrics` (aggregated): Postgres and the memory views give the same answer for the
//! same lines, because both feed one `Series`.

use ailogs::store::postgres::PartitionCommit;
use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::usage::{SourcePos, UsageBatch};
use ailogs_pipeline::{Enriched, Level, LogRecord};
use serde_json::Value;

use crate::env::TestDb;

const MIN: i64 = 60_000_000_000;

async fn lines(now_ns: i64) -> Vec<Enriched> {
    let patterns = ailogs::patterns::PatternService::load(None)
        .await
        .expect("shipped catalog");
    let mut scanner = patterns.matcher().scanner();
    let mut out = Vec::new();
    for i in 0..120i64 {
        let failed = i % 7 == 0;
        let mut r = LogRecord::new(
            now_ns - (i % 50) * MIN - i,
            ["gateway", "api", "worker"][(i % 3) as usize],
            if failed { Level::Error } else { Level::Info },
            if failed {
                "OpenAI API error: 429 Too Many Requests, rate limit exceeded"
            } else {
                "completion done"
            },
        );
        r.model = Some(["gpt-4o", "claude-3-5-sonnet-20241022"][(i % 2) as usize].into());
        r.workspace_id = Some(format!("ws-{}", i % 4).into());
        r.request_type = Some("ai_completion".into());
        r.input_tokens = Some(100 + i as u64);
        r.output_tokens = Some(10);
        r.duration_ms = Some(20.0 + i as f64);
        r.success = Some(!failed);
        out.push(Enriched::scanned(r, &mut scanner));
    }
    // Lines that are no request but hit the catalog.
    for i in 0..5 {
        let r = LogRecord::new(
            now_ns - i * MIN,
            "api",
            Level::Error,
            "connect ECONNREFUSED 10.0.0.7:5432",
        );
        out.push(Enriched::scanned(r, &mut scanner));
    }
    out
}

async fn get(base: &str, query: &str) -> Value {
    let resp = reqwest::get(format!("{base}/api/v1/ai_logs/metrics?{query}"))
        .await
        .expect("metrics");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

async fn serve(config: ailogs::config::Config) -> (String, ailogs::api::AppState, tokio::sync::oneshot::Sender<()>) {
    let app = ailogs::app::Application::build(config).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    (base, state, tx)
}

fn without_source(mut v: Value) -> Value {
    for k in ["source", "served_in_ms"] {
        v.as_object_mut().expect("object").remove(k);
    }
    v
}

#[tokio::test]
async fn postgres_and_memory_views_agree() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let lines = lines(now).await;
    let book = pg.load_prices().await.expect("prices");
    let (mut usage, mut insights) = (UsageBatch::default(), InsightBatch::default());
    for (i, e) in lines.iter().enumerate() {
        let source = SourcePos {
            topic: "t".into(),
            partition: 0,
            offset: i as i64,
        };
        usage.add(e, &book, source);
        insights.add(e);
    }
    let commit = PartitionCommit {
        topic: "t".into(),
        partition: 0,
        expected: None,
        next: lines.len() as i64,
    };
    ailogs::store::batch::commit(&pg, "g", &[commit], &usage, &insights)
        .await
        .expect("commit");

    let listen = "127.0.0.1:0".parse().expect("addr");
    let (pg_base, _, pg_stop) = serve(ailogs::config::Config {
        listen,
        database_url: Some(db.url.clone().into()),
        ..Default::default()
    })
    .await;
    let (mem_base, mem_state, mem_stop) = serve(ailogs::config::Config {
        listen,
        ..Default::default()
    })
    .await;
    mem_state.views.insert(lines, std::time::Instant::now());

    for query in [
        "time_range=2h&step=1h&group_by=model",
        "time_range=2h&step=1h&group_by=service",
        "time_range=2h&step=1h&group_by=workspace&services=api,gateway",
        "time_range=2h&step=1h&group_by=operation&workspace_id=ws-1&models=gpt-4o",
    ] {
        let from_pg = get(&pg_base, query).await;
        let from_views = get(&mem_base, query).await;
        assert_eq!(from_pg["source"], "postgres");
        assert_eq!(from_views["source"], "views");
        assert_eq!(without_source(from_pg), without_source(from_views.clone()), "{query}");
    }
    let all = get(&mem_base, "time_range=2h&step=1h&group_by=service").await;
    assert_eq!(all["total"]["requests"], 120, "{all}");
    assert_eq!(all["total"]["errors"], 18, "every 7th of 120 failed");
    assert_eq!(all["total"]["input_tokens"], (0..120).map(|i| 100 + i).sum::<i64>());
    let p50 = all["total"]["latency_ms"]["p50"].as_f64().expect("p50");
    assert!((p50 - 79.5).abs() < 2.0, "median of 20..139 ms: {p50}");
    assert_eq!(all["by_group"].as_array().expect("groups").len(), 3);
    let api = all["by_group"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == "api")
        .expect("api");
    assert!(api["pattern_hits"]["connectivity"].as_u64().unwrap_or(0) >= 5, "{api}");
    let _ = (pg_stop.send(()), mem_stop.send(()));
    db.drop_db().await;
}
