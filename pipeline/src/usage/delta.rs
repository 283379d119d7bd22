//! The deltas one batch of lines adds to the usage views. Sums only, so batches from any
//! number of consumers, in any order, add up to the same totals.

use rustc_hash::FxHashMap as HashMap;

use super::prices::{PriceBook, tokens};
use super::{hour_of, is_ai_request};
use crate::enrich::Enriched;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey {
    pub workspace_id: String,
    pub model: String,
    /// Hour bucket of the event time, Unix ns.
    pub hour_ns: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageTotals {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub total_tokens: i64,
    pub cost_nanousd: i64,
    pub unpriced_requests: i64,
    pub errors: i64,
    pub duration_ms_sum: f64,
    pub timed_requests: i64,
}

/// Where a line came from: the key of its `ai_operations` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One AI request, as its `ai_operations` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub ts_ns: i64,
    pub source: SourcePos,
    pub workspace_id: String,
    pub model: String,
    pub service: String,
    pub request_type: Option<String>,
    pub correlation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub user_id: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub total_tokens: i64,
    pub cost_nanousd: i64,
    pub priced: bool,
    pub price_version: Option<String>,
    pub success: Option<bool>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
    pub prompt_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationDelta {
    pub workspace_id: Option<String>,
    pub user_id: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub lines: i64,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub total_tokens: i64,
    pub cost_nanousd: i64,
    pub duration_ms_sum: f64,
    pub timed_requests: i64,
    pub models: HashMap<String, i64>,
    pub prompt_hashes: Vec<String>,
}

/// Prompt hashes kept per conversation and batch.
const MAX_HASHES: usize = 50;

/// What a workspace is called when a request names none.
pub const NO_WORKSPACE: &str = "(none)";

#[derive(Debug, Default)]
pub struct UsageBatch {
    pub usage: HashMap<UsageKey, UsageTotals>,
    pub operations: Vec<Operation>,
    pub conversations: HashMap<String, ConversationDelta>,
    pub lines: usize,
}

impl UsageBatch {
    /// Adds one line. Every line counts toward its conversation; AI requests also toward
    /// usage and operations.
    pub fn add(&mut self, e: &Enriched, book: &PriceBook, source: SourcePos) {
        self.lines += 1;
        let rec = &e.record;
        let failed = rec.is_failure();
        let request = is_ai_request(rec);
        let mut cost = 0;
        if request {
            let pricing = book.price(rec);
            cost = pricing.cost_nanousd;
            let (input, output, cached) = tokens(rec);
            let total = rec
                .tokens_used
                .map_or(input + output, |t| i64::try_from(t).unwrap_or(i64::MAX));
            let workspace = rec.workspace_id.as_deref().unwrap_or(NO_WORKSPACE).to_owned();
            let model = rec.model.as_deref().unwrap_or_default().to_owned();
            let key = UsageKey {
                workspace_id: workspace.clone(),
                model: model.clone(),
                hour_ns: hour_of(rec.ts_ns),
            };
            let u = self.usage.entry(key).or_default();
            u.requests += 1;
            u.input_tokens += input;
            u.output_tokens += output;
            u.cached_tokens += cached;
            u.total_tokens += total;
            u.cost_nanousd += pricing.cost_nanousd;
            u.unpriced_requests += i64::from(!pricing.priced);
            u.errors += i64::from(failed);
            if let Some(d) = rec.duration_ms {
                u.duration_ms_sum += d;
                u.timed_requests += 1;
            }
            self.operations.push(Operation {
                ts_ns: rec.ts_ns,
                source,
                workspace_id: workspace,
                model,
                service: rec.service.to_string(),
                request_type: rec.request_type.as_deref().map(str::to_owned),
                correlation_id: rec.correlation_id.as_deref().map(str::to_owned),
                conversation_id: rec.conversation_id.as_deref().map(str::to_owned),
                user_id: rec.user_id.as_deref().map(str::to_owned),
                input_tokens: input,
                output_tokens: output,
                cached_tokens: cached,
                total_tokens: total,
                cost_nanousd: pricing.cost_nanousd,
                priced: pricing.priced,
                price_version: pricing.version,
                success: rec.success,
                duration_ms: rec.duration_ms,
                error: rec.error.as_deref().map(str::to_owned),
                prompt_hash: rec.prompt_hash.as_deref().map(str::to_owned),
            });
        }
        if let Some(conv) = &rec.conversation_id {
            let c = self
                .conversations
                .entry(conv.to_string())
                .or_insert_with(|| ConversationDelta {
                    first_seen_ns: rec.ts_ns,
                    last_seen_ns: rec.ts_ns,
                    ..Default::default()
                });
            c.first_seen_ns = c.first_seen_ns.min(rec.ts_ns);
            c.last_seen_ns = c.last_seen_ns.max(rec.ts_ns);
            c.workspace_id = c
                .workspace_id
                .take()
                .or_else(|| rec.workspace_id.as_deref().map(str::to_owned));
            c.user_id = c.user_id.take().or_else(|| rec.user_id.as_deref().map(str::to_owned));
            c.lines += 1;
            c.errors += i64::from(failed);
            if request {
                let (input, output, _) = tokens(rec);
                c.requests += 1;
                c.input_tokens += input;
                c.output_tokens += output;
                c.total_tokens += rec
                    .tokens_used
                    .map_or(input + output, |t| i64::try_from(t).unwrap_or(i64::MAX));
                c.cost_nanousd += cost;
                if let Some(m) = &rec.model {
                    *c.models.entry(m.to_string()).or_default() += 1;
                }
                if let Some(d) = rec.duration_ms {
                    c.duration_ms_sum += d;
                    c.timed_requests += 1;
                }
            }
            if let Some(h) = &rec.prompt_hash
                && c.prompt_hashes.len() < MAX_HASHES
                && !c.prompt_hashes.iter().any(|p| **p == **h)
            {
                c.prompt_hashes.push(h.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Level, LogRecord};

    fn pos(offset: i64) -> SourcePos {
        SourcePos {
            topic: "t".into(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn batches_sum_by_workspace_model_and_event_hour() {
        let book = PriceBook::shipped();
        let hour = 1_793_001_600_000_000_000; // an hour boundary
        let line = |ts: i64, ws: &str, input: u64, output: u64, conv: Option<&str>| {
            let mut r = LogRecord::new(ts, "gw", Level::Info, "done");
            r.model = Some("gpt-4o".into());
            r.workspace_id = Some(ws.into());
            r.input_tokens = Some(input);
            r.output_tokens = Some(output);
            r.conversation_id = conv.map(str::to_owned).map(Into::into);
            r.duration_ms = Some(100.0);
            Enriched::new(r)
        };
        let mut b = UsageBatch::default();
        b.add(&line(hour + 1, "w1", 100, 10, Some("c1")), &book, pos(0));
        b.add(&line(hour + 2, "w1", 50, 5, Some("c1")), &book, pos(1));
        b.add(&line(hour - 1, "w1", 1, 1, None), &book, pos(2)); // late line: previous hour
        b.add(&line(hour + 3, "w2", 7, 0, None), &book, pos(3));
        let mut plain = LogRecord::new(hour, "api", Level::Error, "boom");
        plain.conversation_id = Some("c1".into());
        b.add(&Enriched::new(plain), &book, pos(4));

        assert_eq!(b.operations.len(), 4);
        let w1 = &b.usage[&UsageKey {
            workspace_id: "w1".into(),
            model: "gpt-4o".into(),
            hour_ns: hour,
        }];
        assert_eq!(
            (w1.requests, w1.input_tokens, w1.output_tokens, w1.total_tokens),
            (2, 150, 15, 165)
        );
        assert_eq!(w1.cost_nanousd, (150 * 2_500 + 15 * 10_000) as i64);
        let late = &b.usage[&UsageKey {
            workspace_id: "w1".into(),
            model: "gpt-4o".into(),
            hour_ns: hour - 3_600_000_000_000,
        }];
        assert_eq!(late.requests, 1);
        let c1 = &b.conversations["c1"];
        assert_eq!((c1.lines, c1.requests, c1.errors, c1.total_tokens), (3, 2, 1, 165));
        assert_eq!(c1.models["gpt-4o"], 2);
        assert_eq!(b.lines, 5);
    }
}
