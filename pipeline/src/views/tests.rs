//! The indexed answers must equal the scan's on the same lines: every mode, aggregation,
//! de-duplication and format, over random lines, windows and evictions.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::query::{self, Context, QuerySpec, SliceContext, Window};
use crate::record::LogRecord;

const S: i64 = 1_000_000_000;

fn line(i: usize, ts: i64, svc: u8, lvl: u8, msg: u8, dur: Option<u16>, err: bool) -> Enriched {
    let services = ["api", "worker", "admin-ui"];
    let levels = [Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Fatal];
    let messages = [
        "upstream timeout after 30s",
        "chat completion done",
        "User bob logged in",
        "queue depth 900",
        "request 42 start",
    ];
    let mut r = LogRecord::new(
        ts * S,
        services[svc as usize % 3],
        levels[lvl as usize % 5],
        messages[msg as usize % 5],
    );
    r.duration_ms = dur.map(f64::from);
    r.request_type = dur.map(|_| ["chat", "embed"][i % 2].into());
    r.correlation_id = (!i.is_multiple_of(3)).then(|| format!("req-{}", i % 7)).map(Into::into);
    r.conversation_id = (i % 4 != 1).then(|| format!("conv-{}", i % 9)).map(Into::into);
    r.model = i.is_multiple_of(2).then(|| "gpt-4o".into());
    r.workspace_id = (i % 5 != 4).then(|| ["ws-a", "ws-b", "ws-c"][i % 3].into());
    r.tokens_used = i.is_multiple_of(2).then_some(i as u64);
    if err {
        r.error = Some(format!("connection refused by 10.0.0.{}", i % 5).into());
        r.success = Some(false);
    }
    Enriched::new(r)
}

/// The answer as JSON, without the sketch-estimated latency figures and the order they give
/// the rows (the scan computes them exactly over the window, the sketches over the minutes
/// it touches; `latency_sketches_are_close` checks them).
fn answer_json(out: query::QueryOutcome) -> Value {
    let mut v = serde_json::to_value(out).expect("outcome serializes");
    if let Some(stats) = v.get_mut("stats").and_then(Value::as_array_mut) {
        stats.sort_by_key(|r| (r["service"].to_string(), r["operation"].to_string()));
        for row in stats {
            for k in ["p50_ms", "p95_ms", "p99_ms", "mean_ms"] {
                row.as_object_mut().map(|o| o.remove(k));
            }
        }
    }
    v
}

const QUERIES: &[&str] = &[
    "mode=errors&limit=5",
    "mode=troubleshoot&include_context=2&limit=7",
    "mode=troubleshoot&severity_threshold=info&format=narrative&limit=3",
    "mode=errors&aggregation=by_error",
    "mode=troubleshoot&aggregation=by_service&limit=2",
    "mode=troubleshoot&aggregation=by_pattern&format=timeline",
    "mode=errors&deduplicate=true&limit=2",
    "mode=troubleshoot&deduplicate=true&format=timeline",
    "mode=performance&limit=4",
    "mode=performance&aggregation=by_service",
    "mode=audit&limit=3",
    "mode=troubleshoot&services=api,admin-ui&limit=4&verbosity=detailed",
    "mode=conversation&limit=6",
    "mode=conversation&format=narrative&limit=2",
];

fn spec(q: &str) -> QuerySpec {
    QuerySpec::from_params(q.split('&').filter_map(|kv| kv.split_once('='))).expect("valid spec")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn indexed_answers_equal_the_scan(
        lines in proptest::collection::vec(
            (0i64..120, 0u8..3, 0u8..5, 0u8..5, proptest::option::of(1u16..9000), any::<bool>()),
            1..160,
        ),
        max_lines in 20usize..200,
        start in 0i64..60,
        len in 1i64..120,
    ) {
        let mut held = HeldLines::default();
        for (i, (ts, svc, lvl, msg, dur, err)) in lines.iter().copied().enumerate() {
            held.insert(line(i, ts, svc, lvl, msg, dur, err), i as u64);
            held.evict_over(max_lines);
        }
        let all = held.select(&Selection::default(), |_| true);
        let window = Window { start_ns: start * S, end_ns: (start + len) * S };
        let scopes = [
            crate::scope::Scope::All,
            crate::scope::Scope::of(&["ws-a".into()], false),
            crate::scope::Scope::of(&["ws-b".into(), "ws-c".into(), "ws-z".into()], true),
        ];
        for q in QUERIES {
            for scope in &scopes {
                let mut spec = spec(q);
                spec.scope = scope.clone();
                if scope.is_all() {
                    prop_assert!(indexed(&spec), "{q}");
                } else if !indexed(&spec) {
                    continue;
                }
                let scanned = query::run(&spec, &all, window, &SliceContext::new(&all));
                let answered = query::render(&spec, window, held.answer(&spec, window), &Context::new(&held, &spec, window));
                prop_assert_eq!(answer_json(answered), answer_json(scanned), "{} {:?}", q, scope);
            }
        }
    }
}

proptest! {
    /// A scoped selection reads the workspace index; it must hold exactly the lines of the
    /// whole selection that the scope allows, after evictions too.
    #[test]
    fn a_scoped_selection_is_the_scoped_part_of_the_whole(
        lines in proptest::collection::vec((0i64..120, 0u8..3), 1..160),
        max_lines in 20usize..200,
        since in 0i64..120,
        pick in 0usize..4,
        unscoped in any::<bool>(),
    ) {
        let mut held = HeldLines::default();
        for (i, (ts, svc)) in lines.iter().copied().enumerate() {
            held.insert(line(i, ts, svc, 3, 0, None, false), i as u64);
            held.evict_over(max_lines);
        }
        let ids: Vec<String> = [&["ws-a"][..], &["ws-b", "ws-c"], &["ws-z"], &["ws-a", "ws-b", "ws-c"]][pick]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scope = crate::scope::Scope::of(&ids, unscoped);
        let services = ["worker".to_string()];
        for services in [&[][..], &services[..]] {
            let sel = |scope| Selection { since_ns: since * S, services, scope, ..Selection::default() };
            let seqs = |v: Vec<Arc<Enriched>>| {
                let mut s: Vec<u64> = v.iter().map(|r| r.seq).collect();
                s.sort_unstable();
                s
            };
            let whole = held.select(&sel(&crate::scope::Scope::All), |r| scope.allows(r.workspace_id.as_deref()));
            prop_assert_eq!(seqs(held.select(&sel(&scope), |_| true)), seqs(whole));
        }
    }
}

#[test]
fn latency_sketches_are_close() {
    let mut held = HeldLines::default();
    for i in 0..2_000usize {
        let dur = Some((i % 1000) as u16 * 5 + 10);
        held.insert(line(i, i as i64 / 10, 0, 1, 1, dur, false), 0);
    }
    let all = held.select(&Selection::default(), |_| true);
    let spec = spec("mode=performance");
    let window = Window {
        start_ns: 0,
        end_ns: 1_000 * S,
    };
    let by_op = |mut rows: Vec<query::LatencyRow>| {
        rows.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
        rows
    };
    let exact = by_op(query::scan(&spec, &all, window).digest.latency);
    let sketched = by_op(held.answer(&spec, window).digest.latency);
    assert_eq!(exact.len(), 2);
    for (e, s) in exact.iter().zip(&sketched) {
        assert_eq!(
            (&e.service, &e.operation, e.count, e.max_ms),
            (&s.service, &s.operation, s.count, s.max_ms)
        );
        for (a, b) in [
            (e.p50_ms, s.p50_ms),
            (e.p95_ms, s.p95_ms),
            (e.p99_ms, s.p99_ms),
            (e.mean_ms, s.mean_ms),
        ] {
            assert!((a - b).abs() <= a * 0.02 + 0.5, "exact {a} sketched {b}");
        }
    }
}

#[test]
fn eviction_leaves_no_index_entry_behind() {
    let mut held = HeldLines::default();
    for i in 0..500usize {
        held.insert(
            line(
                i,
                (i % 50) as i64,
                (i % 3) as u8,
                (i % 5) as u8,
                (i % 5) as u8,
                Some(i as u16),
                i % 4 == 0,
            ),
            i as u64,
        );
    }
    assert!(held.series_count() > 10);
    assert_eq!(held.evict_arrived_before(400), 400);
    assert_eq!(held.stats().lines, 100);
    held.evict_over(0);
    let stats = held.stats();
    assert_eq!(
        (stats.lines, stats.evicted_total, stats.oldest_event_ns),
        (0, 500, None)
    );
    assert_eq!(held.series_count(), 0);
    assert!(
        held.services.is_empty() && held.texts.is_empty(),
        "interned names freed"
    );
    assert!(held.by_correlation.is_empty() && held.latency.keys().next().is_none());
    assert!(held.services().is_empty());
}

#[test]
fn context_is_the_service_neighbourhood_in_time_order() {
    let mut held = HeldLines::default();
    // Arrives out of order: 1, 2, 5, 3(other service), 4, 6.
    for (i, (ts, svc)) in [(1, 0), (2, 0), (5, 0), (3, 1), (4, 0), (6, 0)].into_iter().enumerate() {
        held.insert(line(i, ts, svc, 1, 1, None, false), 0);
    }
    let four = held
        .select(&Selection::default(), |r| r.ts_ns == 4 * S)
        .pop()
        .expect("line 4");
    let (before, after) = held.around(&four, 2);
    let ts = |v: Vec<Arc<Enriched>>| v.iter().map(|r| r.ts_ns / S).collect::<Vec<_>>();
    assert_eq!((ts(before), ts(after)), (vec![1, 2], vec![5, 6]));
}
