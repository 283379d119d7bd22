//! Tenancy and data protection settings: key roles and scopes, rate limits, and masking.

use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: queries, pattern catalog changes, dead letters of every workspace, pushes.
    /// Keys configured before roles existed had this much access, so it stays the default.
    #[default]
    Admin,
    /// Queries, within the key's workspaces.
    Reader,
    /// Pushes only.
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reader" => Some(Role::Reader),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }
}

/// Requests per minute for each route class; a key's own entry overrides the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLimits {
    pub query: Option<u32>,
    pub export: Option<u32>,
    pub push: Option<u32>,
    pub stream: Option<u32>,
}

/// `[rate_limits]`: a token bucket per key and route class, refilled evenly over the minute,
/// holding at most `burst_s` seconds' worth of requests. 0 turns a class's limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Queries (every read route, MCP tool calls included) per key per minute.
    pub query_per_minute: u32,
    /// Exports per key per minute.
    pub export_per_minute: u32,
    /// Push requests per key per minute (a Promtail batch is one request).
    pub push_per_minute: u32,
    /// Stream connections and stream client messages per key per minute.
    pub stream_per_minute: u32,
    /// The bucket's size in seconds of the rate: how long a burst may run at full speed.
    pub burst_s: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            query_per_minute: 600,
            export_per_minute: 30,
            push_per_minute: 6000,
            stream_per_minute: 120,
            burst_s: 10,
        }
    }
}

/// `[masking]`: secrets and personal data masked in pushed lines before anything stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingConfig {
    /// On by default; off only where lines are known to be clean and every cycle counts.
    pub enabled: bool,
    /// Shipped rules to leave out (`email`, `card`, ...).
    pub disable: Vec<String>,
    /// Optional rules to turn on (`ipv4`).
    pub enable: Vec<String>,
    /// Extra rules: a name (`[a-z0-9_]+`, shown in the mask) and a regex.
    pub custom: Vec<CustomMask>,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        MaskingConfig {
            enabled: true,
            disable: Vec::new(),
            enable: Vec::new(),
            custom: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMask {
    pub name: String,
    pub regex: String,
}

impl MaskingConfig {
    /// The compiled rules; `None` when masking is off.
    pub fn redactor(&self) -> Result<Option<ailogs_pipeline::redact::Redactor>, String> {
        if !self.enabled {
            return Ok(None);
        }
        for c in &self.custom {
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!("masking.custom: the name {:?} must be [a-z0-9_]+", c.name));
            }
        }
        let custom: Vec<(String, String)> = self.custom.iter().map(|c| (c.name.clone(), c.regex.clone())).collect();
        ailogs_pipeline::redact::Redactor::new(&self.disable, &self.enable, &custom)
            .map(Some)
            .map_err(|e| format!("masking: {e}"))
    }
}
