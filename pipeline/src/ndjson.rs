//! `POST /api/v1/ai_logs/ingest`: one JSON log object per line, for apps that send directly.
//! Valid lines are accepted; invalid ones are dead-lettered with their reason and listed in
//! the answer, so one bad line never costs the others.

use std::sync::Arc;

use crate::loki::{PushBatch, PushEntry, PushStream};
use crate::rejection::{RejectReason, Rejection};

/// A line refused by the NDJSON endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// 1-based line number in the body.
    pub line: usize,
    #[serde(flatten)]
    pub rejection: Rejection,
    #[serde(skip)]
    pub text: String,
}

/// Splits a body into accepted entries (labelled `ingest="ndjson"`) and refused lines.
pub fn decode(body: &[u8], now_ns: i64, max_line_bytes: usize) -> (PushBatch, Vec<LineError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut scratch = Vec::new();
    for (i, raw) in body.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let refuse = |reason, detail: String| LineError {
            line: i + 1,
            rejection: Rejection::new(reason, detail),
            text: String::from_utf8_lossy(&raw[..raw.len().min(2048)]).into_owned(),
        };
        if raw.len() > max_line_bytes {
            errors.push(refuse(
                RejectReason::LineTooLong,
                format!("line is {} bytes, limit {max_line_bytes}", raw.len()),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            errors.push(refuse(RejectReason::InvalidUtf8, "line is not valid UTF-8".into()));
            continue;
        };
        scratch.clear();
        scratch.extend_from_slice(raw);
        match simd_json::to_borrowed_value(&mut scratch) {
            Ok(simd_json::BorrowedValue::Object(_)) => entries.push(PushEntry {
                ts_ns: now_ns,
                line: text.to_owned(),
                metadata: Vec::new(),
            }),
            Ok(_) => errors.push(refuse(
                RejectReason::NotAnObject,
                "each line must be one JSON object".into(),
            )),
            Err(e) => errors.push(refuse(RejectReason::InvalidJson, format!("invalid JSON: {e}"))),
        }
    }
    let labels = Arc::new([("ingest".to_owned(), "ndjson".to_owned())].into_iter().collect());
    let streams = if entries.is_empty() {
        Vec::new()
    } else {
        vec![PushStream { labels, entries }]
    };
    (PushBatch { streams }, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_good_lines_and_names_bad_ones() {
        let body = b"{\"message\":\"a\"}\r\n\n[1,2]\n{broken\n{\"message\":\"b\"}\n\xff\xfe\n";
        let (batch, errors) = decode(body, 5, 1024);
        assert_eq!(batch.line_count(), 2);
        assert_eq!(batch.streams[0].entries[1].line, "{\"message\":\"b\"}");
        let reasons: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.rejection.reason.as_str())).collect();
        assert_eq!(
            reasons,
            vec![(3, "not_an_object"), (4, "invalid_json"), (6, "invalid_utf8")]
        );
    }
}
