//! The per-line half of the core: decode and match. Stateless across lines (only scratch
//! buffers), so each thread has its own `Lane` and no lock is taken per line.

use crate::decode::{Decoder, RawEntry};
use crate::enrich::Enriched;
use crate::envelope::RawMessage;
use crate::normalize::fields::DecodeLimits;
use crate::patterns::{Scanner, SharedMatcher};
use crate::rejection::Rejection;

pub struct Lane {
    decoder: Decoder,
    scanner: Scanner,
}

impl Lane {
    pub fn new(limits: DecodeLimits, patterns: &SharedMatcher) -> Self {
        Lane {
            decoder: Decoder::new(limits),
            scanner: patterns.scanner(),
        }
    }

    /// The receive time for the lines that follow (event times far past it are refused).
    pub fn set_now(&mut self, now_ns: i64) {
        self.decoder.set_now(now_ns);
    }

    /// One line as a shipper delivered it: decoded, normalized, matched against the
    /// current catalog. Not yet tagged with a template (that needs the core's state).
    pub fn ingest(&mut self, raw: &RawEntry<'_>) -> Result<Enriched, Rejection> {
        let record = self.decoder.decode(raw)?;
        Ok(Enriched::scanned(record, &mut self.scanner))
    }

    /// One `ai-logs.raw` message: the envelope, then the line it carries.
    pub fn ingest_message(&mut self, payload: Option<&[u8]>) -> Result<Enriched, Rejection> {
        let msg = RawMessage::from_payload(payload)?;
        let labels = std::sync::Arc::new(msg.labels);
        self.ingest(&RawEntry {
            ts_ns: msg.ts_ns,
            line: &msg.line,
            labels: &labels,
            metadata: &msg.metadata,
        })
    }
}
