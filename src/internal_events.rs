//! What ailogs' components report about themselves, each event logged and counted in one
//! place (Vector's `internal_events`): a site emits `SomethingHappened { .. }` instead of
//! bumping a counter here and writing a log line there, so the two never drift apart and
//! every label set stays bounded (reasons and outcomes are fixed names).

use std::time::Duration;

use ailogs_pipeline::Rejection;

use crate::metrics::Metrics;

pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

/// Lines refused on their way in; each also goes to the dead-letter path.
pub struct LinesRejected<'a> {
    pub endpoint: &'a str,
    pub rejection: &'a Rejection,
}

impl InternalEvent for LinesRejected<'_> {
    fn emit(self, metrics: &Metrics) {
        let reason = self.rejection.reason.as_str();
        metrics.lines_rejected.with_label_values(&[reason]).inc();
        tracing::debug!(endpoint = self.endpoint, reason, detail = %self.rejection.detail, "line rejected");
    }
}

/// A push request refused as a whole (the shipper retries it, or fixes it for a 4xx).
pub struct PushRefused<'a> {
    pub endpoint: &'a str,
    /// A fixed name: `bad_request`, `too_large`, `queue_full`, `kafka_unavailable`, ...
    pub reason: &'static str,
    pub message: &'a str,
    /// Whether the fault is ours (5xx, logged as a warning) or the request's (4xx).
    pub ours: bool,
}

impl InternalEvent for PushRefused<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics
            .push_requests_rejected
            .with_label_values(&[self.endpoint, self.reason])
            .inc();
        if self.ours {
            tracing::warn!(endpoint = self.endpoint, reason = self.reason, error = %self.message, "push refused");
        } else {
            tracing::debug!(endpoint = self.endpoint, reason = self.reason, error = %self.message, "push rejected");
        }
    }
}

/// A consumer batch's commit to Postgres, by outcome.
pub enum BatchCommit<'a> {
    Committed {
        lines: usize,
        elapsed: Duration,
    },
    /// Another consumer advanced a partition first: the batch is dropped and re-read.
    Fenced {
        topic: &'a str,
        partition: i32,
    },
    /// Postgres refused or was unreachable; the batch is retried.
    Retried {
        error: &'a sqlx::Error,
        first: bool,
    },
    /// Offsets missing inside a batch; the partition is fetched again from further back.
    Gap {
        partition: i32,
        expected: i64,
        got: i64,
        attempt: u32,
        give_up_after: u32,
    },
}

impl InternalEvent for BatchCommit<'_> {
    fn emit(self, metrics: &Metrics) {
        let outcome = |name: &str| metrics.consumer_commits.with_label_values(&[name]).inc();
        match self {
            BatchCommit::Committed { lines, elapsed } => {
                outcome("ok");
                metrics.consumer_lines.inc_by(lines as u64);
                metrics.consumer_commit_latency.observe(elapsed.as_secs_f64());
                tracing::debug!(lines, elapsed_ms = elapsed.as_millis() as u64, "batch committed");
            }
            BatchCommit::Fenced { topic, partition } => {
                outcome("fenced");
                tracing::warn!(%topic, partition, "commit fenced; dropping the batch and re-reading offsets");
            }
            BatchCommit::Retried { error, first } => {
                outcome("retry");
                if first {
                    tracing::warn!(error = %error, "postgres unavailable; pausing consumption until it is back");
                } else {
                    tracing::debug!(error = %error, "batch commit failed again; retrying");
                }
            }
            BatchCommit::Gap {
                partition,
                expected,
                got,
                attempt,
                give_up_after,
            } => {
                outcome("gap");
                if attempt >= give_up_after {
                    tracing::error!(
                        partition,
                        expected,
                        got,
                        attempt,
                        "the broker does not serve offsets it still holds, even fetched from the log start; not committing past them"
                    );
                } else {
                    tracing::warn!(
                        partition,
                        expected,
                        got,
                        attempt,
                        "gap in a batch; fetching the partition again from before the stored offset"
                    );
                }
            }
        }
    }
}

/// The Redis hot views were not updated for a batch (they catch up with the next one; the
/// lines are in Postgres and the memory views).
pub struct RedisWriteFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
    pub lines: usize,
}

impl InternalEvent for RedisWriteFailed<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.redis_write_failures.inc();
        tracing::warn!(error = %self.error, lines = self.lines, "redis hot views not updated");
    }
}

/// A request or stream connection presented a key that is not valid.
pub struct AuthRefused<'a> {
    pub path: &'a str,
}

impl InternalEvent for AuthRefused<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.auth_refused.inc();
        tracing::info!(path = self.path, "invalid API key refused");
    }
}

/// A committed line could not be queued for the stream's lines topic.
pub struct StreamLineUnpublished<'a> {
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for StreamLineUnpublished<'_> {
    fn emit(self, metrics: &Metrics) {
        metrics.stream_lines_unpublished.inc();
        tracing::debug!(error = %self.error, "stream line not queued for kafka");
    }
}
