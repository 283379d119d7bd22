//! Matching the catalog on records: one Hyperscan block database for all patterns, scanned
//! over the message and error text; numeric conditions checked on parsed values.

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use hyperscan::{BlockDatabase, HsError, Matching, Scratch};
use hyperscan::{Builder, Pattern, PatternFlags, Patterns};
use regex::Regex;
use serde::Serialize;

use super::catalog::{CatalogError, Category, PatternDef, Severity};
use crate::record::LogRecord;

/// A pattern a record matched: what alerts and the API show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternMatch {
    pub id: Arc<str>,
    pub severity: Severity,
    pub category: Category,
    pub suggestion: Arc<str>,
}

/// A compiled catalog. Immutable; a changed catalog is a new `Matcher`.
pub struct Matcher {
    db: Option<BlockDatabase>,
    patterns: Vec<PatternDef>,
    hits: Vec<PatternMatch>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

const FLAGS: PatternFlags = PatternFlags::CASELESS
    .union(PatternFlags::SINGLEMATCH)
    .union(PatternFlags::MULTILINE);

impl Matcher {
    /// Compiles the patterns into one database, then checks every example line. A bad regex
    /// is refused with the compiler's message and the pattern's id.
    pub fn compile(patterns: Vec<PatternDef>) -> Result<Matcher, CatalogError> {
        for p in &patterns {
            p.validate()?;
        }
        let db = if patterns.is_empty() {
            None
        } else {
            let exprs: Patterns = patterns
                .iter()
                .enumerate()
                .map(|(i, p)| Pattern {
                    expression: p.regex.clone(),
                    flags: FLAGS,
                    id: Some(i),
                    ext: Default::default(),
                    som: None,
                })
                .collect();
            Some(exprs.build().map_err(|e| compile_error(&patterns, e))?)
        };
        let hits = patterns
            .iter()
            .map(|p| PatternMatch {
                id: Arc::from(p.id.as_str()),
                severity: p.severity,
                category: p.category,
                suggestion: Arc::from(p.suggestion.as_str()),
            })
            .collect();
        let matcher = Matcher { db, patterns, hits };
        matcher.check_examples()?;
        Ok(matcher)
    }

    pub fn patterns(&self) -> &[PatternDef] {
        &self.patterns
    }

    pub fn scratch(&self) -> Option<Scratch> {
        self.db.as_ref().and_then(|db| db.alloc_scratch().ok())
    }

    /// The patterns `record` matches, in catalog order.
    pub fn scan_record(&self, scratch: &mut Option<Scratch>, record: &LogRecord) -> Vec<PatternMatch> {
        let mut found = self.scan_text(scratch, &record.message);
        if let Some(err) = record.error.as_deref().filter(|e| !e.is_empty()) {
            found.extend(self.scan_text(scratch, err));
        }
        // A failing status field is evidence in its own right, scanned as "status <n>".
        if let Some(code) = failing_status(record) {
            found.extend(self.scan_text(scratch, &format!("status {code}")));
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .filter(|&i| self.condition_holds(i, record))
            .map(|i| self.hits[i].clone())
            .collect()
    }

    /// Indexes of the patterns whose regex matches `text` (conditions not checked).
    pub fn scan_text(&self, scratch: &mut Option<Scratch>, text: &str) -> Vec<usize> {
        let (Some(db), Some(s)) = (&self.db, scratch.as_mut()) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        // Scan errors (only a foreign scratch could cause one) count as no match.
        let _ = db.scan(text, s, |id, _, _, _| {
            found.push(id as usize);
            Matching::Continue
        });
        found.sort_unstable();
        found
    }

    fn condition_holds(&self, i: usize, record: &LogRecord) -> bool {
        let Some(cond) = self.patterns[i].condition else {
            return true;
        };
        if let Some(bound) = cond.duration_ms {
            let duration = record.duration_ms.or_else(|| {
                let in_message = longest_duration_ms(&record.message);
                let in_error = record.error.as_deref().and_then(longest_duration_ms);
                [in_message, in_error].into_iter().flatten().reduce(f64::max)
            });
            if !duration.is_some_and(|d| bound.contains(d)) {
                return false;
            }
        }
        true
    }

    /// Every positive example must match its pattern (with its condition) and no negative
    /// example may.
    fn check_examples(&self) -> Result<(), CatalogError> {
        let mut scratch = self.scratch();
        for (i, p) in self.patterns.iter().enumerate() {
            for (lines, expected_match) in [(&p.examples.positive, true), (&p.examples.negative, false)] {
                for line in lines {
                    let record = LogRecord::new(0, "example", crate::record::Level::Error, line.as_str());
                    let hit = self.scan_text(&mut scratch, line).contains(&i) && self.condition_holds(i, &record);
                    if hit != expected_match {
                        return Err(CatalogError::Example {
                            id: p.id.clone(),
                            line: line.clone(),
                            expected_match,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

fn compile_error(patterns: &[PatternDef], e: hyperscan::Error) -> CatalogError {
    match e {
        hyperscan::Error::Hyperscan(HsError::CompileError(ce)) => CatalogError::Compile {
            id: ce
                .expression()
                .and_then(|i| patterns.get(i))
                .map_or_else(|| "?".to_owned(), |p| p.id.clone()),
            message: ce.message().to_owned(),
        },
        hyperscan::Error::NulByte(_) => CatalogError::Compile {
            id: patterns
                .iter()
                .find(|p| p.regex.contains('\0'))
                .map_or_else(|| "?".to_owned(), |p| p.id.clone()),
            message: "regex contains a NUL byte".into(),
        },
        other => CatalogError::Compile {
            id: "?".into(),
            message: other.to_string(),
        },
    }
}

static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d+(?:\.\d+)?)\s*(ms|msec|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\b")
        .unwrap_or_else(|e| unreachable!("{e}"))
});

/// The longest "<n> <unit>" duration in `text`, in milliseconds.
pub fn longest_duration_ms(text: &str) -> Option<f64> {
    DURATION
        .captures_iter(text)
        .filter_map(|c| {
            let n: f64 = c[1].parse().ok()?;
            let unit = c[2].to_ascii_lowercase();
            let factor = match unit.as_str() {
                "ms" | "msec" | "millisecond" | "milliseconds" => 1.0,
                "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
                _ => 1000.0,
            };
            Some(n * factor)
        })
        .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))))
}

/// The live matcher, swapped atomically when the catalog changes, and a scanner per worker
/// that follows it (a scratch belongs to one database).
#[derive(Clone)]
pub struct SharedMatcher(Arc<ArcSwap<Matcher>>);

impl SharedMatcher {
    pub fn new(m: Matcher) -> Self {
        SharedMatcher(Arc::new(ArcSwap::from_pointee(m)))
    }

    pub fn current(&self) -> Arc<Matcher> {
        self.0.load_full()
    }

    /// Compiles `patterns` and swaps them in; on error the running matcher stays.
    pub fn replace(&self, patterns: Vec<PatternDef>) -> Result<(), CatalogError> {
        self.store(Matcher::compile(patterns)?);
        Ok(())
    }

    /// Swaps in an already compiled matcher; scanners pick it up at their next record.
    pub fn store(&self, m: Matcher) {
        self.0.store(Arc::new(m));
    }

    pub fn scanner(&self) -> Scanner {
        let m = self.current();
        Scanner {
            scratch: m.scratch(),
            matcher: m,
            shared: self.clone(),
        }
    }
}

/// One worker's view of the shared matcher.
pub struct Scanner {
    shared: SharedMatcher,
    matcher: Arc<Matcher>,
    scratch: Option<Scratch>,
}

impl Scanner {
    pub fn scan(&mut self, record: &LogRecord) -> Vec<PatternMatch> {
        let now = self.shared.0.load();
        if !Arc::ptr_eq(&now, &self.matcher) {
            self.matcher = Arc::clone(&now);
            self.scratch = self.matcher.scratch();
        }
        self.matcher.scan_record(&mut self.scratch, record)
    }
}

/// The line's HTTP status field when it says the call failed (400–599).
fn failing_status(record: &LogRecord) -> Option<u64> {
    const FIELDS: [&str; 6] = [
        "status",
        "status_code",
        "statusCode",
        "http.status_code",
        "http.response.status_code",
        "response.status",
    ];
    record.extra.iter().find_map(|(name, v)| {
        if !FIELDS.contains(&name) {
            return None;
        }
        let code = v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())?;
        (400..600).contains(&code).then_some(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::catalog::Catalog;

    fn shipped() -> Matcher {
        let c = Catalog::shipped().unwrap_or_else(|e| panic!("{e}"));
        Matcher::compile(c.patterns).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_shipped_example_is_right() {
        // compile() checks every example; this names the failing one.
        let m = shipped();
        assert!(m.patterns().len() >= 30);
    }

    #[test]
    fn a_wrong_example_refuses_the_catalog() {
        let mut p = Catalog::shipped().unwrap_or_else(|e| panic!("{e}")).patterns;
        let slow = p.iter_mut().find(|p| p.id == "slow_query").expect("slow_query");
        slow.examples.negative.push("query took 5 s".into());
        let err = Matcher::compile(p).expect_err("refused");
        assert!(
            matches!(err, CatalogError::Example { ref id, expected_match: false, .. } if id == "slow_query"),
            "{err}"
        );
    }

    #[test]
    fn a_status_field_is_evidence_a_bare_number_is_not() {
        let m = shipped();
        let mut s = m.scratch();
        let ids = |r: &LogRecord, s: &mut Option<Scratch>| -> Vec<String> {
            m.scan_record(s, r).into_iter().map(|h| h.id.to_string()).collect()
        };
        let mut r = LogRecord::new(0, "api", crate::record::Level::Warn, "request finished");
        r.extra.insert("status", serde_json::json!(429));
        assert_eq!(ids(&r, &mut s), ["rate_limit_exceeded"]);
        r.extra = Default::default();
        r.extra.insert("status_code", serde_json::json!("403"));
        assert_eq!(ids(&r, &mut s), ["permission_denied"]);
        r.extra = Default::default();
        r.extra.insert("status", serde_json::json!(200));
        assert!(ids(&r, &mut s).is_empty());
        for bare in [
            "page=401",
            "processed 429 documents",
            "user 403 logged in",
            "indexed 529 chunks",
        ] {
            let r = LogRecord::new(0, "api", crate::record::Level::Info, bare);
            assert!(ids(&r, &mut s).is_empty(), "{bare}");
        }
    }

    #[test]
    fn records_carry_their_matches_from_message_and_error() {
        let m = shipped();
        let mut s = m.scratch();
        let mut r = LogRecord::new(0, "api", crate::record::Level::Error, "call failed");
        r.error = Some("dial tcp 10.0.0.5:6379: connect: connection refused".into());
        let ids: Vec<_> = m.scan_record(&mut s, &r).into_iter().map(|h| h.id).collect();
        assert_eq!(ids, [Arc::from("connection_refused")]);
        let ok = LogRecord::new(0, "api", crate::record::Level::Info, "served 200 OK in 12ms");
        assert!(m.scan_record(&mut s, &ok).is_empty());
    }

    #[test]
    fn numeric_conditions_use_parsed_values() {
        let m = shipped();
        let mut s = m.scratch();
        let mut r = LogRecord::new(0, "db", crate::record::Level::Warn, "query took a while");
        assert!(m.scan_record(&mut s, &r).is_empty(), "no duration: condition fails");
        r.duration_ms = Some(4200.0);
        assert!(m.scan_record(&mut s, &r).iter().any(|h| &*h.id == "slow_query"));
        r.duration_ms = Some(999.0);
        assert!(!m.scan_record(&mut s, &r).iter().any(|h| &*h.id == "slow_query"));
        assert_eq!(longest_duration_ms("took 1.5 s then 200ms"), Some(1500.0));
        assert_eq!(longest_duration_ms("no numbers"), None);
    }

    #[test]
    fn a_bad_regex_is_refused_and_the_old_matcher_keeps_running() {
        let shared = SharedMatcher::new(shipped());
        let mut scanner = shared.scanner();
        let mut bad = Catalog::shipped().unwrap_or_else(|e| panic!("{e}")).patterns;
        bad[3].regex = "(unclosed".into();
        let err = shared.replace(bad).expect_err("bad regex refused");
        assert!(
            matches!(&err, CatalogError::Compile { id, message } if *id == shared.current().patterns()[3].id && !message.is_empty()),
            "{err}"
        );
        let r = LogRecord::new(0, "x", crate::record::Level::Error, "HTTP 429 Too Many Requests");
        assert!(scanner.scan(&r).iter().any(|h| &*h.id == "rate_limit_exceeded"));
        // A good replacement is picked up by existing scanners.
        let only = PatternDef {
            id: "custom_teapot".into(),
            regex: "teapot".into(),
            severity: Severity::Low,
            category: Category::Data,
            suggestion: "brew".into(),
            condition: None,
            examples: Default::default(),
        };
        shared.replace(vec![only]).unwrap_or_else(|e| panic!("{e}"));
        let t = LogRecord::new(0, "x", crate::record::Level::Error, "I am a TEAPOT");
        assert_eq!(scanner.scan(&t)[0].id.as_ref(), "custom_teapot");
        assert!(scanner.scan(&r).is_empty());
    }
}
