//! Property tests: decoding never panics on any input, and records round-trip through JSON.

use std::collections::BTreeMap;

use ailogs_pipeline::query::{QuerySpec, SliceContext, Window, run};
use ailogs_pipeline::{DecodeLimits, Decoder, Enriched, Level, LineFormat, LogRecord, RawEntry, labels_from};
use proptest::prelude::*;

fn decode_bytes(bytes: &[u8]) -> Result<LogRecord, ailogs_pipeline::Rejection> {
    let line = String::from_utf8_lossy(bytes);
    let labels = labels_from([("app", "p")]);
    let meta = vec![("trace_id".to_owned(), "t".to_owned())];
    Decoder::new(DecodeLimits {
        max_line_bytes: 4096,
        ..DecodeLimits::default()
    })
    .decode(&RawEntry {
        ts_ns: 1,
        line: &line,
        labels: &labels,
        metadata: &meta,
    })
}

/// JSON-ish text: braces, quotes, known keys and numbers, to reach deep into the decoder.
fn jsonish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        prop::sample::select(vec![
            "\"level\"",
            "\"timestamp\"",
            "\"usage\"",
            "\"prompt_tokens\"",
            "\"gen_ai\"",
            "\"error\"",
            "\"duration\"",
            "\"message\"",
            "null",
            "true",
            "-1",
            "1e999",
            "18446744073709551616",
            "1700000000123",
            "\"2024-01-01T00:00:00Z\"",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9_.\\\\-]{0,8}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(".{0,12}")
}

fn record() -> impl Strategy<Value = LogRecord> {
    (
        (
            any::<i64>(),
            ".{0,12}",
            prop::sample::select(Level::ALL.to_vec()),
            ".{0,40}",
        ),
        (opt_text(), opt_text(), opt_text(), opt_text(), opt_text(), opt_text()),
        (
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>()),
            prop::option::of(0.0f64..1e9),
            prop::option::of(any::<bool>()),
        ),
        (
            prop::collection::btree_map("[a-z]{1,6}", ".{0,8}", 0..4),
            prop::collection::btree_map(
                "[a-z.]{1,6}",
                prop_oneof![
                    any::<i64>().prop_map(serde_json::Value::from),
                    ".{0,6}".prop_map(serde_json::Value::from)
                ],
                0..4,
            ),
            prop::sample::select(vec![LineFormat::Json, LineFormat::Logfmt, LineFormat::Plain]),
        ),
    )
        .prop_map(|((ts, service, level, message), ids, nums, (labels, extra, format))| {
            let mut r = LogRecord::new(ts, service, level, message);
            let boxed = |s: Option<String>| s.map(String::into_boxed_str);
            let shared = |s: Option<String>| s.map(std::sync::Arc::from);
            (r.correlation_id, r.conversation_id, r.error) = (boxed(ids.0), boxed(ids.1), boxed(ids.5));
            (r.session_id, r.workspace_id, r.model) = (shared(ids.2), shared(ids.3), shared(ids.4));
            (r.input_tokens, r.output_tokens, r.duration_ms, r.success) = nums;
            r.labels = std::sync::Arc::new(labels);
            r.metadata = Some(Box::new(BTreeMap::from([("k".to_owned(), "v".to_owned())])));
            r.extra = extra.into_iter().collect();
            r.format = format;
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_bytes(&bytes);
    }

    #[test]
    fn jsonish_lines_never_panic_and_keep_the_service(line in jsonish()) {
        if let Ok(rec) = decode_bytes(line.as_bytes()) {
            prop_assert!(!rec.service.is_empty());
            prop_assert!(rec.duration_ms.is_none_or(f64::is_finite));
        }
    }

    #[test]
    fn record_json_round_trips(rec in record()) {
        let json = serde_json::to_string(&rec).expect("serializes");
        let back: LogRecord = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(back, rec);
    }

    #[test]
    fn arbitrary_query_parameters_never_panic(
        pairs in prop::collection::vec((prop::sample::select(ailogs_pipeline::query::spec::PARAMS.to_vec()), ".{0,12}"), 0..6),
        recs in prop::collection::vec(record(), 0..20),
    ) {
        if let Ok(spec) = QuerySpec::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str()))) {
            let recs: Vec<_> = recs.into_iter().map(|r| std::sync::Arc::new(Enriched::new(r))).collect();
            let out = run(&spec, &recs, Window { start_ns: i64::MIN / 2, end_ns: i64::MAX / 2 }, &SliceContext::new(&recs));
            prop_assert!(out.returned <= spec.limit);
        }
    }
}

/// A JSON member under a key that may be an alias of the correlation id, in any spelling.
fn member() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("correlation_id"),
        Just("correlationId"),
        Just("X-Correlation-ID"),
        Just("trace_id"),
        Just("request_id"),
        Just("message"),
        Just("level"),
        Just("service"),
        Just("other"),
    ];
    let value = prop_oneof![
        "[a-z0-9 -]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("[1,\"a\"]".to_owned()),
        Just("{}".to_owned()),
        Just("{\"id\":\"nested\"}".to_owned()),
        "[a-z]{1,4}".prop_map(|s| format!("{{\"trace\":{{\"id\":\"{s}\"}}}}")),
    ];
    (key, value).prop_map(|(k, v)| format!("{k:?}:{v}"))
}

proptest! {
    #[test]
    fn partition_key_agrees_with_the_decoder(
        members in proptest::collection::vec(member(), 0..8),
        nested_trace in proptest::option::of("[a-z]{1,4}"),
        meta in proptest::option::of("[a-z ]{0,4}"),
        label in proptest::option::of("[a-z ]{0,4}"),
        plain in any::<bool>(),
    ) {
        let mut members = members;
        if let Some(t) = nested_trace {
            members.push(format!("\"trace\":{{\"id\":\"{t}\"}}"));
        }
        let line = if plain {
            format!("level=info correlation_id={} msg=x", members.len())
        } else {
            format!("{{{}}}", members.join(","))
        };
        let labels = match &label {
            Some(l) => labels_from([("app", "p"), ("trace_id", l.as_str())]),
            None => labels_from([("app", "p")]),
        };
        let meta: Vec<(String, String)> = meta.iter().map(|m| ("request_id".to_owned(), m.clone())).collect();
        let raw = RawEntry { ts_ns: 1, line: &line, labels: &labels, metadata: &meta };
        let full = Decoder::new(DecodeLimits::default()).decode(&raw).ok().and_then(|r| r.correlation_id).map(String::from);
        let fast = ailogs_pipeline::partition_key::KeyExtractor::new(DecodeLimits::default()).correlation_id(&raw);
        prop_assert_eq!(fast, full, "line {}", line);
    }

    #[test]
    fn partition_key_agrees_on_any_text(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let line = String::from_utf8_lossy(&bytes);
        let labels = labels_from([("app", "p")]);
        let raw = RawEntry { ts_ns: 1, line: &line, labels: &labels, metadata: &[] };
        let full = Decoder::new(DecodeLimits::default()).decode(&raw).ok().and_then(|r| r.correlation_id).map(String::from);
        let fast = ailogs_pipeline::partition_key::KeyExtractor::new(DecodeLimits::default()).correlation_id(&raw);
        prop_assert_eq!(fast, full);
    }
}
