//! Ingest: the Loki-compatible push endpoint and the NDJSON endpoint decode request bodies
//! into `PushBatch`es and hand them to the queue.

pub mod kafka;
pub mod labels;
pub mod loki_proto;
pub mod ndjson;
pub mod push;
pub mod spool;

use ailogs_pipeline::{Labels, RawEntry};

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
