//! Lines read back from Loki, through a core lane: decoded, normalized and matched like
//! pushed lines. Templates are the core's to add (`Core::tag_known`, then
//! `Core::tag_among_themselves`), so a driver holds the core only for that.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::query_range::LokiEntry;
use crate::core::Lane;
use crate::decode::RawEntry;
use crate::enrich::Enriched;
use crate::record::Labels;

/// The records of `entries`, and how many could not be decoded (they would be dead
/// letters had they been pushed).
pub fn decode_entries(lane: &mut Lane, entries: &[LokiEntry]) -> (Vec<Enriched>, usize) {
    let mut records = Vec::with_capacity(entries.len());
    let mut undecodable = 0;
    let mut last_labels: Option<(&BTreeMap<String, String>, Labels)> = None;
    for e in entries {
        // An answer lists a stream's entries together: they share one label set.
        let labels = match &last_labels {
            Some((raw, shared)) if *raw == &e.labels => Arc::clone(shared),
            _ => {
                let shared = Arc::new(e.labels.clone());
                last_labels = Some((&e.labels, Arc::clone(&shared)));
                shared
            }
        };
        let raw = RawEntry {
            ts_ns: e.ts_ns,
            line: &e.line,
            labels: &labels,
            metadata: &e.metadata,
        };
        match lane.ingest(&raw) {
            Ok(r) => records.push(r),
            Err(_) => undecodable += 1,
        }
    }
    (records, undecodable)
}
