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
    /// The workspace the line names, when it could be read: a dead letter is shown only to
    /// keys whose scope covers it (lines naming none, only to those that see such lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
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
            workspace_id: workspace_named(&line),
            line,
            labels,
        }
    }
}

/// The top-level `workspace_id` (or `workspaceId`) of a line that is still a JSON object.
fn workspace_named(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    ["workspace_id", "workspaceId", "workspace"]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
        .map(str::to_owned)
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

    /// The newest `limit` dead letters `scope` may see, newest first.
    pub fn recent(&self, limit: usize, scope: &ailogs_pipeline::scope::Scope) -> Vec<DeadLetter> {
        self.kept
            .lock()
            .iter()
            .rev()
            .filter(|d| scope.allows(d.workspace_id.as_deref()))
            .take(limit)
            .cloned()
            .collect()
    }
}
