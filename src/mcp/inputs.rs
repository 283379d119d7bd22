//! The tools' input schemas. Names and values are the REST API's, so a tool call and a
//! REST call with the same arguments get the same checks and the same 4xx wording.

use schemars::JsonSchema;
use serde::Deserialize;

/// The answer's size budget, on every tool.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct Budget {
    /// Largest answer in bytes (about 4 bytes a token); default 6000, 1000..200000.
    pub max_bytes: Option<usize>,
}

impl Budget {
    pub fn bytes(&self) -> usize {
        self.max_bytes
            .unwrap_or(super::answer::DEFAULT_MAX_BYTES)
            .clamp(super::answer::MIN_MAX_BYTES, super::answer::MAX_MAX_BYTES)
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct QueryLogs {
    /// troubleshoot (default: warnings and errors, or a whole request), performance (slowest
    /// first), errors, audit, or conversation (grouped by conversation).
    pub mode: Option<String>,
    /// Services to read; all when absent.
    pub services: Option<Vec<String>>,
    /// How far back: 15m, 1h (default), 7d.
    pub time_range: Option<String>,
    /// An absolute window instead (RFC 3339, e.g. 2026-12-03T10:00:00Z): from `start` to
    /// `end` (or now); or `time_range` back from `end`.
    pub start: Option<String>,
    pub end: Option<String>,
    pub correlation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub session_id: Option<String>,
    pub workspace_id: Option<String>,
    /// Lines of one template (16 hex digits, from `template_id` in answers).
    pub template_id: Option<String>,
    /// trace, debug, info, warn, error or fatal.
    pub severity_threshold: Option<String>,
    /// Leave out lines whose message matches any of these (text, or /regex/).
    pub exclude_patterns: Option<Vec<String>>,
    /// Lines to return, default 20, at most 200.
    pub limit: Option<usize>,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetRequest {
    /// The request's correlation id (`correlation_id` in lines).
    pub correlation_id: String,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ServiceHealth {
    pub service: String,
    /// How far back: 15m, 1h (default), 7d.
    pub time_range: Option<String>,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetConversation {
    pub conversation_id: String,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkspaceUsage {
    pub workspace_id: String,
    /// How far back: 24h (default), 7d, 30d.
    pub time_range: Option<String>,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListPatterns {
    /// Only these categories: connectivity, performance, ai, security, infrastructure,
    /// database, data.
    pub categories: Option<Vec<String>>,
    /// Only patterns at least this severe: low, medium, high, critical.
    pub min_severity: Option<String>,
    /// Patterns to return, most matched first; default 20.
    pub limit: Option<usize>,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainTemplate {
    /// 16 hex digits, from `template_id` in query answers or `id` in service_health.
    pub template_id: String,
    /// How far back to count and sample: 1h (default), 7d.
    pub time_range: Option<String>,
    #[serde(flatten)]
    pub budget: Budget,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RecentAlerts {
    /// The `cursor` of a previous answer: only alerts seen after it. Absent: the window's.
    pub cursor: Option<String>,
    /// Only this service's alerts.
    pub service: Option<String>,
    /// How far back: 1h (default).
    pub time_range: Option<String>,
    /// Alerts to return, newest first; default 20.
    pub limit: Option<usize>,
    #[serde(flatten)]
    pub budget: Budget,
}
