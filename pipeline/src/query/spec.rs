//! Query parameters, parsed and validated once. Every error names the field.

use regex::{Regex, RegexBuilder};
use serde::Serialize;

use crate::record::Level;

use super::values::{MAX_ID_LEN, clip, id, instant, number, one_of};
pub use super::values::{ParamError, boolean, duration, unknown_param_in};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Troubleshoot,
    Performance,
    Errors,
    Audit,
    Conversation,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Troubleshoot => "troubleshoot",
            Mode::Performance => "performance",
            Mode::Errors => "errors",
            Mode::Audit => "audit",
            Mode::Conversation => "conversation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    None,
    ByService,
    ByError,
    ByPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Structured,
    Narrative,
    Timeline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    Minimal,
    Standard,
    Detailed,
}

/// A line is dropped from every answer when its message or error matches.
#[derive(Debug, Clone)]
pub enum Exclusion {
    /// Case-insensitive substring, stored lower-cased.
    Literal(String),
    Regex(Regex),
}

impl Exclusion {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Exclusion::Literal(needle) => text.to_lowercase().contains(needle.as_str()),
            Exclusion::Regex(re) => re.is_match(text),
        }
    }
}

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub mode: Mode,
    pub services: Vec<String>,
    /// As given (`1h`), for the answer.
    pub time_range: String,
    pub time_range_s: u64,
    /// Whether `time_range` was given, rather than defaulted.
    pub time_range_given: bool,
    /// An absolute window's bounds, Unix ns (`start`, `end`): see `window`.
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub correlation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub session_id: Option<String>,
    pub workspace_id: Option<String>,
    /// Lines of one mined template (`template_key`: 16 hex digits).
    pub template_id: Option<u64>,
    pub severity_threshold: Option<Level>,
    pub include_context: Option<usize>,
    pub context_window_s: u64,
    pub aggregation: Aggregation,
    pub format: Format,
    pub deduplicate: bool,
    pub highlight: bool,
    pub exclude: Vec<Exclusion>,
    pub verbosity: Verbosity,
    pub limit: usize,
    pub cache: bool,
    /// The caller's workspaces: set by the server from the key, never from a parameter.
    pub scope: crate::scope::Scope,
}

impl Default for QuerySpec {
    fn default() -> Self {
        QuerySpec {
            mode: Mode::Troubleshoot,
            services: Vec::new(),
            time_range: "1h".into(),
            time_range_s: 3600,
            time_range_given: false,
            start_ns: None,
            end_ns: None,
            correlation_id: None,
            conversation_id: None,
            session_id: None,
            workspace_id: None,
            template_id: None,
            severity_threshold: None,
            include_context: None,
            context_window_s: 300,
            aggregation: Aggregation::None,
            format: Format::Structured,
            deduplicate: false,
            highlight: false,
            exclude: Vec::new(),
            verbosity: Verbosity::Standard,
            limit: 100,
            cache: true,
            scope: crate::scope::Scope::All,
        }
    }
}

pub const MAX_LIMIT: usize = 10_000;
pub const MAX_CONTEXT: usize = 50;
pub const MAX_TIME_RANGE_S: u64 = 30 * 86_400;
const MAX_EXCLUSIONS: usize = 20;
const MAX_PATTERN_LEN: usize = 512;

pub const PARAMS: &[&str] = &[
    "mode",
    "services",
    "time_range",
    "start",
    "end",
    "correlation_id",
    "conversation_id",
    "session_id",
    "workspace_id",
    "template_id",
    "severity_threshold",
    "include_context",
    "context_window",
    "aggregation",
    "format",
    "deduplicate",
    "highlight",
    "exclude_patterns",
    "verbosity",
    "limit",
    "cache",
];

impl QuerySpec {
    /// Parses URL query pairs. `services` and `exclude_patterns` may repeat; any other
    /// parameter given twice is an error, as is any unknown parameter.
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ParamError> {
        let mut spec = QuerySpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in params {
            let Some(&name) = PARAMS.iter().find(|p| **p == key) else {
                return Err(unknown_param(key));
            };
            let repeatable = matches!(name, "services" | "exclude_patterns");
            if !repeatable && seen.contains(&name) {
                return Err(ParamError::new(
                    name,
                    format!("`{name}` is given more than once"),
                    "pass it once",
                ));
            }
            seen.push(name);
            spec.set(name, value)?;
        }
        spec.check_window()?;
        Ok(spec)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), ParamError> {
        let value = value.trim();
        match name {
            "mode" => {
                self.mode = one_of(
                    name,
                    value,
                    &[
                        ("troubleshoot", Mode::Troubleshoot),
                        ("performance", Mode::Performance),
                        ("errors", Mode::Errors),
                        ("audit", Mode::Audit),
                        ("conversation", Mode::Conversation),
                    ],
                )?
            }
            "services" => {
                for service in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if service.len() > MAX_ID_LEN || service.chars().any(char::is_control) {
                        return Err(ParamError::new(
                            name,
                            "a service name is longer than 256 bytes or has control characters",
                            "pass service names as they appear in the `service` field, comma-separated",
                        ));
                    }
                    if !self.services.iter().any(|s| s == service) {
                        self.services.push(service.to_owned());
                    }
                }
            }
            "time_range" => {
                self.time_range_s = duration(name, value, MAX_TIME_RANGE_S)?;
                self.time_range = value.to_owned();
                self.time_range_given = true;
            }
            "start" => self.start_ns = Some(instant(name, value)?),
            "end" => self.end_ns = Some(instant(name, value)?),
            "context_window" => self.context_window_s = duration(name, value, MAX_TIME_RANGE_S)?,
            "correlation_id" => self.correlation_id = Some(id(name, value)?),
            "conversation_id" => self.conversation_id = Some(id(name, value)?),
            "session_id" => self.session_id = Some(id(name, value)?),
            "workspace_id" => self.workspace_id = Some(id(name, value)?),
            "template_id" => {
                let parsed = (value.len() == 16)
                    .then(|| u64::from_str_radix(value, 16).ok())
                    .flatten();
                self.template_id = Some(parsed.ok_or_else(|| {
                    ParamError::new(
                        name,
                        format!("`{}` is not a template id", clip(value)),
                        "pass 16 hex digits, as `template_id` appears in /query and /analyze answers",
                    )
                })?);
            }
            "severity_threshold" => {
                self.severity_threshold = Some(Level::from_name(value).ok_or_else(|| {
                    ParamError::new(
                        name,
                        format!("unknown severity `{}`", clip(value)),
                        "use one of trace, debug, info, warn, error, fatal",
                    )
                })?)
            }
            "include_context" => self.include_context = Some(number(name, value, 0, MAX_CONTEXT)?),
            "aggregation" => {
                self.aggregation = one_of(
                    name,
                    value,
                    &[
                        ("none", Aggregation::None),
                        ("by_service", Aggregation::ByService),
                        ("by_error", Aggregation::ByError),
                        ("by_pattern", Aggregation::ByPattern),
                    ],
                )?
            }
            "format" => {
                self.format = one_of(
                    name,
                    value,
                    &[
                        ("structured", Format::Structured),
                        ("narrative", Format::Narrative),
                        ("timeline", Format::Timeline),
                    ],
                )?
            }
            "verbosity" => {
                self.verbosity = one_of(
                    name,
                    value,
                    &[
                        ("minimal", Verbosity::Minimal),
                        ("standard", Verbosity::Standard),
                        ("detailed", Verbosity::Detailed),
                    ],
                )?
            }
            "deduplicate" => self.deduplicate = boolean(name, value)?,
            "highlight" => self.highlight = boolean(name, value)?,
            "cache" => self.cache = boolean(name, value)?,
            "limit" => self.limit = number(name, value, 1, MAX_LIMIT)?,
            "exclude_patterns" => self.add_exclusions(value)?,
            _ => return Err(unknown_param(name)),
        }
        Ok(())
    }

    /// `re:<regex>` is one regular expression; anything else is a comma-separated list of
    /// case-insensitive substrings.
    fn add_exclusions(&mut self, value: &str) -> Result<(), ParamError> {
        const FIELD: &str = "exclude_patterns";
        if value.len() > MAX_PATTERN_LEN {
            return Err(ParamError::new(
                FIELD,
                "pattern longer than 512 bytes",
                "shorten the pattern",
            ));
        }
        if let Some(pattern) = value.strip_prefix("re:") {
            let re = RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
                ParamError::new(
                    FIELD,
                    format!("invalid regex: {e}"),
                    "fix the regex, or drop the `re:` prefix to match a literal substring",
                )
            })?;
            self.exclude.push(Exclusion::Regex(re));
        } else {
            for literal in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                self.exclude.push(Exclusion::Literal(literal.to_lowercase()));
            }
        }
        if self.exclude.len() > MAX_EXCLUSIONS {
            return Err(ParamError::new(
                FIELD,
                "more than 20 exclusions",
                "combine them into one `re:` regex",
            ));
        }
        Ok(())
    }

    /// The least severe level a line may have to be selected by this query. Errors mode only
    /// ever shows error and fatal; in other modes `severity_threshold` replaces the default
    /// floor (warn for troubleshoot), so `correlation_id=R&severity_threshold=trace` shows a
    /// whole request.
    pub fn min_level(&self) -> Level {
        match self.mode {
            Mode::Errors => self.severity_threshold.map_or(Level::Error, |t| t.max(Level::Error)),
            // One request, conversation or session: the whole story, not only its warnings.
            Mode::Troubleshoot if self.scoped_to_id() => self.severity_threshold.unwrap_or(Level::Trace),
            Mode::Troubleshoot => self.severity_threshold.unwrap_or(Level::Warn),
            Mode::Performance | Mode::Audit | Mode::Conversation => self.severity_threshold.unwrap_or(Level::Trace),
        }
    }

    /// True when the query names one request, conversation or session.
    pub fn scoped_to_id(&self) -> bool {
        self.correlation_id.is_some() || self.conversation_id.is_some() || self.session_id.is_some()
    }

    /// Surrounding lines per selected line; troubleshooting shows two by default.
    pub fn context_lines(&self) -> usize {
        self.include_context.unwrap_or(match self.mode {
            Mode::Troubleshoot => 2,
            _ => 0,
        })
    }
}

fn unknown_param(key: &str) -> ParamError {
    unknown_param_in(key, PARAMS)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
