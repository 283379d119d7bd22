//! A line as the live stream shows it: the few fields a subscriber's filter and the `log`
//! message need. Consumers publish it once the line is enriched, so API replicas fan it out
//! without decoding or matching the raw line again.

use serde::{Deserialize, Serialize};

use crate::enrich::Enriched;
use crate::record::Level;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamLine {
    pub ts_ns: i64,
    pub service: String,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// For the subscriber's scope check; not shown in the `log` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ids of the catalog patterns the line matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<u64>,
}

impl From<&Enriched> for StreamLine {
    fn from(e: &Enriched) -> Self {
        let r = &e.record;
        StreamLine {
            ts_ns: r.ts_ns,
            service: r.service.to_string(),
            level: r.level,
            message: r.message.to_string(),
            correlation_id: r.correlation_id.as_deref().map(str::to_owned),
            workspace_id: r.workspace_id.as_deref().map(str::to_owned),
            error: r.error.as_deref().map(str::to_owned),
            patterns: e.patterns.iter().map(|m| m.id.to_string()).collect(),
            template_id: e.template.map(|t| t.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LogRecord;

    #[test]
    fn round_trips_through_json() {
        let mut r = LogRecord::new(5, "api", Level::Error, "boom");
        r.correlation_id = Some("r1".into());
        let line = StreamLine::from(&Enriched::new(r));
        let json = serde_json::to_vec(&line).expect("serializes");
        let back: StreamLine = serde_json::from_slice(&json).expect("parses");
        assert_eq!(back, line);
    }
}
