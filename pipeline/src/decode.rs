//! Raw line -> `LogRecord`: JSON objects (simd-json), logfmt, or plain text.

use std::borrow::Cow;

use simd_json::{BorrowedValue, StaticNode};

use crate::logfmt;
use crate::normalize::fields::{DecodeLimits, RecordBuilder, Scalar};
use crate::normalize::level::guess_level;
use crate::normalize::time::parse_ts_str;
use crate::record::{Labels, LineFormat, LogRecord};
use crate::rejection::{RejectReason, Rejection};

/// One entry as a shipper delivers it: the entry timestamp, the line, the stream labels and
/// the entry's structured metadata.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub ts_ns: i64,
    pub line: &'a str,
    pub labels: &'a Labels,
    pub metadata: &'a [(String, String)],
}

/// Nested objects deeper than this are kept whole in `extra` instead of flattened.
const MAX_FLATTEN_DEPTH: usize = 4;

/// Reusable decoder: owns the scratch buffers simd-json needs, one per worker.
pub struct Decoder {
    limits: DecodeLimits,
    buf: Vec<u8>,
    buffers: simd_json::Buffers,
    now_ns: Option<i64>,
}

impl Decoder {
    pub fn new(limits: DecodeLimits) -> Self {
        Decoder {
            limits,
            buf: Vec::new(),
            buffers: simd_json::Buffers::new(512),
            now_ns: None,
        }
    }

    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// The receive time that event times are checked against (`DecodeLimits::max_future_ns`);
    /// without one, only times before 1970 are refused.
    pub fn set_now(&mut self, now_ns: i64) {
        self.now_ns = Some(now_ns);
    }

    pub fn decode(&mut self, entry: &RawEntry<'_>) -> Result<LogRecord, Rejection> {
        let rec = self.decode_any(entry)?;
        self.check_time(rec)
    }

    fn check_time(&self, rec: LogRecord) -> Result<LogRecord, Rejection> {
        let at =
            |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if rec.ts_ns < 0 {
            return Err(Rejection::new(
                RejectReason::TimestampOutOfRange,
                format!("event time {} is before 1970", at(rec.ts_ns)),
            ));
        }
        if let Some(now) = self.now_ns
            && rec.ts_ns > now.saturating_add(self.limits.max_future_ns)
        {
            return Err(Rejection::new(
                RejectReason::TimestampOutOfRange,
                format!(
                    "event time {} is more than {}s after the receive time {}",
                    at(rec.ts_ns),
                    self.limits.max_future_ns / 1_000_000_000,
                    at(now)
                ),
            ));
        }
        Ok(rec)
    }

    fn decode_any(&mut self, entry: &RawEntry<'_>) -> Result<LogRecord, Rejection> {
        let line = entry.line.trim_end_matches(['\n', '\r']);
        if line.len() > self.limits.max_line_bytes {
            return Err(Rejection::new(
                RejectReason::LineTooLong,
                format!("line is {} bytes, limit {}", line.len(), self.limits.max_line_bytes),
            ));
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Err(Rejection::new(RejectReason::EmptyLine, "line is empty"));
        }
        if trimmed.starts_with('{')
            && trimmed.ends_with('}')
            && let Some(rec) = self.decode_json(trimmed, entry)
        {
            return Ok(rec);
        }
        if let Some(pairs) = logfmt::parse(trimmed) {
            return Ok(self.decode_logfmt(pairs, entry));
        }
        Ok(self.decode_plain(line, entry))
    }

    fn decode_json(&mut self, text: &str, entry: &RawEntry<'_>) -> Option<LogRecord> {
        self.buf.clear();
        self.buf.extend_from_slice(text.as_bytes());
        let value = simd_json::to_borrowed_value_with_buffers(&mut self.buf, &mut self.buffers).ok()?;
        let BorrowedValue::Object(object) = value else {
            return None;
        };
        let mut b = RecordBuilder::new(LineFormat::Json, self.limits);
        for (key, value) in object.iter() {
            walk(&mut b, key, value, 1);
        }
        Some(b.finish(entry.ts_ns, entry.labels, entry.metadata))
    }

    fn decode_logfmt(&self, pairs: Vec<(&str, Cow<'_, str>)>, entry: &RawEntry<'_>) -> LogRecord {
        let mut b = RecordBuilder::new(LineFormat::Logfmt, self.limits);
        for (key, value) in &pairs {
            b.offer_or_keep(key, Scalar::Str(value));
        }
        b.finish(entry.ts_ns, entry.labels, entry.metadata)
    }

    fn decode_plain(&self, line: &str, entry: &RawEntry<'_>) -> LogRecord {
        let mut b = RecordBuilder::new(LineFormat::Plain, self.limits);
        if let Some(ts) = leading_timestamp(line) {
            b.offer("ts", Scalar::Int(ts));
        }
        // Trailing `key=value` pairs are fields (an id, a duration); the line stays the message.
        for (key, value) in logfmt::trailing_pairs(line) {
            b.offer_or_keep(key, Scalar::Str(&value));
        }
        b.set_message(line.to_owned());
        let leveled = b.has_level();
        let mut rec = b.finish(entry.ts_ns, entry.labels, entry.metadata);
        // A plain line has no level field unless a trailing pair gave one: guess it here, after
        // `finish`, so that labels (Promtail's `level`) and metadata still take precedence.
        let labelled = ["level", "detected_level", "severity"]
            .iter()
            .any(|k| entry.labels.contains_key(*k) || entry.metadata.iter().any(|(m, _)| m == k));
        if !labelled && !leveled {
            rec.level = guess_level(line);
        }
        rec
    }
}

/// Flattens one JSON member into the builder.
fn walk(b: &mut RecordBuilder, key: &str, value: &BorrowedValue<'_>, depth: usize) {
    match value {
        BorrowedValue::Static(node) => match scalar(node) {
            Some(s) => b.offer_or_keep(key, s),
            None => b.extra(key, serde_json::Value::Null),
        },
        BorrowedValue::String(s) => b.offer_or_keep(key, Scalar::Str(s)),
        BorrowedValue::Object(object) if depth < MAX_FLATTEN_DEPTH && !object.is_empty() => {
            for (k, v) in object.iter() {
                walk(b, &format!("{key}.{k}"), v, depth + 1);
            }
        }
        other => b.extra(key, serde_json::to_value(other).unwrap_or(serde_json::Value::Null)),
    }
}

fn scalar(node: &StaticNode) -> Option<Scalar<'static>> {
    match *node {
        StaticNode::I64(i) => Some(Scalar::Int(i)),
        StaticNode::U64(u) => Some(Scalar::UInt(u)),
        StaticNode::F64(f) => Some(Scalar::Float(f)),
        StaticNode::Bool(b) => Some(Scalar::Bool(b)),
        StaticNode::Null => None,
    }
}

/// A timestamp at the start of a plain line: `2024-01-02T03:04:05Z ...` or
/// `2024-01-02 03:04:05,678 ...`.
fn leading_timestamp(line: &str) -> Option<i64> {
    let first = line.split_ascii_whitespace().next()?;
    if !first.starts_with(|c: char| c.is_ascii_digit()) || first.len() < 10 {
        return None;
    }
    if first.contains('T') {
        return parse_ts_str(first.trim_start_matches('[').trim_end_matches(']'));
    }
    let mut words = line.split_ascii_whitespace();
    let date = words.next()?;
    let time = words.next()?;
    if date.len() == 10 && date.as_bytes()[4] == b'-' {
        return parse_ts_str(&format!("{date} {time}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::fields::labels_from;
    use crate::record::Level;

    fn decode(line: &str) -> LogRecord {
        let labels = labels_from([("job", "svc")]);
        let entry = RawEntry {
            ts_ns: 7,
            line,
            labels: &labels,
            metadata: &[],
        };
        Decoder::new(DecodeLimits::default()).decode(&entry).expect("decodes")
    }

    #[test]
    fn json_with_aliases_and_nesting() {
        let rec = decode(
            r#"{"@timestamp":"2023-11-14T22:13:20Z","app":"gateway","severity":"WARNING","msg":"slow","X-Correlation-ID":"c1","gen_ai":{"request":{"model":"gpt-4o"},"usage":{"input_tokens":10,"output_tokens":5}},"latency_ms":250.5,"extra_field":{"deep":[1,2]}}"#,
        );
        assert_eq!(rec.ts_ns, 1_700_000_000_000_000_000);
        assert_eq!(rec.service.as_ref(), "gateway");
        assert_eq!(rec.level, Level::Warn);
        assert_eq!(&*rec.message, "slow");
        assert_eq!(rec.correlation_id.as_deref(), Some("c1"));
        assert_eq!(rec.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            (rec.input_tokens, rec.output_tokens, rec.tokens_used),
            (Some(10), Some(5), Some(15))
        );
        assert_eq!(rec.duration_ms, Some(250.5));
        assert_eq!(rec.extra.get("extra_field.deep"), Some(&serde_json::json!([1, 2])));
        assert_eq!(rec.format, LineFormat::Json);
    }

    #[test]
    fn openai_usage_and_error_objects() {
        let rec = decode(
            r#"{"message":"completion failed","usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":64}},"error":{"message":"rate limit","code":429},"duration":1.25}"#,
        );
        assert_eq!(rec.input_tokens, Some(100));
        assert_eq!(rec.cached_tokens, Some(64));
        assert_eq!(rec.tokens_used, Some(120));
        assert_eq!(rec.error.as_deref(), Some("rate limit"));
        assert_eq!(rec.level, Level::Error, "error without level means error");
        assert_eq!(rec.duration_ms, Some(1250.0));
        assert_eq!(rec.extra.get("error.code"), Some(&serde_json::json!(429)));
        assert_eq!(rec.service.as_ref(), "svc", "service from the job label");
        assert_eq!(rec.ts_ns, 7, "entry timestamp when the line has none");
    }

    #[test]
    fn event_times_past_the_grace_period_or_before_1970_are_refused() {
        let labels = labels_from([("app", "x")]);
        let raw = |line: &'static str| RawEntry {
            ts_ns: 1,
            line,
            labels: &labels,
            metadata: &[],
        };
        let now = 1_700_000_000_000_000_000;
        let mut d = Decoder::new(DecodeLimits::default());
        let future = r#"{"ts":"2100-01-01T00:00:00Z","msg":"x"}"#;
        let soon = r#"{"ts":"2023-11-14T22:18:20Z","msg":"x"}"#; // 5 minutes after `now`
        let past = r#"{"ts":"1960-01-01T00:00:00Z","msg":"x"}"#;
        assert!(
            d.decode(&raw(future)).is_ok(),
            "no receive time: only before 1970 is refused"
        );
        assert_eq!(
            d.decode(&raw(past)).map_err(|r| r.reason),
            Err(RejectReason::TimestampOutOfRange)
        );
        d.set_now(now);
        assert_eq!(
            d.decode(&raw(future)).map_err(|r| r.reason),
            Err(RejectReason::TimestampOutOfRange)
        );
        assert!(d.decode(&raw(soon)).is_ok(), "within the grace period");
    }

    #[test]
    fn plain_lines_keep_the_fields_they_end_with() {
        let labels = labels_from([("app", "db")]);
        let rec = Decoder::new(DecodeLimits::default())
            .decode(&RawEntry {
                ts_ns: 1,
                line: "WARN slow query took 4200 ms correlation_id=req-1 duration_ms=4200",
                labels: &labels,
                metadata: &[],
            })
            .expect("plain line");
        assert_eq!(rec.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(rec.duration_ms, Some(4200.0));
        assert_eq!(rec.level, Level::Warn, "still guessed from the text");
        assert_eq!(
            &*rec.message,
            "WARN slow query took 4200 ms correlation_id=req-1 duration_ms=4200"
        );
        assert_eq!(rec.format, LineFormat::Plain);
    }

    #[test]
    fn logfmt_lines() {
        let rec = decode(r#"ts=2023-11-14T22:13:20Z level=error msg="pool exhausted" duration_ms=31 workspace_id=w1"#);
        assert_eq!(rec.format, LineFormat::Logfmt);
        assert_eq!(rec.level, Level::Error);
        assert_eq!(&*rec.message, "pool exhausted");
        assert_eq!(rec.duration_ms, Some(31.0));
        assert_eq!(rec.workspace_id.as_deref(), Some("w1"));
    }

    #[test]
    fn plain_lines_guess_level_and_keep_text() {
        let rec = decode("2023-11-14 22:13:20,500 ERROR worker crashed: {oops");
        assert_eq!(rec.format, LineFormat::Plain);
        assert_eq!(rec.level, Level::Error);
        assert_eq!(rec.ts_ns, 1_700_000_000_500_000_000);
        assert_eq!(&*rec.message, "2023-11-14 22:13:20,500 ERROR worker crashed: {oops");
        let broken = decode(r#"{"message": "truncated"#);
        assert_eq!(broken.format, LineFormat::Plain);
    }

    #[test]
    fn rejects_empty_and_oversized() {
        let labels = labels_from([]);
        let mut d = Decoder::new(DecodeLimits {
            max_line_bytes: 8,
            ..Default::default()
        });
        let empty = d.decode(&RawEntry {
            ts_ns: 1,
            line: "  \n",
            labels: &labels,
            metadata: &[],
        });
        assert_eq!(empty.map_err(|r| r.reason), Err(RejectReason::EmptyLine));
        let long = d.decode(&RawEntry {
            ts_ns: 1,
            line: "123456789",
            labels: &labels,
            metadata: &[],
        });
        assert_eq!(long.map_err(|r| r.reason), Err(RejectReason::LineTooLong));
    }
}
