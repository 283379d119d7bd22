//! Rules that label a record for query modes: audit events, slowness.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::RegexSet;
use serde::Serialize;

use crate::record::LogRecord;

/// What kind of change an audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditCategory {
    Auth,
    Admin,
    Configuration,
}

impl AuditCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditCategory::Auth => "auth",
            AuditCategory::Admin => "admin",
            AuditCategory::Configuration => "configuration",
        }
    }
}

/// The audit rules' vocabularies, matched together in one pass over a text (`RegexSet`).
const AUTH: usize = 0;
const ADMIN_EVENT: usize = 1;
const ADMIN_NOUN: usize = 2;
const CONFIG_NOUN: usize = 3;
const CHANGE_VERB: usize = 4;

static AUDIT_WORDS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        // AUTH
        r"(?i)\b(log(ged)?[ _-]?in|log(ged)?[ _-]?out|sign(ed)?[ _-]?(in|out)|authenticat\w*|unauthori[sz]ed|password|mfa|2fa|api[ _-]?key|access[ _-]token|invalid (credentials|token)|token (expired|revoked|rotated|created)|session (expired|revoked))\b",
        // ADMIN_EVENT
        r"(?i)\b(granted|revoked|(user|member|workspace|tenant|team) (created|deleted|invited|removed|suspended|renamed|added))\b",
        // ADMIN_NOUN
        r"(?i)\b(admin\w*|roles?|permissions?|privileges?)\b",
        // CONFIG_NOUN
        r"(?i)\b(config(uration)?s?|settings?|feature[ _-]flags?|env(ironment)?[ _-]var\w*|system[ _-]prompt|model (provider|preference)|quota|limits?)\b",
        // CHANGE_VERB
        r"(?i)\b(chang\w*|updat\w*|modif\w*|set|enabled?|disabled?|reloaded|saved|deleted|created|rotated|switched|reset)\b",
    ])
    .expect("static regexes")
});

/// The audit category of a line, or `None` when it records no configuration, auth or admin
/// change. `request_type` is checked before the message text.
pub fn audit_category(rec: &LogRecord) -> Option<AuditCategory> {
    let texts = [rec.request_type.as_deref().unwrap_or(""), rec.message.as_ref()];
    for text in texts {
        if text.is_empty() {
            continue;
        }
        // `config_update` reads as "config update": `_` is a word character to `\b`.
        let text = if text.contains('_') {
            Cow::Owned(text.replace('_', " "))
        } else {
            Cow::Borrowed(text)
        };
        let m = AUDIT_WORDS.matches(&text);
        if m.matched(AUTH) {
            return Some(AuditCategory::Auth);
        }
        let changes = m.matched(CHANGE_VERB);
        if m.matched(ADMIN_EVENT) || (changes && m.matched(ADMIN_NOUN)) {
            return Some(AuditCategory::Admin);
        }
        if changes && m.matched(CONFIG_NOUN) {
            return Some(AuditCategory::Configuration);
        }
    }
    None
}

/// Operations at or above this duration are called slow in answers and highlights.
pub const SLOW_MS: f64 = 3000.0;

/// Token counts at or above this are called large in highlights.
pub const LARGE_TOKENS: u64 = 8000;

/// Why a line deserves an agent's attention, as short tags.
pub fn highlights(rec: &LogRecord) -> Vec<String> {
    let mut tags = Vec::new();
    if rec.level >= crate::record::Level::Error {
        tags.push(format!("level:{}", rec.level));
    }
    if rec.success == Some(false) {
        tags.push("failed".to_owned());
    }
    if let Some(err) = &rec.error {
        tags.push(format!("error:{}", crate::normalize::level::prefix(err, 120)));
    }
    if let Some(ms) = rec.duration_ms.filter(|ms| *ms >= SLOW_MS) {
        tags.push(format!("slow:{ms:.0}ms"));
    }
    if let Some(tokens) = rec.tokens_used.filter(|t| *t >= LARGE_TOKENS) {
        tags.push(format!("tokens:{tokens}"));
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Level;

    fn rec(message: &str) -> LogRecord {
        LogRecord::new(1, "admin-ui", Level::Info, message)
    }

    #[test]
    fn audit_categories() {
        assert_eq!(audit_category(&rec("User alice logged in")), Some(AuditCategory::Auth));
        assert_eq!(
            audit_category(&rec("API key created for workspace w1")),
            Some(AuditCategory::Auth)
        );
        assert_eq!(
            audit_category(&rec("Role changed to admin for bob")),
            Some(AuditCategory::Admin)
        );
        assert_eq!(
            audit_category(&rec("Workspace settings updated: temperature=0.2")),
            Some(AuditCategory::Configuration)
        );
        assert_eq!(
            audit_category(&rec("Loaded settings from disk")),
            None,
            "no change verb"
        );
        assert_eq!(audit_category(&rec("GET /api/chat 200")), None);
        assert_eq!(audit_category(&rec("Admin dashboard rendered")), None);
        let mut typed = rec("done");
        typed.request_type = Some("config_update".into());
        assert_eq!(audit_category(&typed), Some(AuditCategory::Configuration));
    }

    #[test]
    fn highlight_tags() {
        let mut r = rec("x");
        r.level = Level::Error;
        r.duration_ms = Some(4500.0);
        r.tokens_used = Some(9000);
        assert_eq!(highlights(&r), vec!["level:error", "slow:4500ms", "tokens:9000"]);
        assert!(highlights(&rec("fine")).is_empty());
    }
}
