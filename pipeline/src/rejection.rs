//! Why a line was refused. One type for every boundary that refuses lines (decode, the Kafka
//! envelope, the NDJSON endpoint): each refused line goes to the dead-letter path with it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    EmptyLine,
    LineTooLong,
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    /// A Kafka message with no payload.
    EmptyMessage,
    /// A Kafka message that is not an ailogs raw-message envelope.
    InvalidEnvelope,
    /// An event time before 1970 or too far past the receive time.
    TimestampOutOfRange,
}

impl RejectReason {
    /// The reason as dead letters, metrics labels and API answers name it (bounded set).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::EmptyLine => "empty_line",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::EmptyMessage => "empty_message",
            RejectReason::InvalidEnvelope => "invalid_envelope",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
        }
    }
}

/// A refused line: the reason (a bounded set, for metrics) and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}
