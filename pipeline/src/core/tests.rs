use std::sync::Arc;

use super::*;
use crate::patterns::{Catalog, Matcher, SharedMatcher};
use crate::{DecodeLimits, RawEntry, Rejection, labels_from};

fn lane() -> Lane {
    let matcher = Matcher::compile(Catalog::shipped().expect("catalog").patterns).expect("compile");
    Lane::new(DecodeLimits::default(), &SharedMatcher::new(matcher))
}

fn ingest(lane: &mut Lane, ts_s: i64, line: &str) -> Enriched {
    let labels = labels_from([("app", "api")]);
    lane.ingest(&RawEntry {
        ts_ns: ts_s * 1_000_000_000,
        line,
        labels: &labels,
        metadata: &[],
    })
    .expect("decodes")
}

fn source(offset: i64) -> SourcePos {
    SourcePos {
        topic: "t".into(),
        partition: 0,
        offset,
    }
}

#[test]
fn a_batch_counts_once_and_readers_see_it_without_the_core() {
    let mut lane = lane();
    let mut core = Core::new(
        CoreConfig {
            durable: true,
            ..CoreConfig::default()
        },
        PriceBook::shipped(),
    );
    let reader = core.reader();
    let lines = [
        r#"{"level":"error","message":"upstream request failed: connection refused","correlation_id":"r1"}"#,
        r#"{"level":"info","message":"AI operation completed","request_type":"ai_completion","model":"gpt-4o","input_tokens":10,"output_tokens":5,"workspace_id":"w1"}"#,
    ];
    let records: Vec<Enriched> = lines.iter().map(|l| ingest(&mut lane, 1, l)).collect();
    let prepared = core.prepare(records, vec![source(0), source(1)]);
    assert!(prepared.records.iter().all(|r| r.template.is_some()), "tagged");
    assert_eq!(prepared.usage.lines, 2);
    assert_eq!(prepared.usage.operations.len(), 1, "one AI request");
    assert!(!prepared.insights.patterns.is_empty(), "a pattern hit to persist");
    // Fenced: nothing is observed, so nothing alerts.
    core.abort(prepared);
    core.flush();
    assert!(reader.alerts_since(i64::MIN).is_empty());

    let records: Vec<Enriched> = lines.iter().map(|l| ingest(&mut lane, 1, l)).collect();
    let prepared = core.prepare(records, vec![source(0), source(1)]);
    let out = core.commit(prepared, 0);
    assert_eq!(out.records.len(), 2);
    assert!(!out.alerts.is_empty(), "the pattern hit raises an alert");
    assert_eq!(
        reader.alerts_since(i64::MIN).len(),
        out.alerts.len(),
        "published on commit"
    );
    let id = out.records[0].template.map(|t| t.id).expect("tagged");
    assert_eq!(
        reader.template(id).as_deref(),
        Some("upstream request failed: connection refused")
    );
    assert_eq!(reader.stats().live_requests, 1);
}

#[test]
fn alerts_are_republished_at_most_every_interval_and_on_tick() {
    let mut lane = lane();
    let mut core = Core::new(CoreConfig::default(), PriceBook::shipped());
    let reader = core.reader();
    let fail = r#"{"level":"error","message":"connection refused by upstream"}"#;
    core.process(vec![ingest(&mut lane, 1, fail)], 1_000);
    let first = reader.alerts_since(i64::MIN);
    assert_eq!(first.len(), 1);
    // Folded into the same alert 1 ms later: not yet republished...
    core.process(vec![ingest(&mut lane, 2, fail)], 1_000_000 + 1_000);
    assert_eq!(reader.alerts_since(i64::MIN)[0].count, 1);
    // ...until the interval has passed.
    core.tick(1_000 + CoreConfig::default().publish_interval_ns);
    assert_eq!(reader.alerts_since(i64::MIN)[0].count, 2);
}

#[test]
fn the_read_only_path_tags_with_known_templates_and_teaches_nothing() {
    let mut lane = lane();
    let mut core = Core::new(CoreConfig::default(), PriceBook::shipped());
    core.process(vec![ingest(&mut lane, 1, "user 1 logged in from 10.0.0.1")], 0);
    let labels = labels_from([("app", "api")]);
    let raws = [
        RawEntry {
            ts_ns: 5,
            line: "user 2 logged in from 10.0.0.2",
            labels: &labels,
            metadata: &[],
        },
        RawEntry {
            ts_ns: 6,
            line: "cache flushed",
            labels: &labels,
            metadata: &[],
        },
        RawEntry {
            ts_ns: 7,
            line: "   ",
            labels: &labels,
            metadata: &[],
        },
    ];
    let before = core.reader().stats().templates;
    let mut enriched: Vec<Result<Enriched, Rejection>> = raws.iter().map(|raw| lane.ingest(raw)).collect();
    for e in enriched.iter_mut().flatten() {
        core.tag_known(std::slice::from_mut(e));
    }
    assert!(enriched[0].as_ref().is_ok_and(|e| e.template.is_some()));
    assert!(
        enriched[1].as_ref().is_ok_and(|e| e.template.is_none()),
        "unknown: untagged"
    );
    assert!(enriched[2].is_err(), "refused like any line");
    // Lines no known template fits are mined among themselves, with their texts.
    let mut unknown: Vec<Enriched> = enriched
        .into_iter()
        .flatten()
        .filter(|e| e.template.is_none())
        .collect();
    let texts = Core::tag_among_themselves(&mut unknown);
    assert!(
        unknown[0].template.is_some_and(|t| texts.contains_key(&t.id)),
        "{texts:?}"
    );
    core.flush();
    assert_eq!(core.reader().stats().templates, before, "nothing mined");
    let _ = Arc::new(());
}

#[test]
fn requests_no_price_covers_are_named_by_model() {
    let mut lane = lane();
    let mut core = Core::new(CoreConfig::default(), PriceBook::shipped());
    let lines = [
        r#"{"level":"info","message":"AI operation completed","request_type":"ai_completion","model":"gpt-4o","input_tokens":10,"output_tokens":5}"#,
        r#"{"level":"info","message":"AI operation completed","request_type":"ai_completion","model":"acme-llm-9","input_tokens":10,"output_tokens":5}"#,
        r#"{"level":"info","message":"AI operation completed","request_type":"ai_completion","model":"acme-llm-9","input_tokens":3,"output_tokens":1}"#,
        r#"{"level":"info","message":"cache warmed","model":"acme-llm-9"}"#,
    ];
    let records: Vec<Enriched> = lines.iter().map(|l| ingest(&mut lane, 1_780_000_000, l)).collect();
    let out = core.process(records, 0);
    assert_eq!(
        out.unpriced,
        vec![(Arc::from("acme-llm-9"), 2)],
        "priced models and non-requests are not counted"
    );
}
