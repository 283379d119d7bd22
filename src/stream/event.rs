//! What the hub hands subscribers: numbered events carrying a line or an alert.

use std::sync::Arc;
use std::time::Instant;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::anomaly::Alert;

#[derive(Debug)]
pub enum Payload {
    /// A line this process's pipeline enriched (embedded mode).
    Log(Arc<Enriched>),
    /// A line a consumer enriched and published (`kafka.lines_topic`), read by the tail.
    Line(Arc<ailogs_pipeline::stream::StreamLine>),
    Alert {
        alert: Alert,
        /// Its offset in `ai-logs.alerts` when it came from Kafka: the same on every
        /// replica, so a client can resume from it on any of them.
        offset: Option<i64>,
    },
}

impl Payload {
    pub fn local_alert(alert: Alert) -> Payload {
        Payload::Alert { alert, offset: None }
    }

    pub(super) fn is_alert(&self) -> bool {
        matches!(self, Payload::Alert { .. })
    }
}

#[derive(Debug)]
pub struct Event {
    /// Increasing, from 1.
    pub id: u64,
    pub at: Instant,
    pub payload: Payload,
    /// The message as sent, rendered by the first subscriber that wants it and shared by
    /// the rest.
    pub rendered: std::sync::OnceLock<axum::extract::ws::Utf8Bytes>,
}

impl Event {
    pub fn offset(&self) -> Option<i64> {
        match &self.payload {
            Payload::Alert { offset, .. } => *offset,
            Payload::Log(_) | Payload::Line(_) => None,
        }
    }
}
