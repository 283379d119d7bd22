//! Requests with a known answer, through the tracker and the analysis.

use serde_json::json;

use super::tracker::{Tracker, TrackerConfig};
use super::{RequestAnalysis, analyze};
use crate::enrich::Enriched;
use crate::record::{Level, LogRecord};

const MS: i64 = 1_000_000;
const T0: i64 = 1_800_000_000_000 * MS;

struct Line {
    at_ms: i64,
    service: &'static str,
    level: Level,
    message: &'static str,
    extra: Vec<(&'static str, serde_json::Value)>,
    duration_ms: Option<f64>,
}

fn line(at_ms: i64, service: &'static str, message: &'static str) -> Line {
    Line {
        at_ms,
        service,
        level: Level::Info,
        message,
        extra: Vec::new(),
        duration_ms: None,
    }
}

impl Line {
    fn error(mut self) -> Self {
        self.level = Level::Error;
        self
    }
    fn calls(mut self, target: &'static str) -> Self {
        self.extra.push(("target_service", json!(target)));
        self
    }
    fn took(mut self, ms: f64) -> Self {
        self.duration_ms = Some(ms);
        self
    }
    fn record(&self, cid: Option<&str>) -> Enriched {
        let mut r = LogRecord::new(T0 + self.at_ms * MS, self.service, self.level, self.message);
        r.correlation_id = cid.map(str::to_owned).map(Into::into);
        r.duration_ms = self.duration_ms;
        for (k, v) in &self.extra {
            r.extra.insert(*k, v.clone());
        }
        Enriched::new(r)
    }
}

fn run(lines: &[Line]) -> RequestAnalysis {
    let mut t = Tracker::new(TrackerConfig::default());
    for l in lines {
        assert!(t.observe(&l.record(Some("req-1"))).is_empty());
    }
    let done = t.expire(T0 + 3_600_000 * MS);
    assert_eq!(done.len(), 1, "one request, complete after the idle timeout");
    assert_eq!(t.live_count(), 0);
    analyze(&done[0].request, &t.services)
}

fn edges(a: &RequestAnalysis) -> Vec<(String, String, String)> {
    let mut e: Vec<_> = a
        .request_flow
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.source.clone()))
        .collect();
    e.sort();
    e
}

fn e(from: &str, to: &str, source: &str) -> (String, String, String) {
    (from.to_owned(), to.to_owned(), source.to_owned())
}

#[test]
fn a_chain_inferred_from_nested_spans() {
    let a = run(&[
        line(0, "browser", "click send"),
        line(5, "api", "POST /chat"),
        line(10, "llm-gateway", "calling model"),
        line(910, "llm-gateway", "model answered").took(900.0),
        line(950, "api", "200 OK"),
        line(960, "browser", "rendered"),
    ]);
    assert_eq!(
        edges(&a),
        vec![e("api", "llm-gateway", "inferred"), e("browser", "api", "inferred")]
    );
    assert_eq!(a.critical_path, ["browser", "api", "llm-gateway"]);
    assert_eq!(a.total_duration_ms, 960.0);
    assert_eq!(a.service_durations["llm-gateway"], 900.0);
    assert_eq!(a.bottlenecks[0].service, "llm-gateway");
    assert!(a.root_cause.is_none() && a.errors.is_empty());
    let order: Vec<_> = a.service_timeline.iter().map(|t| t.service.as_str()).collect();
    assert_eq!(order, ["browser", "api", "llm-gateway"]);
    // Self time: the api's 945 ms minus the gateway's 900.
    let api = a.request_flow.nodes.iter().find(|n| n.service == "api").expect("api");
    assert_eq!(api.self_time_ms, 45.0);
}

#[test]
fn fan_out_with_explicit_calls_and_the_slowest_branch_on_the_critical_path() {
    let a = run(&[
        line(0, "api", "plan").calls("retriever"),
        line(0, "api", "plan").calls("vector-db"),
        line(0, "api", "plan").calls("llm-gateway"),
        line(1, "retriever", "fetch"),
        line(40, "retriever", "fetched"),
        line(2, "vector-db", "search"),
        line(30, "vector-db", "found"),
        line(3, "llm-gateway", "generate"),
        line(700, "llm-gateway", "done"),
        line(710, "api", "answered"),
    ]);
    assert_eq!(
        edges(&a),
        vec![
            e("api", "llm-gateway", "explicit"),
            e("api", "retriever", "explicit"),
            e("api", "vector-db", "explicit"),
        ]
    );
    assert_eq!(a.critical_path, ["api", "llm-gateway"]);
    assert_eq!(a.bottlenecks[0].service, "llm-gateway");
}

#[test]
fn retries_count_calls_on_one_edge_and_a_recovered_callee_is_still_named() {
    let a = run(&[
        line(0, "api", "calling provider").calls("openai"),
        line(100, "openai", "429 too many requests").error(),
        line(300, "api", "calling provider").calls("openai"),
        line(400, "openai", "ok"),
        line(410, "api", "done"),
    ]);
    let edge = &a.request_flow.edges[0];
    assert_eq!((edge.from.as_str(), edge.to.as_str(), edge.calls), ("api", "openai", 2));
    let root = a.root_cause.expect("the failed attempt is the only error");
    assert_eq!(&*root.service, "openai");
    assert!(root.propagated_to.is_empty());
    assert_eq!(root.evidence[0].message, "429 too many requests");
}

#[test]
fn a_deep_timeout_cascading_upward_names_the_deep_service() {
    // The callers notice first (their timeouts fire), the deep service logs last.
    let a = run(&[
        line(0, "browser", "send"),
        line(1, "api", "POST /chat"),
        line(2, "llm-gateway", "route"),
        line(3, "vector-db", "query start"),
        line(5000, "api", "upstream timed out").error(),
        line(5001, "llm-gateway", "context fetch timed out").error(),
        line(5002, "browser", "request failed").error(),
        line(5100, "vector-db", "query cancelled after 5097 ms").error(),
    ]);
    let root = a.root_cause.expect("root cause");
    assert_eq!(&*root.service, "vector-db");
    assert_eq!(root.propagated_to, ["api", "llm-gateway", "browser"]);
    assert!(a.independent_failures.is_empty());
    assert_eq!(a.errors[0].service, "api", "errors listed in the order they happened");
}

#[test]
fn errors_in_two_unrelated_services() {
    let a = run(&[
        line(0, "api", "start").calls("billing"),
        line(0, "api", "start").calls("search"),
        line(10, "billing", "card declined").error(),
        line(20, "search", "index missing").error(),
        line(30, "api", "partial answer"),
    ]);
    let root = a.root_cause.expect("root cause");
    assert_eq!(&*root.service, "billing");
    assert!(root.propagated_to.is_empty(), "api did not fail");
    assert_eq!(a.independent_failures, ["search"]);
}

#[test]
fn a_stray_earlier_error_does_not_hide_the_cascade() {
    let a = run(&[
        line(0, "api", "start").calls("cache"),
        line(1, "cache", "evict failed").error(),
        line(2, "cache", "ok"),
        line(5, "api", "calling").calls("llm-gateway"),
        line(6, "llm-gateway", "calling").calls("openai"),
        line(900, "openai", "overloaded").error(),
        line(901, "llm-gateway", "provider failed").error(),
        line(902, "api", "500").error(),
    ]);
    let root = a.root_cause.expect("root cause");
    assert_eq!(
        root.service, "openai",
        "it explains two failing callers; the cache none"
    );
    assert_eq!(root.propagated_to, ["llm-gateway", "api"]);
    assert_eq!(a.independent_failures, ["cache"]);
}

#[test]
fn out_of_order_arrival_gives_the_same_answer() {
    let lines = [
        line(0, "browser", "send"),
        line(1, "api", "POST"),
        line(2, "worker", "job").calls("db"),
        line(3, "db", "lock wait").error(),
        line(50, "worker", "job failed").error(),
        line(60, "api", "500").error(),
        line(70, "browser", "shown error"),
    ];
    let forward = run(&lines);
    let mut reversed: Vec<Line> = lines.into_iter().rev().collect();
    reversed.swap(0, 3);
    let backward = run(&reversed);
    assert_eq!(edges(&forward), edges(&backward));
    assert_eq!(forward.critical_path, backward.critical_path);
    let (f, b) = (forward.root_cause.expect("f"), backward.root_cause.expect("b"));
    assert_eq!(
        (f.service.as_str(), &f.propagated_to),
        ("db", &vec!["worker".to_owned(), "api".to_owned()])
    );
    assert_eq!((b.service, b.propagated_to), (f.service, f.propagated_to));
}

#[test]
fn span_parents_give_the_calls_even_when_children_arrive_first() {
    let span = |l: Line, id: &str, parent: Option<&str>| {
        let mut l = l;
        l.extra.push(("span_id", json!(id)));
        if let Some(p) = parent {
            l.extra.push(("parent_span_id", json!(p)));
        }
        l
    };
    // Sequential calls from a router that logs once: time order alone would chain them.
    let a = run(&[
        span(line(30, "tools", "tool ran"), "s3", Some("s1")).error(),
        span(line(10, "retriever", "retrieved"), "s2", Some("s1")),
        span(line(0, "router", "routing"), "s1", None),
        span(line(50, "router", "tool failed"), "s1", None).error(),
    ]);
    assert_eq!(
        edges(&a),
        vec![e("router", "retriever", "explicit"), e("router", "tools", "explicit")]
    );
    let root = a.root_cause.expect("root cause");
    assert_eq!(
        (root.service.as_str(), root.propagated_to.as_slice()),
        ("tools", &["router".to_owned()][..])
    );
}

#[test]
fn lines_without_a_correlation_id_are_counted_not_tracked() {
    let mut t = Tracker::new(TrackerConfig::default());
    assert!(t.observe(&line(0, "api", "health check").record(None)).is_empty());
    assert!(t.observe(&line(0, "api", "health check").record(Some(""))).is_empty());
    assert_eq!((t.live_count(), t.lines_without_id), (0, 2));
}

#[test]
fn live_requests_are_capped_oldest_first_and_evictions_counted() {
    let mut t = Tracker::new(TrackerConfig {
        max_live: 16,
        ..TrackerConfig::default()
    });
    let mut evicted = Vec::new();
    for i in 0..40 {
        let cid = format!("r{i}");
        evicted.extend(t.observe(&line(i, "api", "x").record(Some(&cid))));
    }
    assert!(t.live_count() <= 16);
    assert_eq!(t.evicted as usize, evicted.len());
    assert!(evicted.iter().all(|c| c.evicted));
    assert!(evicted.iter().any(|c| c.request.id() == "r0"));
    assert!(t.live("r39").is_some());
}

#[test]
fn callee_from_the_http_url_host() {
    let mut l = line(0, "api", "GET");
    l.extra
        .push(("http.url", json!("https://user@llm-gateway.internal:8443/v1/chat?x=1")));
    let a = run(&[l, line(5, "llm-gateway.internal", "served")]);
    assert_eq!(edges(&a), vec![e("api", "llm-gateway.internal", "explicit")]);
}

/// Synthetic traffic with model-timeout incidents: the gateway (anythingllm) times out,
/// then the API answers 504 and the browser shows an error. Every failing chat request must
/// name the gateway.
#[test]
#[cfg(feature = "synth")]
fn synthetic_model_timeouts_name_the_gateway() {
    use crate::synth::{Incident, Traffic};
    use crate::{DecodeLimits, Decoder, RawEntry, labels_from};
    let mut traffic = Traffic::new(5);
    let labels = labels_from([("env", "test")]);
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut t = Tracker::new(TrackerConfig::default());
    for i in 0..8_000i64 {
        if i % 500 == 0 {
            traffic.start_incident(Incident::ModelTimeout, 400);
        }
        // Requests overlap: a new one every 20 ms, each lasting up to a minute.
        for l in traffic.request(T0 + i * 20 * MS) {
            let raw = RawEntry {
                ts_ns: l.ts_ns,
                line: &l.line,
                labels: &labels,
                metadata: &[],
            };
            if let Ok(rec) = decoder.decode(&raw) {
                t.observe(&Enriched::new(rec));
            }
        }
    }
    let done = t.drain();
    let failing: Vec<RequestAnalysis> = done
        .iter()
        .map(|c| analyze(&c.request, &t.services))
        .filter(|a| a.errors.iter().any(|e| e.service == "anythingllm"))
        .collect();
    assert!(failing.len() > 1000, "{} failing requests", failing.len());
    let right = failing
        .iter()
        .filter(|a| a.root_cause.as_ref().is_some_and(|r| r.service == "anythingllm"))
        .count();
    assert_eq!(
        right,
        failing.len(),
        "root cause named right in {right} of {}",
        failing.len()
    );
}

#[test]
fn requests_complete_once_event_time_passes_their_idle_timeout() {
    let mut c = super::Correlations::new(false);
    let mut req1 = line(0, "api", "start").record(Some("req-1"));
    c.observe(&req1);
    req1.record.ts_ns += 5_000 * MS;
    c.observe(&req1);
    c.expire();
    assert_eq!(c.lookup("req-1").map(|(_, done)| done), Some(false));
    c.observe(&line(400_000, "api", "later").record(Some("req-3")));
    c.expire();
    assert_eq!(c.lookup("req-1").map(|(_, done)| done), Some(true));
    assert_eq!(c.lookup("req-3").map(|(_, done)| done), Some(false));
}

#[test]
fn a_request_rebuilt_from_stored_lines_matches_the_live_answer() {
    let lines = [
        line(5000, "api", "upstream timed out").error(),
        line(0, "api", "start").calls("llm"),
        line(4000, "llm", "provider failed").error(),
    ];
    let mut stored: Vec<Enriched> = lines.iter().map(|l| l.record(Some("req-1"))).collect();
    stored.push(line(1, "api", "other request").record(Some("req-2")));
    let rebuilt = super::analyze_lines("req-1", &stored).expect("req-1 is there");
    let live = run(&lines);
    assert_eq!(rebuilt.lines, 3, "the other request's line is left out");
    assert_eq!(edges(&rebuilt), edges(&live));
    assert_eq!(
        rebuilt.root_cause.map(|r| (r.service, r.propagated_to)),
        Some(("llm".to_owned(), vec!["api".to_owned()]))
    );
    assert!(super::analyze_lines("req-9", &stored).is_none());
}

/// The caller's error names its callee: an edge from evidence, not time. `known` services
/// logged earlier in other requests (that is how a name is recognised as a service).
fn run_with_known(known: &[&'static str], lines: &[Line]) -> RequestAnalysis {
    let mut t = Tracker::new(TrackerConfig::default());
    for (i, s) in known.iter().enumerate() {
        t.observe(&line(-10_000 - i as i64, s, "ready").record(Some("req-0")));
    }
    for l in lines {
        t.observe(&l.record(Some("req-1")));
    }
    let done = t.expire(T0 + 3_600_000 * MS);
    let r = done
        .iter()
        .find(|d| d.request.id() == "req-1")
        .expect("req-1 completed");
    analyze(&r.request, &t.services)
}

#[test]
fn a_silent_callee_named_by_its_failing_callers_is_the_root_cause() {
    let a = run_with_known(
        &["anythingllm"],
        &[
            line(0, "browser", "chat message sent"),
            line(3, "api", "POST /chat received"),
            line(
                30_003,
                "api",
                "upstream anythingllm request failed: timeout after 30000 ms",
            )
            .error(),
            line(30_010, "browser", "chat failed: 504").error(),
        ],
    );
    let root = a.root_cause.as_ref().expect("root cause");
    assert_eq!(root.service, "anythingllm", "{}", root.reason);
    assert!(root.reason.contains("logged nothing"), "{}", root.reason);
    assert!(
        edges(&a).contains(&e("api", "anythingllm", "explicit")),
        "{:?}",
        edges(&a)
    );
}

#[test]
fn a_callers_timeout_logged_before_the_callees_error_still_points_at_the_callee() {
    let a = run_with_known(
        &["anythingllm"],
        &[
            line(0, "api", "POST /chat received"),
            line(30_000, "api", "upstream anythingllm request failed: deadline exceeded").error(),
            line(30_050, "anythingllm", "model call failed: provider overloaded").error(),
        ],
    );
    let root = a.root_cause.expect("root cause");
    assert_eq!(root.service, "anythingllm", "{}", root.reason);
    assert_eq!(root.propagated_to, ["api"]);
}
