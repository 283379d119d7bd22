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
            (
                r.correlation_id,
                r.conversation_id,
                r.session_id,
                r.workspace_id,
                r.model,
                r.error,
            ) = ids;
            (r.input_tokens, r.output_tokens, r.duration_ms, r.success) = nums;
            r.labels = std::sync::Arc::new(labels);
            r.metadata = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
            r.extra = extra;
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
