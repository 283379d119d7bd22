//! Decodes a `POST /loki/api/v1/push` body exactly as Loki does (LOKI.md §1): the
//! Content-Encoding first (gzip, deflate; snappy is implied for protobuf), then the
//! Content-Type (`application/json`, anything else is a snappy-block protobuf).

use std::io::Read;
use std::sync::Arc;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use prost::Message;
use simd_json::{BorrowedValue, StaticNode};

use super::proto::{EntryAdapter, PushRequest};
use super::{PushBatch, PushEntry, PushStream, labels};

/// Loki's limit on one stream's label string.
const MAX_LABELS_BYTES: usize = 16 << 20;

/// Why a push was refused; the status and plain-text body Loki would answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
}

impl PushError {
    /// The HTTP status Loki answers with: 400 or 413.
    pub fn status(&self) -> u16 {
        match self {
            PushError::BadRequest(_) => 400,
            PushError::TooLarge(_) => 413,
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::BadRequest(_) => "bad_request",
            PushError::TooLarge(_) => "too_large",
        }
    }
}

fn bad(msg: impl Into<String>) -> PushError {
    PushError::BadRequest(msg.into())
}

/// Decodes a push body. `max_decompressed` bounds the body after every decompression step.
pub fn decode(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    max_decompressed: usize,
) -> Result<PushBatch, PushError> {
    let body = decompress(content_encoding, body, max_decompressed)?;
    let body = &body[..];
    let Some(content_type) = content_type.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(bad(
            "missing Content-Type: use application/x-protobuf (snappy) or application/json",
        ));
    };
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media.is_empty() || !media.contains('/') {
        return Err(bad(format!("invalid Content-Type {content_type:?}")));
    }
    if media == "application/json" {
        decode_json(body)
    } else {
        decode_protobuf(body, max_decompressed)
    }
}

/// Undoes the Content-Encoding: none, `snappy` (left for the protobuf step), gzip or deflate.
pub fn decompress<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    max_decompressed: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, PushError> {
    use std::borrow::Cow;
    Ok(
        match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("snappy") | Some("identity") => Cow::Borrowed(body),
            Some("gzip") => Cow::Owned(read_bounded(MultiGzDecoder::new(body), max_decompressed, "gzip")?),
            // Loki reads raw DEFLATE (Go's compress/flate); HTTP clients usually send zlib.
            Some("deflate") if is_zlib(body) => {
                Cow::Owned(read_bounded(ZlibDecoder::new(body), max_decompressed, "deflate")?)
            }
            Some("deflate") => Cow::Owned(read_bounded(DeflateDecoder::new(body), max_decompressed, "deflate")?),
            Some(other) => return Err(bad(format!("Content-Encoding {other:?} not supported"))),
        },
    )
}

fn is_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

fn read_bounded(reader: impl Read, max: usize, what: &str) -> Result<Vec<u8>, PushError> {
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("invalid {what} body: {e}")))?;
    if out.len() > max {
        return Err(PushError::TooLarge(format!(
            "decompressed body is larger than {max} bytes"
        )));
    }
    Ok(out)
}

fn decode_protobuf(body: &[u8], max_decompressed: usize) -> Result<PushBatch, PushError> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        bad(format!(
            "failed to decompress snappy block (protobuf bodies are snappy block-compressed): {e}"
        ))
    })?;
    if len > max_decompressed {
        return Err(PushError::TooLarge(format!(
            "decompressed body is larger than {max_decompressed} bytes"
        )));
    }
    let pb = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| bad(format!("failed to decompress snappy block: {e}")))?;
    let req = PushRequest::decode(&pb[..]).map_err(|e| bad(format!("failed to parse protobuf PushRequest: {e}")))?;
    let mut batch = PushBatch::default();
    for stream in req.streams {
        let labels_str = String::from_utf8_lossy(&stream.labels);
        let labels = parse_labels(&labels_str)?;
        let entries = stream
            .entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| proto_entry(i, e, &labels_str))
            .collect::<Result<Vec<_>, _>>()?;
        batch.streams.push(PushStream {
            labels: Arc::new(labels),
            entries,
        });
    }
    Ok(batch)
}

fn parse_labels(s: &str) -> Result<std::collections::BTreeMap<String, String>, PushError> {
    if s.len() > MAX_LABELS_BYTES {
        return Err(PushError::TooLarge("stream labels are larger than 16 MiB".into()));
    }
    let labels = labels::parse(s).map_err(|e| bad(format!("couldn't parse labels: {s}: {e}")))?;
    if labels.is_empty() {
        return Err(bad(format!(
            "stream {s} has no labels: at least one label pair is required per stream"
        )));
    }
    Ok(labels)
}

fn proto_entry(i: usize, e: EntryAdapter, labels: &str) -> Result<PushEntry, PushError> {
    let ts = e
        .timestamp
        .ok_or_else(|| bad(format!("entry {i} of stream {labels} has no timestamp")))?;
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(bad(format!(
            "entry {i} of stream {labels} has timestamp nanos {} outside [0, 1e9)",
            ts.nanos
        )));
    }
    let ts_ns = ts
        .seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos)))
        .ok_or_else(|| {
            bad(format!(
                "entry {i} of stream {labels} has a timestamp outside years 1677-2262"
            ))
        })?;
    Ok(PushEntry {
        ts_ns,
        line: lossy(e.line),
        metadata: e
            .structured_metadata
            .into_iter()
            .map(|p| (lossy(p.name), lossy(p.value)))
            .collect(),
    })
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `{"streams":[{"stream":{..},"values":[["<ns>","<line>",{..}],..]}]}` (LOKI.md §1.4).
fn decode_json(body: &[u8]) -> Result<PushBatch, PushError> {
    let mut buf = body.to_vec();
    let root =
        simd_json::to_borrowed_value(&mut buf).map_err(|e| bad(format!("failed to parse JSON push body: {e}")))?;
    let BorrowedValue::Object(root) = root else {
        return Err(bad("JSON push body must be an object with a \"streams\" array"));
    };
    let mut batch = PushBatch::default();
    let streams = match root.get("streams") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => return Ok(batch),
        Some(BorrowedValue::Array(a)) => a,
        Some(_) => return Err(bad("\"streams\" must be an array")),
    };
    for (si, stream) in streams.iter().enumerate() {
        let BorrowedValue::Object(stream) = stream else {
            return Err(bad(format!("streams[{si}] must be an object")));
        };
        let mut map = std::collections::BTreeMap::new();
        match stream.get("stream") {
            Some(BorrowedValue::Object(labels)) => {
                for (k, v) in labels.iter() {
                    let BorrowedValue::String(v) = v else {
                        return Err(bad(format!("streams[{si}].stream.{k} must be a string")));
                    };
                    if !labels::valid_name(k) {
                        return Err(bad(format!(
                            "couldn't parse labels: streams[{si}].stream has invalid label name {k:?}"
                        )));
                    }
                    if v.len() > labels::MAX_VALUE_LEN {
                        return Err(bad(format!(
                            "streams[{si}].stream.{k} is longer than {} bytes",
                            labels::MAX_VALUE_LEN
                        )));
                    }
                    if !v.is_empty() {
                        map.insert(k.to_string(), v.to_string());
                    }
                }
            }
            None | Some(BorrowedValue::Static(StaticNode::Null)) => {}
            Some(_) => {
                return Err(bad(format!("streams[{si}].stream must be an object of labels")));
            }
        }
        if map.is_empty() {
            return Err(bad(format!(
                "streams[{si}] has no labels: at least one label pair is required per stream"
            )));
        }
        let values = match stream.get("values") {
            None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
            Some(BorrowedValue::Array(a)) => Some(a),
            Some(_) => return Err(bad(format!("streams[{si}].values must be an array"))),
        };
        let mut entries = Vec::new();
        for (vi, value) in values.into_iter().flat_map(|v| v.iter()).enumerate() {
            if let Some(entry) = json_entry(si, vi, value)? {
                entries.push(entry);
            }
        }
        batch.streams.push(PushStream {
            labels: Arc::new(map),
            entries,
        });
    }
    Ok(batch)
}

fn json_entry(si: usize, vi: usize, value: &BorrowedValue<'_>) -> Result<Option<PushEntry>, PushError> {
    let at = format!("streams[{si}].values[{vi}]");
    let items = match value {
        BorrowedValue::Static(StaticNode::Null) => return Ok(None),
        BorrowedValue::Array(items) => items,
        _ => {
            return Err(bad(format!(
                "{at} must be an array [\"<unix ns>\", \"<line>\", {{metadata}}]"
            )));
        }
    };
    let ts_ns = match items.first() {
        Some(BorrowedValue::String(s)) => s.parse::<i64>().map_err(|_| {
            bad(format!(
                "{at}[0]: timestamp {s:?} is not an integer of Unix nanoseconds"
            ))
        })?,
        Some(_) => {
            return Err(bad(format!(
                "{at}[0]: timestamp must be a string of Unix nanoseconds, e.g. \"1700000000000000000\""
            )));
        }
        None => {
            return Err(bad(format!("{at} is empty: expected [\"<unix ns>\", \"<line>\"]")));
        }
    };
    let line = match items.get(1) {
        None => String::new(),
        Some(BorrowedValue::String(s)) => s.to_string(),
        Some(_) => return Err(bad(format!("{at}[1]: the log line must be a string"))),
    };
    let metadata = match items.get(2) {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => Vec::new(),
        Some(BorrowedValue::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                BorrowedValue::String(s) => Ok((k.to_string(), s.to_string())),
                _ => Err(bad(format!("{at}[2].{k}: structured metadata values must be strings"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(bad(format!(
                "{at}[2]: structured metadata must be an object of strings"
            )));
        }
    };
    Ok(Some(PushEntry { ts_ns, line, metadata }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loki::proto::{LabelPairAdapter, StreamAdapter, Timestamp, encode_snappy};

    const MAX: usize = 1 << 20;

    fn golden_path(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/loki-golden")
            .join(name)
    }

    fn expect_golden(batch: &PushBatch) {
        assert_eq!(batch.streams.len(), 1);
        let s = &batch.streams[0];
        assert_eq!(s.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(s.labels.get("job").map(String::as_str), Some("x"));
        assert_eq!(s.labels.len(), 2);
        assert_eq!(
            s.entries,
            vec![PushEntry {
                ts_ns: 1_700_000_000_123_456_789,
                line: "hello".into(),
                metadata: vec![("trace_id".into(), "abc".into())],
            }]
        );
    }

    #[test]
    fn golden_vector_decodes_exactly() {
        let body = std::fs::read(golden_path("push.snappy")).expect("shared/loki-golden/push.snappy is readable");
        expect_golden(&decode(Some("application/x-protobuf"), None, &body, MAX).expect("golden decodes"));
        let pb = std::fs::read(golden_path("push.pb")).expect("push.pb");
        let ours = PushRequest {
            streams: vec![StreamAdapter {
                labels: br#"{app="web", job="x"}"#.to_vec(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp::from_ns(1_700_000_000_123_456_789)),
                    line: b"hello".to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: b"trace_id".to_vec(),
                        value: b"abc".to_vec(),
                    }],
                    parsed: vec![],
                }],
                hash: 0,
            }],
            format: vec![],
        };
        assert_eq!(
            prost::Message::encode_to_vec(&ours),
            pb,
            "our encoder writes the golden bytes"
        );
        assert_eq!(encode_snappy(&ours), body);
    }

    #[test]
    fn json_equivalent_and_gzip() {
        let json = br#"{"streams":[{"stream":{"app":"web","job":"x"},"values":[["1700000000123456789","hello",{"trace_id":"abc"}]]}]}"#;
        expect_golden(&decode(Some("application/json; charset=utf-8"), None, json, MAX).expect("json"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, json).expect("gzip");
        let gz = gz.finish().expect("gzip");
        expect_golden(&decode(Some("application/json"), Some("gzip"), &gz, MAX).expect("gzip json"));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, json).expect("zlib");
        expect_golden(
            &decode(
                Some("application/json"),
                Some("deflate"),
                &z.finish().expect("zlib"),
                MAX,
            )
            .expect("zlib json"),
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut d, json).expect("deflate");
        expect_golden(
            &decode(
                Some("application/json"),
                Some("deflate"),
                &d.finish().expect("deflate"),
                MAX,
            )
            .expect("raw deflate"),
        );
    }

    #[test]
    fn json_edge_cases_match_loki() {
        let body = br#"{"streams":[{"stream":{"a":"1","empty":""},"values":[null,["1"],["2","l",null,"ignored"]]},{"stream":{"b":"2"},"values":null}],"extra":1}"#;
        let batch = decode(Some("application/json"), None, body, MAX).expect("accepted");
        assert_eq!(batch.line_count(), 2);
        assert_eq!(batch.streams[0].entries[0].line, "");
        assert!(!batch.streams[0].labels.contains_key("empty"));
    }

    #[test]
    fn malformed_bodies_are_400_with_reason() {
        let bad_pb = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 0xff, 0xff, 0xff, 0xff])
            .expect("snappy");
        // (content type, content encoding, body, what the error must mention)
        type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a [u8], &'a str);
        let cases: &[Case] = &[
            (Some("application/x-protobuf"), None, b"not snappy at all", "snappy"),
            (Some("application/x-protobuf"), None, &bad_pb, "protobuf"),
            (Some("application/json"), None, b"{\"streams\":[", "JSON"),
            (
                Some("application/json"),
                None,
                br#"{"streams":[{"stream":{"a":"1"},"values":[[1700000000,"x"]]}]}"#,
                "string of Unix nanoseconds",
            ),
            (
                Some("application/json"),
                None,
                br#"{"streams":[{"stream":{"a":"1"},"values":[["17x","x"]]}]}"#,
                "integer",
            ),
            (
                Some("application/json"),
                None,
                br#"{"streams":[{"stream":{"a":"1"},"values":[["1","x",{"k":1}]]}]}"#,
                "strings",
            ),
            (
                Some("application/json"),
                None,
                br#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
                "must be a string",
            ),
            (Some("application/json"), Some("br"), b"{}", "not supported"),
            (Some("application/json"), Some("gzip"), b"not gzip", "gzip"),
            (None, None, b"{}", "Content-Type"),
        ];
        for (ct, ce, body, needle) in cases {
            let err = decode(*ct, *ce, body, MAX).expect_err("rejected");
            assert_eq!(err.status(), 400, "{err}");
            assert!(err.to_string().contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn bad_label_strings_are_400() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: br#"{app="web"#.to_vec(),
                entries: vec![],
                hash: 0,
            }],
            format: vec![],
        };
        let err = decode(Some("application/x-protobuf"), None, &encode_snappy(&req), MAX).expect_err("bad labels");
        assert!(err.to_string().starts_with("couldn't parse labels"), "{err}");
    }

    #[test]
    fn decompression_bombs_are_413() {
        let json = format!(
            r#"{{"streams":[{{"stream":{{"a":"1"}},"values":[["1","{}"]]}}]}}"#,
            "x".repeat(4096)
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, json.as_bytes()).expect("gzip");
        let err = decode(Some("application/json"), Some("gzip"), &gz.finish().expect("gz"), 1024).expect_err("too big");
        assert_eq!(err.status(), 413);
        let snappy = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4096])
            .expect("snappy");
        let err = decode(Some("application/x-protobuf"), None, &snappy, 1024).expect_err("too big");
        assert_eq!(err.status(), 413);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_bodies_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..300),
            json in any::<bool>(),
            encoding in prop::sample::select(vec![None, Some("gzip"), Some("deflate"), Some("snappy")]),
        ) {
            let ct = if json { "application/json" } else { "application/x-protobuf" };
            let _ = super::decode(Some(ct), encoding, &body, 1 << 16);
            let snappy = snap::raw::Encoder::new().compress_vec(&body).expect("snappy");
            let _ = super::decode(Some("application/x-protobuf"), None, &snappy, 1 << 16);
        }

        #[test]
        fn arbitrary_label_strings_never_panic(s in ".{0,60}") {
            let _ = crate::loki::labels::parse(&s);
        }
    }
}
