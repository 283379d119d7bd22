//! Enrichment on arrival: what every query would otherwise recompute per line.

use std::ops::Deref;
use std::sync::Arc;
use thin_vec::ThinVec;

use crate::classify::{AuditCategory, audit_category};
use crate::patterns::{PatternMatch, Scanner};
use crate::record::LogRecord;
use crate::shape::message_shape;
use crate::templates::TemplateTag;

/// A record with what the pipeline derived from it. Later stages add pattern matches,
/// template ids and usage here.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    pub record: LogRecord,
    /// The message with variable parts masked (`shape::message_shape`); shared by the held
    /// lines of one shape.
    pub shape: Arc<str>,
    pub audit: Option<AuditCategory>,
    /// Catalog patterns the message or error matched (`patterns::Matcher`).
    pub patterns: ThinVec<PatternMatch>,
    /// The message's template in its service (`templates::TemplateIndex`), once mined.
    pub template: Option<TemplateTag>,
    /// Arrival order in the view that holds it; 0 until a view assigns it.
    pub seq: u64,
}

impl Enriched {
    pub fn new(record: LogRecord) -> Self {
        let shape = Arc::from(message_shape(&record.message));
        let audit = audit_category(&record);
        Enriched {
            record,
            shape,
            audit,
            patterns: ThinVec::new(),
            template: None,
            seq: 0,
        }
    }

    /// Enriches a record including its pattern matches.
    pub fn scanned(record: LogRecord, scanner: &mut Scanner) -> Self {
        let patterns = scanner.scan(&record).into();
        Enriched {
            patterns,
            ..Enriched::new(record)
        }
    }
}

impl Deref for Enriched {
    type Target = LogRecord;
    fn deref(&self) -> &LogRecord {
        &self.record
    }
}

#[cfg(test)]
mod tests {
    /// Views hold every record in an `Arc` (16 bytes of counts before it). The allocator's
    /// size classes around it are 320, 384 and 448 bytes: past 384, every held line costs 64
    /// bytes more. Fields that are usually absent or shared are boxed or `Arc`ed for this.
    #[test]
    fn a_held_record_fits_the_384_byte_size_class() {
        let arc_counts = 2 * std::mem::size_of::<usize>();
        assert!(std::mem::size_of::<super::Enriched>() + arc_counts <= 384);
    }
}
