//! Running counts per pattern: how often, when first and last, and in which services.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::enrich::Enriched;

/// Services remembered per pattern; hits from further services are counted in `other`.
const MAX_SERVICES: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatternCounter {
    pub count: u64,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub services: BTreeMap<String, u64>,
    /// Hits from services beyond the first MAX_SERVICES.
    pub other_services: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PatternStats {
    by_id: HashMap<Arc<str>, PatternCounter>,
}

impl PatternStats {
    pub fn observe(&mut self, rec: &Enriched) {
        for m in &rec.patterns {
            self.add_counts(&m.id, &rec.service, rec.ts_ns, rec.ts_ns, 1);
        }
    }

    /// Adds `count` hits of one pattern in one service seen between `first_ns` and
    /// `last_ns` (rows of the durable `detected_patterns` view).
    pub fn add_counts(&mut self, id: &str, service: &str, first_ns: i64, last_ns: i64, count: u64) {
        let c = self.by_id.entry(Arc::from(id)).or_insert_with(|| PatternCounter {
            first_seen_ns: first_ns,
            last_seen_ns: last_ns,
            ..Default::default()
        });
        c.count += count;
        c.first_seen_ns = c.first_seen_ns.min(first_ns);
        c.last_seen_ns = c.last_seen_ns.max(last_ns);
        if let Some(n) = c.services.get_mut(service) {
            *n += count;
        } else if c.services.len() < MAX_SERVICES {
            c.services.insert(service.to_owned(), count);
        } else {
            c.other_services += count;
        }
    }

    pub fn get(&self, id: &str) -> Option<&PatternCounter> {
        self.by_id.get(id)
    }

    pub fn total(&self) -> u64 {
        self.by_id.values().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::{Category, PatternMatch, Severity};
    use crate::record::{Level, LogRecord};

    #[test]
    fn counts_first_last_and_services() {
        let hit = PatternMatch {
            id: Arc::from("p"),
            severity: Severity::High,
            category: Category::Ai,
            suggestion: Arc::from("s"),
        };
        let mut stats = PatternStats::default();
        for (ts, svc) in [(20, "api"), (10, "gateway"), (30, "api")] {
            let mut e = Enriched::new(LogRecord::new(ts, svc, Level::Error, "x"));
            e.patterns.push(hit.clone());
            stats.observe(&e);
        }
        stats.observe(&Enriched::new(LogRecord::new(5, "api", Level::Info, "no hit")));
        let c = stats.get("p").expect("counted");
        assert_eq!((c.count, c.first_seen_ns, c.last_seen_ns), (3, 10, 30));
        assert_eq!(c.services.get("api"), Some(&2));
        assert_eq!(stats.total(), 3);
    }
}
