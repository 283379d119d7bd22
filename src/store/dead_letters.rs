//! Lines that could not be accepted, kept with their reason. Embedded mode keeps the most
//! recent ones in memory; with Kafka they go to `ai-logs.dlq`.

use std::collections::{BTreeMap, VecDeque};

use parking_lot::Mutex;
use serde::Serialize;

/// Longest line text kept in a dead letter.
const MAX_TEXT: usize = 2048;

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub received_at: String,
    pub endpoint: &'static str,
    pub reason: String,
    pub detail: String,
    pub line: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl DeadLetter {
    /// A refused line as kept: when, where it came in, why, and the line with its labels.
    pub fn new(
        received_ns: i64,
        endpoint: &'static str,
        rejection: &ailogs_pipeline::Rejection,
        line: String,
        labels: BTreeMap<String, String>,
    ) -> Self {
        DeadLetter {
            received_at: ailogs_pipeline::normalize::time::format_rfc3339(received_ns),
            endpoint,
            reason: rejection.reason.as_str().to_owned(),
            detail: rejection.detail.clone(),
            line,
            labels,
        }
    }
}

pub struct DeadLetters {
    kept: Mutex<VecDeque<DeadLetter>>,
    capacity: usize,
}

impl DeadLetters {
    pub fn new(capacity: usize) -> Self {
        DeadLetters {
            kept: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub fn push(&self, mut letter: DeadLetter) {
        if letter.line.len() > MAX_TEXT {
            letter.line = ailogs_pipeline::normalize::level::prefix(&letter.line, MAX_TEXT).to_owned();
        }
        let mut kept = self.kept.lock();
        if kept.len() >= self.capacity.max(1) {
            kept.pop_front();
        }
        kept.push_back(letter);
    }

    /// The newest `limit` dead letters, newest first.
    pub fn recent(&self, limit: usize) -> Vec<DeadLetter> {
        self.kept.lock().iter().rev().take(limit).cloned().collect()
    }
}
