//! The pattern catalog: known problems with severity, category and a fix, from YAML
//! (`pipeline/patterns.yaml`, shipped) plus custom patterns added through the API.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The catalog shipped with ailogs.
pub const SHIPPED_YAML: &str = include_str!("../../patterns.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Connectivity,
    Performance,
    Ai,
    Security,
    Infrastructure,
    /// Pools, locks, transactions, schema migrations, replication.
    Database,
    Data,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Connectivity,
        Category::Performance,
        Category::Ai,
        Category::Security,
        Category::Infrastructure,
        Category::Database,
        Category::Data,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Connectivity => "connectivity",
            Category::Performance => "performance",
            Category::Ai => "ai",
            Category::Security => "security",
            Category::Infrastructure => "infrastructure",
            Category::Database => "database",
            Category::Data => "data",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// Bounds on a number; both optional, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Bound {
    pub fn contains(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// A numeric condition a line must meet besides matching the regex.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The record's `duration_ms`, else the longest "<n> ms|s" duration in the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<Bound>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default)]
    pub positive: Vec<String>,
    #[serde(default)]
    pub negative: Vec<String>,
}

/// One pattern, as written in the catalog and accepted by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternDef {
    pub id: String,
    pub regex: String,
    pub severity: Severity,
    pub category: Category,
    pub suggestion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    #[serde(default)]
    pub examples: Examples,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: String,
    patterns: Vec<PatternDef>,
}

/// Why a catalog or a pattern was refused. Messages name the pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogError {
    Syntax(String),
    Invalid {
        id: String,
        reason: String,
    },
    Compile {
        id: String,
        message: String,
    },
    /// An example line that the compiled pattern gets wrong.
    Example {
        id: String,
        line: String,
        expected_match: bool,
    },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Syntax(m) => write!(f, "catalog is not valid YAML/JSON: {m}"),
            CatalogError::Invalid { id, reason } => write!(f, "pattern {id:?}: {reason}"),
            CatalogError::Compile { id, message } => write!(f, "pattern {id:?}: regex does not compile: {message}"),
            CatalogError::Example {
                id,
                line,
                expected_match,
            } => {
                let want = if *expected_match {
                    "should match"
                } else {
                    "should not match"
                };
                write!(f, "pattern {id:?}: example {line:?} {want}")
            }
        }
    }
}

impl std::error::Error for CatalogError {}

/// The patterns of a catalog file, validated (not yet compiled).
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub version: String,
    pub patterns: Vec<PatternDef>,
}

impl Catalog {
    pub fn shipped() -> Result<Catalog, CatalogError> {
        Catalog::from_yaml(SHIPPED_YAML)
    }

    pub fn from_yaml(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = serde_yaml_ng::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        let mut ids = HashSet::new();
        for p in &file.patterns {
            p.validate()?;
            if !ids.insert(p.id.as_str()) {
                return Err(CatalogError::Invalid {
                    id: p.id.clone(),
                    reason: "duplicate id".into(),
                });
            }
        }
        Ok(Catalog {
            version: file.version,
            patterns: file.patterns,
        })
    }
}

/// Longest accepted regex and suggestion, in bytes: patterns come from API users too.
pub const MAX_REGEX_LEN: usize = 2048;
pub const MAX_SUGGESTION_LEN: usize = 1024;
pub const MAX_ID_LEN: usize = 64;

impl PatternDef {
    /// Field checks that need no compiler.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let invalid = |reason: &str| {
            Err(CatalogError::Invalid {
                id: self.id.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.id.is_empty()
            || self.id.len() > MAX_ID_LEN
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return invalid("id must be 1-64 characters of a-z, 0-9 and _");
        }
        if self.regex.trim().is_empty() {
            return invalid("regex is empty");
        }
        if self.regex.len() > MAX_REGEX_LEN {
            return invalid("regex is longer than 2048 bytes");
        }
        if self.suggestion.trim().is_empty() {
            return invalid("suggestion is empty");
        }
        if self.suggestion.len() > MAX_SUGGESTION_LEN {
            return invalid("suggestion is longer than 1024 bytes");
        }
        if let Some(b) = self.condition.and_then(|c| c.duration_ms)
            && b.min.is_none()
            && b.max.is_none()
        {
            return invalid("condition.duration_ms needs min or max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README states how many patterns ship; it must say the truth.
    #[test]
    fn the_readme_counts_the_shipped_patterns() {
        let readme = include_str!("../../../README.md");
        let n = Catalog::shipped().expect("shipped catalog parses").patterns.len();
        assert!(
            readme.contains(&format!("{n} curated patterns")),
            "README does not say {n} curated patterns"
        );
    }

    #[test]
    fn shipped_catalog_covers_the_seed_and_every_category() {
        let c = Catalog::shipped().expect("shipped catalog parses");
        assert!(c.patterns.len() >= 30, "{} patterns", c.patterns.len());
        for id in [
            "connection_timeout",
            "connection_refused",
            "rate_limit_exceeded",
            "out_of_memory",
            "memory_leak",
            "db_connection_pool",
            "slow_query",
            "token_limit_exceeded",
            "model_timeout",
            "hallucination_detected",
            "auth_failure",
            "permission_denied",
            "file_parsing_error",
            "file_size_limit",
        ] {
            assert!(c.patterns.iter().any(|p| p.id == id), "missing {id}");
        }
        for cat in Category::ALL {
            assert!(c.patterns.iter().any(|p| p.category == cat), "no {cat:?} pattern");
        }
        for p in &c.patterns {
            assert!(!p.examples.positive.is_empty(), "{} has no positive example", p.id);
            assert!(!p.examples.negative.is_empty(), "{} has no negative example", p.id);
        }
    }

    #[test]
    fn bad_catalogs_are_refused_with_the_pattern_named() {
        let dup = "version: x\npatterns:\n  - {id: a, regex: x, severity: low, category: data, suggestion: s}\n  - {id: a, regex: y, severity: low, category: data, suggestion: s}\n";
        assert!(matches!(Catalog::from_yaml(dup), Err(CatalogError::Invalid { id, .. }) if id == "a"));
        let bad_id = "version: x\npatterns:\n  - {id: A-b, regex: x, severity: low, category: data, suggestion: s}\n";
        assert!(matches!(Catalog::from_yaml(bad_id), Err(CatalogError::Invalid { .. })));
        let bad_sev = "version: x\npatterns:\n  - {id: a, regex: x, severity: huge, category: data, suggestion: s}\n";
        assert!(matches!(Catalog::from_yaml(bad_sev), Err(CatalogError::Syntax(_))));
    }
}
