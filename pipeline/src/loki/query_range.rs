//! Reading `GET /loki/api/v1/query_range` answers (LOKI.md §3.1, §3.6, §3.7), pure: the
//! streams response with and without `categorize-labels`, the 400 that names the server's
//! entry limit, and backward pagination (move `end` to the oldest timestamp returned; `end` is
//! exclusive but lines share timestamps, so entries are de-duplicated on stream, time, line).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// One log entry as Loki returned it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LokiEntry {
    /// The stream's labels (with `categorize-labels`, only the stream's own).
    pub labels: BTreeMap<String, String>,
    pub ts_ns: i64,
    pub line: String,
    /// Structured metadata, when the answer categorized labels.
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryRangeError {
    #[error("Loki answered status {0:?}")]
    Status(String),
    #[error("Loki answered a {0} result to a log query")]
    NotStreams(String),
    #[error("Loki's answer is not the documented JSON: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Response {
    status: String,
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    #[serde(default)]
    result: Vec<Stream>,
}

#[derive(Deserialize)]
struct Stream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// The entries of a streams answer, in the order given.
pub fn parse_streams(body: &[u8]) -> Result<Vec<LokiEntry>, QueryRangeError> {
    let r: Response = serde_json::from_slice(body).map_err(|e| QueryRangeError::Malformed(e.to_string()))?;
    if r.status != "success" {
        return Err(QueryRangeError::Status(r.status));
    }
    let data = r.data.ok_or_else(|| QueryRangeError::Malformed("no data".into()))?;
    if data.result_type != "streams" {
        return Err(QueryRangeError::NotStreams(data.result_type));
    }
    let mut out = Vec::new();
    for s in data.result {
        for v in s.values {
            let (Some(ts), Some(line)) = (v.first().and_then(|t| t.as_str()), v.get(1).and_then(|l| l.as_str())) else {
                return Err(QueryRangeError::Malformed(format!(
                    "a value is not [\"<ns>\", \"<line>\", ...]: {v:?}"
                )));
            };
            let ts_ns = ts
                .parse()
                .map_err(|_| QueryRangeError::Malformed(format!("timestamp {ts:?} is not nanoseconds")))?;
            let metadata = v
                .get(2)
                .and_then(|c| c.get("structuredMetadata"))
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            out.push(LokiEntry {
                labels: s.stream.clone(),
                ts_ns,
                line: line.to_owned(),
                metadata,
            });
        }
    }
    Ok(out)
}

/// The server's `max_entries_limit_per_query` from its 400 answer
/// (`max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)`).
pub fn max_entries_limit(error_text: &str) -> Option<u32> {
    let rest = error_text.split("max_entries_limit").nth(1)?;
    let inside = rest.split_once('(')?.1.split_once(')')?.0;
    inside.split_once('>')?.1.trim().parse().ok()
}

/// Backward pages over one window: each answer's entries not seen before, and the `end` for
/// the next request. The next page asks up to and including the oldest timestamp returned
/// (`end = oldest + 1`: `end` is exclusive and a page may stop in the middle of entries
/// sharing a timestamp), so only entries at that timestamp can come again: only they are
/// remembered, and memory stays one page's worth however many pages a window takes.
#[derive(Debug, Default)]
pub struct BackwardPages {
    boundary: HashSet<LokiEntry>,
    /// Entries that could not be read because more than a page shared one timestamp.
    pub skipped_timestamps: usize,
}

impl BackwardPages {
    /// The new entries of one page, and the `end` (exclusive, ns) to ask for next; `None` when
    /// the page was not full (the window is exhausted).
    pub fn page(&mut self, entries: Vec<LokiEntry>, limit: usize) -> (Vec<LokiEntry>, Option<i64>) {
        let full = entries.len() >= limit;
        let oldest = entries.iter().map(|e| e.ts_ns).min();
        let fresh: Vec<LokiEntry> = entries.into_iter().filter(|e| !self.boundary.contains(e)).collect();
        let next = match (full, oldest) {
            // A full page of nothing new: more entries share one timestamp than a page holds.
            // Step past it rather than loop, and say so.
            (true, Some(o)) if fresh.is_empty() => {
                self.skipped_timestamps += 1;
                self.boundary.clear();
                Some(o)
            }
            (true, Some(o)) => {
                self.boundary.retain(|e| e.ts_ns == o);
                self.boundary.extend(fresh.iter().filter(|e| e.ts_ns == o).cloned());
                Some(o + 1)
            }
            _ => None,
        };
        (fresh, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_with_and_without_categorized_labels() {
        let plain = br#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{"job":"x","app":"web","level":"error"},"values":[["1700000000223456789","boom"],["1700000000123456789","bang"]]}],"stats":{}}}"#;
        let e = parse_streams(plain).expect("streams");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].ts_ns, e[0].line.as_str()), (1_700_000_000_223_456_789, "boom"));
        assert_eq!(e[1].labels["app"], "web");
        let categorized = br#"{"status":"success","data":{"resultType":"streams","encodingFlags":["categorize-labels"],"result":[{"stream":{"app":"web"},"values":[["1","x",{"structuredMetadata":{"trace_id":"abc"},"parsed":{"level":"info"}}]]}]},"warnings":["w"]}"#;
        let e = parse_streams(categorized).expect("categorized");
        assert_eq!(e[0].metadata, [("trace_id".to_owned(), "abc".to_owned())]);
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(parse_streams(matrix), Err(QueryRangeError::NotStreams("matrix".into())));
        assert!(matches!(
            parse_streams(b"too many outstanding requests"),
            Err(QueryRangeError::Malformed(_))
        ));
    }

    #[test]
    fn the_entry_limit_is_read_from_the_400() {
        let text = "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)";
        assert_eq!(max_entries_limit(text), Some(5000));
        assert_eq!(max_entries_limit("query time range exceeds the limit"), None);
    }

    #[test]
    fn backward_pages_keep_lines_sharing_the_edge_timestamp_once() {
        let entry = |ts: i64, line: &str| LokiEntry {
            labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
            ts_ns: ts,
            line: line.to_owned(),
            metadata: Vec::new(),
        };
        let mut pages = BackwardPages::default();
        // Page 1 (limit 3) stops inside the two lines at ts 5.
        let (fresh, next) = pages.page(vec![entry(7, "a"), entry(6, "b"), entry(5, "c")], 3);
        assert_eq!((fresh.len(), next), (3, Some(6)));
        // Page 2 asks for end = 6 (exclusive): ts 5 again, with the line page 1 missed.
        let (fresh, next) = pages.page(vec![entry(5, "c"), entry(5, "d"), entry(4, "e")], 3);
        assert_eq!(fresh.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), ["d", "e"]);
        assert_eq!(next, Some(5));
        let (fresh, next) = pages.page(vec![entry(3, "f")], 3);
        assert_eq!((fresh.len(), next), (1, None), "a short page ends the window");
    }
}
