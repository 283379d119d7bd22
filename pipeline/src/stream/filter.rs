//! What a stream subscriber wants: services, a severity threshold, and which alerts.

use serde::{Deserialize, Serialize};

use crate::anomaly::Alert;
use crate::enrich::Enriched;
use crate::patterns::Severity;
use crate::record::Level;

/// The filter as a client sends it (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub severity_threshold: Option<String>,
    #[serde(default)]
    pub pattern_alerts: Vec<String>,
    #[serde(default)]
    pub logs: Option<bool>,
}

/// The filter in effect, echoed in `connected`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter {
    /// Empty: every service.
    pub services: Vec<String>,
    pub severity_threshold: Level,
    /// Pattern ids, parts of ids (`timeout`), categories, or alert kinds (`cascade`,
    /// `anomaly`, `new_template`); empty: every alert.
    pub pattern_alerts: Vec<String>,
    /// Whether `log` messages are sent (alerts always are).
    pub logs: bool,
    /// The subscriber's workspaces, from its key (never from the client's filter).
    #[serde(skip)]
    pub scope: crate::scope::Scope,
}

/// A filter field that cannot be used: (field, message).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

impl Filter {
    pub fn from_spec(spec: FilterSpec) -> Result<Filter, FilterError> {
        let severity_threshold = match spec.severity_threshold.as_deref() {
            None | Some("") => Level::Warn,
            Some(name) => Level::from_name(name).ok_or_else(|| FilterError {
                field: "severity_threshold",
                message: format!("unknown level {name:?}: one of trace, debug, info, warn, error, fatal"),
            })?,
        };
        let services: Vec<String> = spec
            .services
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let pattern_alerts: Vec<String> = spec
            .pattern_alerts
            .into_iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if services.len() > 100 || pattern_alerts.len() > 100 {
            return Err(FilterError {
                field: if services.len() > 100 {
                    "services"
                } else {
                    "pattern_alerts"
                },
                message: "at most 100 entries".into(),
            });
        }
        Ok(Filter {
            services,
            severity_threshold,
            pattern_alerts,
            logs: spec.logs.unwrap_or(true),
            scope: crate::scope::Scope::All,
        })
    }

    fn service_ok(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }

    pub fn wants_log(&self, e: &Enriched) -> bool {
        self.wants_line(e.record.level, &e.record.service, e.record.workspace_id.as_deref())
    }

    /// A line of this level, service and workspace (from a `StreamLine` or a local record).
    pub fn wants_line(&self, level: Level, service: &str, workspace: Option<&str>) -> bool {
        self.logs && level >= self.severity_threshold && self.service_ok(service) && self.scope.allows(workspace)
    }

    /// Alerts describe services (rates, templates, cascades), not one workspace's lines, so
    /// only subscribers that may see lines without a workspace get them.
    pub fn wants_alert(&self, a: &Alert) -> bool {
        if !self.scope.sees_unscoped() {
            return false;
        }
        if a.severity < alert_floor(self.severity_threshold) {
            return false;
        }
        if !self.services.is_empty() && !a.services.iter().any(|s| self.service_ok(s)) {
            return false;
        }
        if self.pattern_alerts.is_empty() {
            return true;
        }
        let kind = a.kind.as_str();
        let category = a.category.map(|c| c.as_str());
        self.pattern_alerts
            .iter()
            .any(|want| want == kind || Some(want.as_str()) == category || a.key.contains(want.as_str()))
    }
}

/// The least alert severity a log-level threshold lets through.
fn alert_floor(level: Level) -> Severity {
    match level {
        Level::Fatal => Severity::Critical,
        Level::Error => Severity::High,
        Level::Warn => Severity::Medium,
        _ => Severity::Low,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::AlertKind;
    use crate::patterns::Category;
    use crate::record::LogRecord;

    fn alert(kind: AlertKind, key: &str, severity: Severity, category: Option<Category>, service: &str) -> Alert {
        Alert {
            kind,
            severity,
            category,
            key: key.into(),
            summary: String::new(),
            suggestion: None,
            first_seen_ns: 0,
            last_seen_ns: 0,
            count: 1,
            services: vec![service.into()],
            correlation_ids: Vec::new(),
            samples: Vec::new(),
            revision: 0,
        }
    }

    fn spec(v: serde_json::Value) -> Result<Filter, FilterError> {
        Filter::from_spec(serde_json::from_value(v).expect("spec"))
    }

    #[test]
    fn logs_pass_by_service_and_level() {
        let f = spec(serde_json::json!({"services": ["api"], "severity_threshold": "error"})).expect("filter");
        let line = |service: &str, level| Enriched::new(LogRecord::new(0, service, level, "m"));
        assert!(f.wants_log(&line("api", Level::Error)));
        assert!(f.wants_log(&line("api", Level::Fatal)));
        assert!(!f.wants_log(&line("api", Level::Warn)));
        assert!(!f.wants_log(&line("worker", Level::Error)));
        let quiet = spec(serde_json::json!({"logs": false})).expect("filter");
        assert!(!quiet.wants_log(&line("api", Level::Fatal)));
    }

    #[test]
    fn alerts_pass_by_pattern_part_category_kind_and_severity() {
        let f = spec(serde_json::json!({"pattern_alerts": ["timeout", "rate_limit", "cascade", "Security"]}))
            .expect("filter");
        let ok = |a: &Alert| f.wants_alert(a);
        assert!(ok(&alert(
            AlertKind::Pattern,
            "model_timeout",
            Severity::High,
            Some(Category::Ai),
            "gw"
        )));
        assert!(ok(&alert(
            AlertKind::Anomaly,
            "rate_limit_exceeded",
            Severity::Medium,
            None,
            "gw"
        )));
        assert!(ok(&alert(
            AlertKind::Cascade,
            "cascade:api>gw",
            Severity::High,
            None,
            "api"
        )));
        assert!(ok(&alert(
            AlertKind::Pattern,
            "auth_failure",
            Severity::High,
            Some(Category::Security),
            "api"
        )));
        assert!(!ok(&alert(
            AlertKind::Pattern,
            "out_of_memory",
            Severity::Critical,
            Some(Category::Infrastructure),
            "api"
        )));
        assert!(
            !ok(&alert(
                AlertKind::Pattern,
                "model_timeout",
                Severity::Low,
                Some(Category::Ai),
                "gw"
            )),
            "below warn"
        );
        let all = spec(serde_json::json!({})).expect("filter");
        assert!(all.wants_alert(&alert(
            AlertKind::NewTemplate,
            "template:1",
            Severity::Medium,
            None,
            "x"
        )));
    }

    #[test]
    fn bad_filters_name_the_field() {
        assert_eq!(
            spec(serde_json::json!({"severity_threshold": "loud"})).map_err(|e| e.field),
            Err("severity_threshold")
        );
        assert!(serde_json::from_value::<FilterSpec>(serde_json::json!({"servics": []})).is_err());
    }
}
