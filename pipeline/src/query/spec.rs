//! Query parameters, parsed and validated once. Every error names the field.

use regex::{Regex, RegexBuilder};
use serde::Serialize;

use crate::record::Level;

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

/// A parameter that could not be accepted: which one, why, and what would work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamError {
    pub field: String,
    pub message: String,
    pub suggestion: String,
}

impl ParamError {
    pub fn new(field: &str, message: impl Into<String>, suggestion: impl Into<String>) -> Self {
        ParamError {
            field: field.to_owned(),
            message: message.into(),
            suggestion: suggestion.into(),
        }
    }
}

pub const MAX_LIMIT: usize = 10_000;
pub const MAX_CONTEXT: usize = 50;
pub const MAX_TIME_RANGE_S: u64 = 30 * 86_400;
const MAX_ID_LEN: usize = 256;
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
            "start" => self.start_ns = Some(super::window::instant(name, value)?),
            "end" => self.end_ns = Some(super::window::instant(name, value)?),
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

/// An unknown parameter, with the closest of `known` suggested.
pub fn unknown_param_in(key: &str, known: &[&str]) -> ParamError {
    let close = known.iter().find(|p| similar(p, key));
    let suggestion = match close {
        Some(p) => format!("did you mean `{p}`?"),
        None => format!("known parameters: {}", known.join(", ")),
    };
    ParamError::new(key, format!("unknown parameter `{}`", clip(key)), suggestion)
}

/// Same letters give or take a plural, a separator or one edit: enough to catch typos.
fn similar(known: &str, given: &str) -> bool {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    let (a, b) = (fold(known), fold(given));
    a == b || a.trim_end_matches('s') == b.trim_end_matches('s') || edit_distance(&a, &b) <= 2
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(super) fn clip(s: &str) -> &str {
    crate::normalize::level::prefix(s, 64)
}

fn one_of<T: Copy>(field: &str, value: &str, options: &[(&str, T)]) -> Result<T, ParamError> {
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            ParamError::new(
                field,
                format!("unknown value `{}`", clip(value)),
                format!("use one of {}", names.join(", ")),
            )
        })
}

pub fn boolean(field: &str, value: &str) -> Result<bool, ParamError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ParamError::new(
            field,
            format!("`{}` is not a boolean", clip(value)),
            "use true or false",
        )),
    }
}

fn number(field: &str, value: &str, min: usize, max: usize) -> Result<usize, ParamError> {
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ParamError::new(
            field,
            format!("`{}` is not a whole number from {min} to {max}", clip(value)),
            format!("pass a number from {min} to {max}"),
        )),
    }
}

/// `^[0-9]+[smhd]$`, at least one second, at most `max_s`.
pub fn duration(field: &str, value: &str, max_s: u64) -> Result<u64, ParamError> {
    let bad = || {
        ParamError::new(
            field,
            format!("`{}` is not a duration like 15m, 1h or 7d", clip(value)),
            format!("use digits followed by s, m, h or d, at most {}d", max_s / 86_400),
        )
    };
    let unit = match value.bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => return Err(bad()),
    };
    let digits = &value[..value.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(bad());
    }
    let secs = digits.parse::<u64>().map_err(|_| bad())? * unit;
    if secs == 0 || secs > max_s {
        return Err(bad());
    }
    Ok(secs)
}

fn id(field: &str, value: &str) -> Result<String, ParamError> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(ParamError::new(
            field,
            "must be 1 to 256 printable characters",
            "pass the id as it appears in the logs",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<QuerySpec, ParamError> {
        QuerySpec::from_params(q.iter().copied())
    }

    #[test]
    fn defaults_and_values() {
        let spec = parse(&[
            ("mode", "errors"),
            ("services", "api, worker"),
            ("services", "api"),
            ("time_range", "15m"),
            ("limit", "5"),
        ])
        .expect("valid");
        assert_eq!(spec.mode, Mode::Errors);
        assert_eq!(spec.services, vec!["api", "worker"]);
        assert_eq!(spec.time_range_s, 900);
        assert_eq!(spec.limit, 5);
        assert_eq!(spec.min_level(), Level::Error);
        let t = parse(&[]).expect("defaults");
        assert_eq!(
            (t.mode, t.min_level(), t.context_lines()),
            (Mode::Troubleshoot, Level::Warn, 2)
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (q, field) in [
            (vec![("mode", "debugging")], "mode"),
            (vec![("time_range", "1w")], "time_range"),
            (vec![("time_range", "0h")], "time_range"),
            (vec![("time_range", "31d")], "time_range"),
            (vec![("context_window", "31d")], "context_window"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "10001")], "limit"),
            (vec![("include_context", "51")], "include_context"),
            (vec![("severity_threshold", "loud")], "severity_threshold"),
            (vec![("exclude_patterns", "re:(unclosed")], "exclude_patterns"),
            (vec![("format", "xml")], "format"),
            (vec![("deduplicate", "maybe")], "deduplicate"),
            (vec![("mode", "errors"), ("mode", "audit")], "mode"),
            (vec![("correlation_id", "")], "correlation_id"),
        ] {
            let err = parse(&q).expect_err("invalid");
            assert_eq!(err.field, field, "{q:?}");
            assert!(!err.suggestion.is_empty());
        }
    }

    /// The README promises `context_window` takes what `time_range` takes.
    #[test]
    fn context_window_takes_the_values_time_range_takes() {
        for value in ["30s", "5m", "12h", "30d"] {
            let spec = parse(&[("context_window", value), ("time_range", value)]).expect(value);
            assert_eq!(spec.context_window_s, spec.time_range_s, "{value}");
        }
    }

    #[test]
    fn unknown_parameters_get_a_suggestion() {
        let err = parse(&[("service", "api")]).expect_err("unknown");
        assert_eq!(err.field, "service");
        assert!(err.suggestion.contains("`services`"), "{}", err.suggestion);
        let err = parse(&[("zzz", "1")]).expect_err("unknown");
        assert!(err.suggestion.contains("known parameters"));
    }

    #[test]
    fn exclusions_literal_and_regex() {
        let spec = parse(&[
            ("exclude_patterns", "Health,metrics"),
            ("exclude_patterns", "re:^GET /ready$"),
        ])
        .expect("valid");
        assert_eq!(spec.exclude.len(), 3);
        assert!(spec.exclude[0].matches("GET /HEALTH 200"));
        assert!(spec.exclude[2].matches("GET /ready"));
        assert!(!spec.exclude[2].matches("GET /ready now"));
    }

    #[test]
    fn threshold_never_lowers_the_errors_floor() {
        let spec = parse(&[("mode", "errors"), ("severity_threshold", "info")]).expect("valid");
        assert_eq!(spec.min_level(), Level::Error);
        let spec = parse(&[("mode", "errors"), ("severity_threshold", "fatal")]).expect("valid");
        assert_eq!(spec.min_level(), Level::Fatal);
        let spec = parse(&[("severity_threshold", "debug")]).expect("valid");
        assert_eq!(
            spec.min_level(),
            Level::Debug,
            "troubleshoot's warn floor is only a default"
        );
    }
}
