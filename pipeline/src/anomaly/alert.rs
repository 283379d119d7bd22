//! Alerts: what the pipeline tells people about, computed once as lines arrive.

use serde::{Deserialize, Serialize};

use crate::enrich::Enriched;
use crate::patterns::{Category, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A known pattern matched.
    Pattern,
    /// A rate spike of a pattern or a template.
    Anomaly,
    /// Errors in two or more services under one correlation id.
    Cascade,
    /// A template never seen before in its service.
    NewTemplate,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Pattern => "pattern",
            AlertKind::Anomaly => "anomaly",
            AlertKind::Cascade => "cascade",
            AlertKind::NewTemplate => "new_template",
        }
    }
}

/// Lines kept as evidence per alert.
pub const MAX_SAMPLES: usize = 5;

/// Serialized as is on `ai-logs.alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// The pattern id, or `template:<id>` for template alerts.
    pub key: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    /// Lines behind the alert in its window.
    pub count: u64,
    pub services: Vec<String>,
    pub correlation_ids: Vec<String>,
    /// Up to MAX_SAMPLES messages, earliest first.
    pub samples: Vec<String>,
    /// 0 when first raised; each time a folded alert is published again (with its count)
    /// this goes up, so a subscriber can tell an update from a new alert.
    #[serde(default)]
    pub revision: u32,
}

impl Alert {
    /// A new alert raised by one line: seen at its time, in its service and request, with
    /// it as the first sample.
    pub fn for_line(e: &Enriched, kind: AlertKind, severity: Severity, key: String, summary: String) -> Alert {
        let r = &e.record;
        Alert {
            kind,
            severity,
            category: None,
            key,
            summary,
            suggestion: None,
            first_seen_ns: r.ts_ns,
            last_seen_ns: r.ts_ns,
            count: 1,
            services: vec![r.service.to_string()],
            correlation_ids: r.correlation_id.iter().map(|id| id.to_string()).collect(),
            samples: vec![r.message.to_string()],
            revision: 0,
        }
    }

    /// Stable across the alert's re-publications (folding keeps kind, key and first
    /// sighting), so a subscriber can update an alert it already shows instead of adding it.
    pub fn stable_id(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.key, self.first_seen_ns)
    }
}
