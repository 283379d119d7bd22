//! Loki's wire formats, pure: push bodies (snappy protobuf, JSON, gzip/deflate) decoded
//! into `PushBatch`es, label strings, and the push protobuf itself. The HTTP handlers in the
//! `ailogs` crate map `PushError` to Loki's status codes.

pub mod labels;
pub mod logql;
pub mod plan;
pub mod proto;
pub mod push;
pub mod query_range;
pub mod read_back;

use crate::decode::RawEntry;
use crate::record::Labels;

pub use push::PushError;

/// One stream of a push request: its labels and entries.
#[derive(Debug, Clone, PartialEq)]
pub struct PushStream {
    pub labels: Labels,
    pub entries: Vec<PushEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushEntry {
    pub ts_ns: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

impl PushEntry {
    /// The entry as the pipeline's decoder takes it, with its stream's labels.
    pub fn raw<'a>(&'a self, labels: &'a Labels) -> RawEntry<'a> {
        RawEntry {
            ts_ns: self.ts_ns,
            line: &self.line,
            labels,
            metadata: &self.metadata,
        }
    }
}

/// Everything one request delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushBatch {
    pub streams: Vec<PushStream>,
}

impl PushBatch {
    pub fn line_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }
}
