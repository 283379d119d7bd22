//! Secrets and personal data in line text, masked before anything stores the line (issue 17;
//! Vector's `redact` is the model). A mask keeps the kind and a short stable hash of the value
//! (`<email:3f2a>`), so an agent can still tell two users apart without seeing either.
//!
//! Rules are shapes every system writes, not one data set's: emails, bearer and JWT tokens,
//! provider keys (OpenAI, Anthropic, AWS, GitHub), card numbers (Luhn-checked, so order ids
//! stay), IBANs (mod-97-checked), international and US phone numbers; IPv4 optionally. A mask
//! only uses `[A-Za-z0-9<>:_-]`, so masking a JSON line's text keeps it valid JSON.

use std::borrow::Cow;
use std::hash::Hasher;

use regex::{Regex, RegexSet};

/// The shipped rules, in the order they apply (most specific first).
pub const RULES: [&str; 10] = [
    "jwt",
    "bearer",
    "anthropic_key",
    "openai_key",
    "aws_key",
    "github_token",
    "email",
    "card",
    "iban",
    "phone",
];

/// Optional rules, off unless enabled: addresses are often what an operator needs to see.
pub const OPTIONAL_RULES: [&str; 1] = ["ipv4"];

fn pattern(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "jwt" => r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}",
        // The scheme word stays; the credential after it is masked.
        "bearer" => r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})",
        "anthropic_key" => r"\bsk-ant-[A-Za-z0-9_-]{16,}",
        "openai_key" => r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}",
        "aws_key" => r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        "github_token" => r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})",
        "email" => r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        // Issuer digits 2-6; 13-16 digits written whole, or in the printed groups (4-4-4-4,
        // Amex 4-6-5). Epoch timestamps in ms, µs and ns start with 1 (until 2033) or are
        // longer, and would pass Luhn one time in ten.
        "card" => r"\b(?:[2-6]\d{12,15}|[2-6]\d{3}(?:[ -]\d{4}){3}|3[47]\d{2}[ -]\d{6}[ -]\d{5})\b",
        "iban" => r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
        "phone" => r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}|\(\d{3}\) ?\d{3}-\d{4})\b",
        "ipv4" => r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b",
        _ => return None,
    })
}

struct Rule {
    name: String,
    re: Regex,
    /// A check the shape alone cannot make (Luhn, mod 97).
    valid: fn(&str) -> bool,
}

/// A compiled rule set. Immutable; counts are the caller's, one per rule in `names()` order.
pub struct Redactor {
    rules: Vec<Rule>,
    any: RegexSet,
}

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("unknown masking rule `{0}`")]
    UnknownRule(String),
    #[error("masking rule `{name}`: {error}")]
    BadRegex { name: String, error: String },
}

impl Redactor {
    /// The shipped rules minus `disabled`, plus `optional` ones enabled, plus custom
    /// `(name, regex)` rules.
    pub fn new(disabled: &[String], enabled: &[String], custom: &[(String, String)]) -> Result<Self, RedactError> {
        for name in disabled.iter().chain(enabled) {
            if pattern(name).is_none() {
                return Err(RedactError::UnknownRule(name.clone()));
            }
        }
        let mut rules = Vec::new();
        let wanted = RULES
            .iter()
            .filter(|r| !disabled.iter().any(|d| d == *r))
            .chain(OPTIONAL_RULES.iter().filter(|r| enabled.iter().any(|e| e == *r)));
        for &name in wanted {
            // ASCII classes and word boundaries: secrets are ASCII, and the Unicode forms make
            // the regex engine's automata larger.
            let ascii = format!("(?-u){}", pattern(name).unwrap_or_default());
            let re = Regex::new(&ascii).map_err(|e| RedactError::BadRegex {
                name: name.to_owned(),
                error: e.to_string(),
            })?;
            let valid: fn(&str) -> bool = match name {
                "card" => luhn,
                "iban" => iban_checksum,
                _ => |_| true,
            };
            rules.push(Rule {
                name: name.to_owned(),
                re,
                valid,
            });
        }
        for (name, regex) in custom {
            let re = Regex::new(regex).map_err(|e| RedactError::BadRegex {
                name: name.clone(),
                error: e.to_string(),
            })?;
            rules.push(Rule {
                name: name.clone(),
                re,
                valid: |_| true,
            });
        }
        let any = RegexSet::new(rules.iter().map(|r| r.re.as_str())).map_err(|e| RedactError::BadRegex {
            name: "set".into(),
            error: e.to_string(),
        })?;
        Ok(Redactor { rules, any })
    }

    /// The shipped default rules.
    pub fn shipped() -> Self {
        Redactor::new(&[], &[], &[]).expect("the shipped masking rules compile")
    }

    /// Rule names, in the order `mask` counts them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// `text` with every secret masked; borrowed when nothing matched (the common case,
    /// decided by one pass of the rule set). `counts[i]` grows by rule `i`'s masks.
    pub fn mask<'a>(&self, text: &'a str, counts: &mut [u64]) -> Cow<'a, str> {
        if !self.any.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_owned();
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.re.is_match(&out) {
                continue;
            }
            let mut masked = 0u64;
            let replaced = rule.re.replace_all(&out, |caps: &regex::Captures<'_>| {
                let whole = caps.get(0).map_or("", |m| m.as_str());
                // A rule with a group masks only the group (`Bearer <bearer:..>`).
                let secret = caps.get(1).map_or(whole, |m| m.as_str());
                if !(rule.valid)(secret) || secret.starts_with('<') {
                    return whole.to_owned();
                }
                masked += 1;
                whole.replacen(secret, &mask_of(&rule.name, secret), 1)
            });
            if masked > 0 {
                out = replaced.into_owned();
                if let Some(c) = counts.get_mut(i) {
                    *c += masked;
                }
            }
        }
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }
}

impl Redactor {
    /// Masks every line, metadata value and label value of a push, in place, before anything
    /// stores it. Label names and metadata keys are the shipper's schema and stay.
    pub fn mask_batch(&self, batch: &mut crate::loki::PushBatch, counts: &mut [u64]) {
        for stream in &mut batch.streams {
            for entry in &mut stream.entries {
                self.mask_in_place(&mut entry.line, counts);
                for (_, value) in &mut entry.metadata {
                    self.mask_in_place(value, counts);
                }
            }
            let masked: Vec<(String, String)> = stream
                .labels
                .iter()
                .filter_map(|(k, v)| match self.mask(v, counts) {
                    Cow::Owned(m) => Some((k.to_owned(), m)),
                    Cow::Borrowed(_) => None,
                })
                .collect();
            if !masked.is_empty() {
                let labels = std::sync::Arc::make_mut(&mut stream.labels);
                for (k, v) in masked {
                    labels.insert(k, v);
                }
            }
        }
    }

    /// Masks `text` in place; no copy when nothing matched.
    pub fn mask_in_place(&self, text: &mut String, counts: &mut [u64]) {
        if let Cow::Owned(masked) = self.mask(text, counts) {
            *text = masked;
        }
    }
}

/// `<kind:hhhh>`: 16 bits of a stable hash of the value.
fn mask_of(kind: &str, secret: &str) -> String {
    let mut h = rustc_hash::FxHasher::default();
    h.write(secret.as_bytes());
    format!("<{kind}:{:04x}>", (h.finish() >> 48) as u16)
}

fn luhn(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=16).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_checksum(candidate: &str) -> bool {
    let s: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    let rearranged = s[4..].chars().chain(s[..4].chars());
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = match c.to_digit(36) {
            Some(v) => v as u64,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests;
