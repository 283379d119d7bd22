//! A workload whose usage totals are known: for exactly-once and billing checks.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::normalize::time::format_rfc3339;

/// One AI request the workload contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRequest {
    pub workspace: String,
    pub model: &'static str,
    pub input: i64,
    pub output: i64,
    pub cached: i64,
}

pub struct UsageWorkload {
    /// JSON lines (OpenAI-style `usage` objects), health-check noise, and whitespace-only
    /// lines a consumer must dead-letter.
    pub lines: Vec<String>,
    pub requests: Vec<UsageRequest>,
    pub undecodable: usize,
}

/// `gpt-4o` and `gpt-4o-mini` are priced by the shipped price file; `mystery-model` is not.
pub const WORKLOAD_MODELS: [&str; 3] = ["gpt-4o", "gpt-4o-mini", "mystery-model"];

/// `n` requests over four workspaces and three models, up to five hours old (late lines).
pub fn usage_workload(n: usize, seed: u64, now_ns: i64) -> UsageWorkload {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut lines = Vec::with_capacity(n + n / 3 + 8);
    let mut requests = Vec::with_capacity(n);
    for i in 0..n {
        let workspace = format!("ws-{}", rng.random_range(0..4));
        let model = WORKLOAD_MODELS[rng.random_range(0..WORKLOAD_MODELS.len())];
        let input = rng.random_range(1..5000i64);
        let output = rng.random_range(0..800i64);
        let cached = if rng.random_bool(0.25) {
            rng.random_range(0..input)
        } else {
            0
        };
        let ts = now_ns - rng.random_range(0..300i64) * 60_000_000_000;
        lines.push(
            json!({"timestamp": format_rfc3339(ts), "service": "gateway", "level": "info", "message": "AI operation completed",
                   "correlation_id": format!("req-{i}"), "workspace_id": workspace, "model": model, "request_type": "ai_completion",
                   "usage": {"prompt_tokens": input, "completion_tokens": output, "prompt_tokens_details": {"cached_tokens": cached}},
                   "duration_ms": rng.random_range(0..3000)})
            .to_string(),
        );
        if rng.random_bool(0.33) {
            lines.push(json!({"service": "api", "level": "info", "message": "GET /health 200", "correlation_id": format!("req-{i}")}).to_string());
        }
        requests.push(UsageRequest {
            workspace,
            model,
            input,
            output,
            cached,
        });
    }
    let undecodable = 7;
    lines.extend(std::iter::repeat_n("   ".to_owned(), undecodable));
    UsageWorkload {
        lines,
        requests,
        undecodable,
    }
}
