//! The normalized log record every later stage works on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::record_fields::Fields;

/// Stream labels (Loki's label set), shared by every line of one stream.
pub type Labels = Arc<BTreeMap<String, String>>;

/// Severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Maps the level names used by common loggers (syslog, Python, log4j, pino, OTel
    /// severity text) onto our six levels. Case-insensitive; `None` when unknown.
    pub fn from_name(name: &str) -> Option<Level> {
        let name = name.trim();
        if name.len() > 16 {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" | "trc" | "finest" | "finer" => Level::Trace,
            "debug" | "dbg" | "fine" | "verbose" => Level::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "log" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warn,
            "error" | "err" | "eror" | "severe" => Level::Error,
            "fatal" | "critical" | "crit" | "panic" | "emerg" | "emergency" | "alert" | "dpanic" => Level::Fatal,
            _ => return None,
        })
    }

    /// Numeric levels as pino (10 trace .. 60 fatal) writes them; 0-7 as syslog severities.
    pub fn from_number(n: f64) -> Option<Level> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let n = n as u64;
        Some(match n {
            0..=2 => Level::Fatal,
            3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            7 => Level::Debug,
            8..=14 => Level::Trace,
            15..=24 => Level::Debug,
            25..=34 => Level::Info,
            35..=44 => Level::Warn,
            45..=54 => Level::Error,
            _ => Level::Fatal,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Level::from_name(s).ok_or(())
    }
}

/// How the line was written by its producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    Json,
    Logfmt,
    Plain,
}

/// One log line after decoding and normalization.
///
/// Field names follow DESIGN.md "The normalized record"; the aliases that feed them are in
/// `normalize::fields`. Unknown fields survive in `extra` (bounded, nested keys flattened with
/// `.`), so nothing the producer wrote is lost for export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Event time, Unix nanoseconds.
    pub ts_ns: i64,
    pub service: Arc<str>,
    pub level: Level,
    pub message: Box<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Total tokens; derived from input + output when the line gives only the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_used: Option<u64>,
    /// Provider-reported cost in USD, when the line carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<Box<str>>,
    /// Stream labels from the shipper (Promtail, Alloy, ...), shared by the stream's lines.
    #[serde(default, skip_serializing_if = "no_labels")]
    pub labels: Labels,
    /// Loki structured metadata of this entry.
    /// Boxed: most lines have none, and a held record stays in a smaller size class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<BTreeMap<String, String>>>,
    /// Fields with no normalized home, flattened (`a.b`), at most `DecodeLimits::max_extra_fields`.
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub extra: Fields,
    /// How many unknown fields were dropped because `extra` was full or a value too long.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_fields: u32,
    pub format: LineFormat,
}

fn no_labels(labels: &Labels) -> bool {
    labels.is_empty()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LogRecord {
    /// A record with only the required fields set; the decoder fills in the rest.
    pub fn new(ts_ns: i64, service: impl Into<Arc<str>>, level: Level, message: impl Into<Box<str>>) -> Self {
        LogRecord {
            ts_ns,
            service: service.into(),
            level,
            message: message.into(),
            correlation_id: None,
            conversation_id: None,
            session_id: None,
            workspace_id: None,
            user_id: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            tokens_used: None,
            cost_usd: None,
            duration_ms: None,
            request_type: None,
            success: None,
            error: None,
            prompt_hash: None,
            labels: Labels::default(),
            metadata: None,
            extra: Fields::new(),
            dropped_fields: 0,
            format: LineFormat::Plain,
        }
    }

    /// True when the line reports a failure: error level or above, or `success: false`.
    pub fn is_failure(&self) -> bool {
        self.level >= Level::Error || self.success == Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_map_onto_six_levels() {
        assert_eq!(Level::from_name("WARNING"), Some(Level::Warn));
        assert_eq!(Level::from_name("Critical"), Some(Level::Fatal));
        assert_eq!(Level::from_name("err"), Some(Level::Error));
        assert_eq!(Level::from_name("bogus"), None);
        assert_eq!(Level::from_number(30.0), Some(Level::Info));
        assert_eq!(Level::from_number(50.0), Some(Level::Error));
        assert_eq!(Level::from_number(3.0), Some(Level::Error));
        assert!(Level::Fatal > Level::Error && Level::Warn > Level::Info);
    }
}
