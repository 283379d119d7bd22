//! Usage and cost: which lines are AI requests, what each costs, and the per-batch deltas
//! the usage views are built from.

pub mod billing;
mod delta;
mod prices;
pub mod series;
mod summary;

pub use delta::{ConversationDelta, NO_WORKSPACE, Operation, SourcePos, UsageBatch, UsageKey, UsageTotals};
pub use prices::{Price, PriceBook, Pricing, parse_usd_per_mtok};
pub use summary::{UsageRow, conversation_metrics, request_errors, workspace_summary};

use crate::record::LogRecord;

/// A line records one AI request when it names a model and reports token usage (or says it
/// is an AI operation, so a failed call with no tokens still counts as a request).
pub fn is_ai_request(rec: &LogRecord) -> bool {
    rec.model.is_some()
        && (rec.input_tokens.is_some()
            || rec.output_tokens.is_some()
            || rec.tokens_used.is_some()
            || rec.cost_usd.is_some()
            || rec.request_type.as_deref().is_some_and(is_ai_request_type))
}

fn is_ai_request_type(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    t.starts_with("ai_")
        || matches!(
            t.as_str(),
            "chat" | "completion" | "text_completion" | "embeddings" | "embedding" | "generate_content"
        )
}

/// Hour bucket (Unix ns) of an event time: late lines land in the hour they happened.
pub fn hour_of(ts_ns: i64) -> i64 {
    const HOUR: i64 = 3_600_000_000_000;
    ts_ns - ts_ns.rem_euclid(HOUR)
}
