//! The `detected_patterns` and `log_templates` views: merged across batches, read back as
//! the pattern counts `GET /patterns` serves with Postgres.

use std::sync::Arc;

use ailogs::store::postgres::PartitionCommit;
use ailogs_pipeline::insight_delta::{InsightBatch, PatternMinute, TemplateDelta};
use ailogs_pipeline::usage::UsageBatch;

use crate::env::TestDb;

const MINUTE: i64 = 60_000_000_000;

fn batch(hits: &[(&str, &str, i64, i64)], template: (u64, &str, i64, i64, i64)) -> InsightBatch {
    let mut b = InsightBatch::default();
    for &(id, service, minute_ns, n) in hits {
        b.patterns.insert(
            PatternMinute {
                pattern_id: Arc::from(id),
                service: service.into(),
                minute_ns,
            },
            n,
        );
    }
    let (id, text, first_ns, last_ns, count) = template;
    b.templates.insert(
        id,
        TemplateDelta {
            service: "api".into(),
            template: text.into(),
            first_ns,
            last_ns,
            count,
        },
    );
    b
}

#[tokio::test]
async fn pattern_hits_and_templates_merge_across_batches() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let t0 = 1_800_000_000 * 1_000_000_000 / MINUTE * MINUTE;
    let commit = |expected, next| PartitionCommit {
        topic: "t".into(),
        partition: 0,
        expected,
        next,
    };
    let first = batch(
        &[
            ("rate_limit_exceeded", "api", t0, 3),
            ("rate_limit_exceeded", "gw", t0 + MINUTE, 1),
        ],
        (7, "user 1 hit the limit", t0 + 5_000, t0 + 9_000, 2),
    );
    ailogs::store::batch::commit(&pg, "g", &[commit(None, 10)], &UsageBatch::default(), &first)
        .await
        .expect("first");
    let second = batch(
        &[
            ("rate_limit_exceeded", "api", t0, 2),
            ("connection_refused", "api", t0 + 3 * MINUTE, 4),
        ],
        (7, "user <*> hit the limit", t0 + 1_000, t0 + 2 * MINUTE, 5),
    );
    ailogs::store::batch::commit(&pg, "g", &[commit(Some(10), 20)], &UsageBatch::default(), &second)
        .await
        .expect("second");
    // A fenced batch writes nothing.
    assert!(
        ailogs::store::batch::commit(&pg, "g", &[commit(Some(10), 30)], &UsageBatch::default(), &second)
            .await
            .is_err()
    );

    let stats = ailogs::store::insights::pattern_stats(&pg).await.expect("stats");
    let rate = stats.get("rate_limit_exceeded").expect("rate limit counted");
    assert_eq!(rate.count, 6);
    assert_eq!(rate.services.get("api"), Some(&5));
    assert_eq!(rate.services.get("gw"), Some(&1));
    assert_eq!(rate.first_seen_ns, t0);
    assert!(rate.last_seen_ns > t0 + MINUTE && rate.last_seen_ns < t0 + 2 * MINUTE);
    assert_eq!(stats.get("connection_refused").map(|c| c.count), Some(4));
    assert_eq!(stats.total(), 10);

    let (template, first, last, count): (
        String,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        i64,
    ) = sqlx::query_as("SELECT template, first_seen, last_seen, count FROM log_templates WHERE template_id = $1")
        .bind(ailogs_pipeline::templates::template_key(7))
        .fetch_one(pg.pool())
        .await
        .expect("template row");
    assert_eq!(template, "user <*> hit the limit", "the latest text wins");
    assert_eq!(count, 7);
    assert_eq!(
        first.timestamp_nanos_opt(),
        Some(t0 + 1_000),
        "microseconds, as Postgres keeps them"
    );
    assert_eq!(last.timestamp_nanos_opt(), Some(t0 + 2 * MINUTE));
    db.drop_db().await;
}

fn completed(id: &str, lines: &[(&str, i64, bool)]) -> ailogs_pipeline::correlate::RequestAnalysis {
    use ailogs_pipeline::correlate::{Tracker, TrackerConfig, analyze};
    use ailogs_pipeline::{Enriched, Level, LogRecord};
    let mut t = Tracker::new(TrackerConfig::default());
    for &(service, ts_ns, failed) in lines {
        let level = if failed { Level::Error } else { Level::Info };
        let mut r = LogRecord::new(ts_ns, service, level, "x");
        r.correlation_id = Some(id.into());
        t.observe(&Enriched::new(r));
    }
    let done = t.drain();
    analyze(&done[0].request, &t.services)
}

#[tokio::test]
async fn completed_requests_are_stored_and_a_request_completed_twice_adds_up() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let t0 = 1_800_000_000 * 1_000_000_000i64;
    let commit = |expected, next| PartitionCommit {
        topic: "t".into(),
        partition: 0,
        expected,
        next,
    };
    let first = InsightBatch {
        correlations: vec![
            completed("req-\"1\"", &[("api", t0, false), ("db", t0 + MINUTE / 60, true)]),
            completed("req-2", &[("api", t0, false)]),
        ],
        ..InsightBatch::default()
    };
    ailogs::store::batch::commit(&pg, "g", &[commit(None, 1)], &UsageBatch::default(), &first)
        .await
        .expect("first");
    // Lines of req-"1" that came after its idle timeout: a second, smaller completion.
    let second = InsightBatch {
        correlations: vec![completed("req-\"1\"", &[("worker", t0 + 2 * MINUTE, false)])],
        ..InsightBatch::default()
    };
    ailogs::store::batch::commit(&pg, "g", &[commit(Some(1), 2)], &UsageBatch::default(), &second)
        .await
        .expect("second");
    let row: (Vec<String>, i64, i64, Option<String>, serde_json::Value) = sqlx::query_as(
        "SELECT services, lines, errors, root_cause, graph FROM ai_correlations WHERE correlation_id = $1",
    )
    .bind("req-\"1\"")
    .fetch_one(pg.pool())
    .await
    .expect("row");
    let (mut services, lines, errors, root_cause, graph) = row;
    services.sort();
    assert_eq!(services, ["api", "db", "worker"]);
    assert_eq!((lines, errors), (3, 1));
    assert_eq!(root_cause.as_deref(), Some("db"), "the larger part's analysis is kept");
    assert_eq!(graph["root_cause"]["service"], "db");
    let read = ailogs::store::correlations::read(&pg, "req-2").await.expect("read");
    assert_eq!(read.map(|g| g["lines"].clone()), Some(serde_json::json!(1)));
    assert!(
        ailogs::store::correlations::read(&pg, "nope")
            .await
            .expect("read")
            .is_none()
    );
    db.drop_db().await;
}
