//! Field aliases and the builder that turns (key, value) pairs into a `LogRecord`.
//!
//! Keys are matched after folding: ASCII lower-case with `_` and `-` removed, so
//! `correlation_id`, `correlationId`, `X-Correlation-ID` and `x_correlation_id` are one alias.
//! Nested objects arrive flattened with `.` (`usage.prompt_tokens`, `gen_ai.usage.input_tokens`).
//! When several aliases of one field are present the earliest in `ALIASES` wins; the others are
//! kept in `extra` under their canonical spelling, so a `trace_id` beside a `correlation_id` is
//! not lost.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use super::level::guess_level;
use super::time::{epoch_int_to_ns, epoch_to_ns, parse_ts_str};
use crate::record::{Labels, Level, LineFormat, LogRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Ts,
    Service,
    Level,
    Message,
    CorrelationId,
    ConversationId,
    SessionId,
    WorkspaceId,
    UserId,
    Model,
    InputTokens,
    OutputTokens,
    CachedTokens,
    TokensUsed,
    CostUsd,
    DurationMs,
    DurationS,
    RequestType,
    Success,
    Error,
    PromptHash,
}

const FIELD_COUNT: usize = 21;

impl Field {
    /// Slot shared by fields that fill one record field (`duration` and `duration_ms`).
    fn slot(self) -> usize {
        match self {
            Field::DurationS => Field::DurationMs as usize,
            f => f as usize,
        }
    }
}

/// Canonical spellings, in priority order within each field.
const ALIASES: &[(&str, Field)] = &[
    ("timestamp", Field::Ts),
    ("time", Field::Ts),
    ("@timestamp", Field::Ts),
    ("ts", Field::Ts),
    ("datetime", Field::Ts),
    ("asctime", Field::Ts),
    ("service", Field::Service),
    ("service.name", Field::Service),
    ("service_name", Field::Service),
    ("app", Field::Service),
    ("application", Field::Service),
    ("app_name", Field::Service),
    ("level", Field::Level),
    ("severity", Field::Level),
    ("levelname", Field::Level),
    ("lvl", Field::Level),
    ("log.level", Field::Level),
    ("severity_text", Field::Level),
    ("message", Field::Message),
    ("msg", Field::Message),
    ("event", Field::Message),
    ("correlation_id", Field::CorrelationId),
    ("x_correlation_id", Field::CorrelationId),
    ("trace_id", Field::CorrelationId),
    ("trace.id", Field::CorrelationId),
    ("request_id", Field::CorrelationId),
    ("x_request_id", Field::CorrelationId),
    ("conversation_id", Field::ConversationId),
    ("gen_ai.conversation.id", Field::ConversationId),
    ("thread_id", Field::ConversationId),
    ("session_id", Field::SessionId),
    ("session.id", Field::SessionId),
    ("workspace_id", Field::WorkspaceId),
    ("workspace.id", Field::WorkspaceId),
    ("workspace", Field::WorkspaceId),
    ("user_id", Field::UserId),
    ("user.id", Field::UserId),
    ("enduser.id", Field::UserId),
    ("model", Field::Model),
    ("gen_ai.response.model", Field::Model),
    ("gen_ai.request.model", Field::Model),
    ("model_name", Field::Model),
    ("input_tokens", Field::InputTokens),
    ("gen_ai.usage.input_tokens", Field::InputTokens),
    ("prompt_tokens", Field::InputTokens),
    ("usage.prompt_tokens", Field::InputTokens),
    ("usage.input_tokens", Field::InputTokens),
    ("gen_ai.usage.prompt_tokens", Field::InputTokens),
    ("output_tokens", Field::OutputTokens),
    ("gen_ai.usage.output_tokens", Field::OutputTokens),
    ("completion_tokens", Field::OutputTokens),
    ("usage.completion_tokens", Field::OutputTokens),
    ("usage.output_tokens", Field::OutputTokens),
    ("gen_ai.usage.completion_tokens", Field::OutputTokens),
    ("cached_tokens", Field::CachedTokens),
    ("usage.cached_tokens", Field::CachedTokens),
    ("usage.prompt_tokens_details.cached_tokens", Field::CachedTokens),
    ("cache_read_input_tokens", Field::CachedTokens),
    ("usage.cache_read_input_tokens", Field::CachedTokens),
    ("gen_ai.usage.cache_read_input_tokens", Field::CachedTokens),
    ("tokens_used", Field::TokensUsed),
    ("total_tokens", Field::TokensUsed),
    ("usage.total_tokens", Field::TokensUsed),
    ("gen_ai.usage.total_tokens", Field::TokensUsed),
    ("cost_usd", Field::CostUsd),
    ("cost", Field::CostUsd),
    ("usage.cost", Field::CostUsd),
    ("total_cost", Field::CostUsd),
    ("duration_ms", Field::DurationMs),
    ("latency_ms", Field::DurationMs),
    ("elapsed_ms", Field::DurationMs),
    ("response_time_ms", Field::DurationMs),
    ("took_ms", Field::DurationMs),
    ("duration", Field::DurationS),
    ("duration_s", Field::DurationS),
    ("duration_seconds", Field::DurationS),
    ("request_type", Field::RequestType),
    ("gen_ai.operation.name", Field::RequestType),
    ("success", Field::Success),
    ("error", Field::Error),
    ("error.message", Field::Error),
    ("err", Field::Error),
    ("exception", Field::Error),
    ("error_message", Field::Error),
    ("prompt_hash", Field::PromptHash),
];

/// (field, rank, canonical spelling). Rank orders aliases across the slot.
type Alias = (Field, u8, &'static str);

/// An alias's folded spelling and what it names.
type FoldedAlias = (Vec<u8>, Alias);

/// Longest folded key looked up; longer keys are no alias.
const MAX_KEY: usize = 64;

/// Folded aliases by length: a lookup compares the key with the few aliases of its length
/// (no hashing: this runs for every field of every line).
static ALIASES_BY_LEN: LazyLock<Vec<Vec<FoldedAlias>>> = LazyLock::new(|| {
    let mut per_slot = [0u8; FIELD_COUNT];
    let mut by_len: Vec<Vec<FoldedAlias>> = vec![Vec::new(); MAX_KEY + 1];
    for &(name, field) in ALIASES {
        let rank = per_slot[field.slot()];
        per_slot[field.slot()] += 1;
        let mut folded = Vec::new();
        fold_key(name, &mut folded);
        let bucket = &mut by_len[folded.len()];
        // Spellings that fold alike would shadow each other (a test keeps them unique).
        bucket.push((folded, (field, rank, name)));
    }
    by_len
});

/// Lower-cases ASCII and drops `_` / `-` into `out`, byte by byte (reused between keys:
/// this runs for every field of every line).
fn fold_key(key: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend(
        key.bytes()
            .filter(|b| *b != b'_' && *b != b'-')
            .map(|b| b.to_ascii_lowercase()),
    );
}

/// Looks up a key; `scratch` is reused between calls.
pub fn lookup(key: &str, scratch: &mut Vec<u8>) -> Option<Alias> {
    if key.len() > MAX_KEY {
        return None;
    }
    fold_key(key, scratch);
    ALIASES_BY_LEN[scratch.len()]
        .iter()
        .find(|(folded, _)| folded == scratch)
        .map(|(_, alias)| *alias)
}

/// A scalar value as decoders hand it over.
#[derive(Debug, Clone, Copy)]
pub enum Scalar<'a> {
    Str(&'a str),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar<'_> {
    fn to_json(self) -> serde_json::Value {
        match self {
            Scalar::Str(s) => serde_json::Value::String(s.to_owned()),
            Scalar::Int(i) => i.into(),
            Scalar::UInt(u) => u.into(),
            Scalar::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Scalar::Bool(b) => b.into(),
        }
    }

    /// The value as text, built straight into the record's string type (one allocation).
    fn as_text<T: for<'s> From<&'s str> + From<String>>(self) -> Option<T> {
        match self {
            Scalar::Str(s) if !s.trim().is_empty() => Some(T::from(s)),
            Scalar::Int(i) => Some(T::from(i.to_string())),
            Scalar::UInt(u) => Some(T::from(u.to_string())),
            _ => None,
        }
    }

    fn as_f64(self) -> Option<f64> {
        let v = match self {
            Scalar::Int(i) => i as f64,
            Scalar::UInt(u) => u as f64,
            Scalar::Float(f) => f,
            Scalar::Str(s) => s.trim().parse().ok()?,
            Scalar::Bool(_) => return None,
        };
        (v.is_finite() && v >= 0.0).then_some(v)
    }

    fn as_count(self) -> Option<u64> {
        match self {
            Scalar::UInt(u) => Some(u),
            Scalar::Int(i) => u64::try_from(i).ok(),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
            _ => None,
        }
    }

    fn as_bool(self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(b),
            Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "ok" => Some(true),
                "false" | "no" => Some(false),
                _ => None,
            },
            Scalar::Int(0) | Scalar::UInt(0) => Some(false),
            Scalar::Int(1) | Scalar::UInt(1) => Some(true),
            _ => None,
        }
    }
}

/// Bounds on what a line may keep beyond its normalized fields.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_line_bytes: usize,
    pub max_extra_fields: usize,
    pub max_extra_value_bytes: usize,
    /// How far past the receive time an event may be stamped (Loki's `creation_grace_period`,
    /// 10 minutes); later ones are refused so one bad clock cannot poison freshness.
    pub max_future_ns: i64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // Loki's own max_line_size default is 256 KB.
        DecodeLimits {
            max_line_bytes: 256 * 1024,
            max_extra_fields: 64,
            max_extra_value_bytes: 4096,
            max_future_ns: 600 * 1_000_000_000,
        }
    }
}

/// Accumulates one line's fields, then resolves fallbacks in `finish`.
pub struct RecordBuilder {
    rec: LogRecord,
    ranks: [u8; FIELD_COUNT],
    ts: Option<i64>,
    level: Option<Level>,
    service: Option<Arc<str>>,
    limits: DecodeLimits,
    scratch: Vec<u8>,
}

const UNSET: u8 = u8::MAX;

impl RecordBuilder {
    pub fn new(format: LineFormat, limits: DecodeLimits) -> Self {
        let mut rec = LogRecord::new(0, String::new(), Level::Info, String::new());
        rec.format = format;
        RecordBuilder {
            rec,
            ranks: [UNSET; FIELD_COUNT],
            ts: None,
            level: None,
            service: None,
            limits,
            scratch: Vec::new(),
        }
    }

    /// Offers one flattened field. Returns `false` when no normalized field took it; the
    /// caller then keeps it with `extra`.
    pub fn offer(&mut self, key: &str, value: Scalar<'_>) -> bool {
        let mut scratch = std::mem::take(&mut self.scratch);
        let found = lookup(key, &mut scratch);
        self.scratch = scratch;
        match found {
            Some((field, rank, _)) => self.offer_field(field, rank, value),
            None => false,
        }
    }

    fn offer_field(&mut self, field: Field, rank: u8, value: Scalar<'_>) -> bool {
        let slot = field.slot();
        if self.ranks[slot] != UNSET && self.ranks[slot] <= rank {
            return false;
        }
        let previous = (self.ranks[slot] != UNSET).then(|| self.current_value(field));
        if !self.apply(field, value) {
            return false;
        }
        if let Some(previous) = previous {
            self.demote(field, self.ranks[slot], previous);
        }
        self.ranks[slot] = rank;
        true
    }

    /// Sets the field from `value`; false when the value does not fit the field's type.
    fn apply(&mut self, field: Field, value: Scalar<'_>) -> bool {
        let r = &mut self.rec;
        match field {
            Field::Ts => {
                let ts = match value {
                    Scalar::Str(s) => parse_ts_str(s),
                    Scalar::Int(i) => epoch_int_to_ns(i),
                    Scalar::UInt(u) => i64::try_from(u).ok().and_then(epoch_int_to_ns),
                    Scalar::Float(f) => epoch_to_ns(f),
                    Scalar::Bool(_) => None,
                };
                set(&mut self.ts, ts)
            }
            Field::Level => {
                let level = match value {
                    Scalar::Str(s) => Level::from_name(s),
                    Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => value.as_f64().and_then(Level::from_number),
                    Scalar::Bool(_) => None,
                };
                set(&mut self.level, level)
            }
            Field::Service => set(&mut self.service, value.as_text()),
            Field::Message => match value {
                Scalar::Str(s) => {
                    r.message = s.into();
                    true
                }
                _ => false,
            },
            Field::CorrelationId => set(&mut r.correlation_id, value.as_text()),
            Field::ConversationId => set(&mut r.conversation_id, value.as_text()),
            Field::SessionId => set(&mut r.session_id, value.as_text()),
            Field::WorkspaceId => set(&mut r.workspace_id, value.as_text()),
            Field::UserId => set(&mut r.user_id, value.as_text()),
            Field::Model => set(&mut r.model, value.as_text()),
            Field::RequestType => set(&mut r.request_type, value.as_text()),
            Field::PromptHash => set(&mut r.prompt_hash, value.as_text()),
            Field::InputTokens => set(&mut r.input_tokens, value.as_count()),
            Field::OutputTokens => set(&mut r.output_tokens, value.as_count()),
            Field::CachedTokens => set(&mut r.cached_tokens, value.as_count()),
            Field::TokensUsed => set(&mut r.tokens_used, value.as_count()),
            Field::CostUsd => set(&mut r.cost_usd, value.as_f64()),
            Field::DurationMs => set(&mut r.duration_ms, value.as_f64()),
            Field::DurationS => set(&mut r.duration_ms, value.as_f64().map(|s| s * 1000.0)),
            Field::Success => set(&mut r.success, value.as_bool()),
            Field::Error => match value {
                // `"error": true` says the call failed without saying why.
                Scalar::Bool(failed) => {
                    if failed && r.success.is_none() {
                        r.success = Some(false);
                    }
                    true
                }
                _ => set(&mut r.error, value.as_text()),
            },
        }
    }

    /// Keeps the value of a field that lost to a better alias in `extra`, under the loser's
    /// canonical spelling.
    fn demote(&mut self, field: Field, rank: u8, value: serde_json::Value) {
        let loser = ALIASES
            .iter()
            .filter(|(_, f)| f.slot() == field.slot())
            .nth(rank as usize);
        if let Some(&(name, alias_field)) = loser {
            let value = match (alias_field, value.as_f64()) {
                (Field::DurationS, Some(ms)) => (ms / 1000.0).into(),
                _ => value,
            };
            self.extra(name, value);
        }
    }

    fn current_value(&self, field: Field) -> serde_json::Value {
        let r = &self.rec;
        match field {
            Field::Ts => self.ts.into(),
            Field::Level => self.level.map(|l| l.as_str()).into(),
            Field::Service => self.service.as_deref().into(),
            Field::Message => (*r.message).into(),
            Field::CorrelationId => r.correlation_id.as_deref().into(),
            Field::ConversationId => r.conversation_id.as_deref().into(),
            Field::SessionId => r.session_id.as_deref().into(),
            Field::WorkspaceId => r.workspace_id.as_deref().into(),
            Field::UserId => r.user_id.as_deref().into(),
            Field::Model => r.model.as_deref().into(),
            Field::RequestType => r.request_type.as_deref().into(),
            Field::PromptHash => r.prompt_hash.as_deref().into(),
            Field::InputTokens => r.input_tokens.into(),
            Field::OutputTokens => r.output_tokens.into(),
            Field::CachedTokens => r.cached_tokens.into(),
            Field::TokensUsed => r.tokens_used.into(),
            Field::CostUsd => r.cost_usd.into(),
            Field::DurationMs | Field::DurationS => r.duration_ms.into(),
            Field::Success => r.success.into(),
            Field::Error => r.error.as_deref().into(),
        }
    }

    /// Keeps a field with no normalized home, within the limits.
    pub fn extra(&mut self, key: &str, value: serde_json::Value) {
        let too_long = match &value {
            serde_json::Value::String(s) => s.len() > self.limits.max_extra_value_bytes,
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                value.to_string().len() > self.limits.max_extra_value_bytes
            }
            _ => false,
        };
        if too_long || self.rec.extra.len() >= self.limits.max_extra_fields || key.len() > 256 {
            self.rec.dropped_fields += 1;
            return;
        }
        self.rec.extra.insert(key, value);
    }

    /// Offers a scalar, keeping it in `extra` when no field takes it.
    pub fn offer_or_keep(&mut self, key: &str, value: Scalar<'_>) {
        if !self.offer(key, value) {
            self.extra(key, value.to_json());
        }
    }

    /// True when a field gave the record its level.
    pub fn has_level(&self) -> bool {
        self.level.is_some()
    }

    pub fn set_message(&mut self, message: String) {
        self.rec.message = message.into_boxed_str();
    }

    /// Resolves defaults: the entry's timestamp, service and level from labels and metadata,
    /// a level guessed from the text, and total tokens from their parts.
    pub fn finish(mut self, entry_ts_ns: i64, labels: &Labels, metadata: &[(String, String)]) -> LogRecord {
        // Structured metadata is per line, so it may fill what the line's body left empty.
        for (k, v) in metadata {
            if let Some((field, rank, _)) = lookup(k, &mut self.scratch)
                && is_identity(field)
            {
                self.offer_field(field, rank.saturating_add(100), Scalar::Str(v));
            }
            self.rec.metadata.get_or_insert_default().insert(k.clone(), v.clone());
        }
        for (k, v) in labels.iter() {
            if let Some((field, rank, _)) = lookup(k, &mut self.scratch)
                && is_identity(field)
            {
                self.offer_field(field, rank.saturating_add(200), Scalar::Str(v));
            }
        }
        let mut rec = self.rec;
        rec.ts_ns = self.ts.unwrap_or(entry_ts_ns);
        rec.service = self
            .service
            .or_else(|| first_label(labels, &["service_name", "service", "app", "job", "container"]).map(Into::into))
            .unwrap_or_else(|| "unknown".into());
        if rec.message.is_empty()
            && let Some(err) = &rec.error
        {
            rec.message = err.clone();
        }
        rec.level = self
            .level
            .or_else(|| {
                first_meta(metadata, &["level", "detected_level", "severity"])
                    .or_else(|| first_label(labels, &["level", "detected_level", "severity"]))
                    .and_then(|l| Level::from_name(&l))
            })
            .unwrap_or_else(|| {
                if rec.error.is_some() || rec.success == Some(false) {
                    Level::Error
                } else {
                    guess_level(&rec.message)
                }
            });
        if rec.tokens_used.is_none() && (rec.input_tokens.is_some() || rec.output_tokens.is_some()) {
            rec.tokens_used = Some(
                rec.input_tokens
                    .unwrap_or(0)
                    .saturating_add(rec.output_tokens.unwrap_or(0)),
            );
        }
        rec.labels = Arc::clone(labels);
        rec
    }
}

/// Fields a stream label or structured metadata may supply: identifiers, not content.
fn is_identity(field: Field) -> bool {
    matches!(
        field,
        Field::CorrelationId
            | Field::ConversationId
            | Field::SessionId
            | Field::WorkspaceId
            | Field::UserId
            | Field::Model
    )
}

fn first_label(labels: &Labels, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| labels.get(*n).filter(|v| !v.is_empty()).cloned())
}

fn first_meta(metadata: &[(String, String)], names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        metadata
            .iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(_, v)| v.clone())
    })
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

/// Collects labels into the shared form; handy for tests and callers with plain pairs.
pub fn labels_from<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    Arc::new(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_aliases_match_every_spelling() {
        let mut s = Vec::new();
        for key in ["correlation_id", "correlationId", "X-Correlation-ID", "CORRELATION-ID"] {
            assert_eq!(lookup(key, &mut s).map(|f| f.0), Some(Field::CorrelationId), "{key}");
        }
        assert_eq!(
            lookup("gen_ai.usage.input_tokens", &mut s).map(|f| f.0),
            Some(Field::InputTokens)
        );
        assert_eq!(lookup("nope", &mut s), None);
    }

    #[test]
    fn aliases_are_unique_after_folding() {
        assert_eq!(ALIASES_BY_LEN.iter().map(Vec::len).sum::<usize>(), ALIASES.len());
    }

    #[test]
    fn better_alias_wins_and_loser_is_kept() {
        let mut b = RecordBuilder::new(LineFormat::Json, DecodeLimits::default());
        assert!(b.offer("trace_id", Scalar::Str("t-1")));
        assert!(b.offer("correlation_id", Scalar::Str("c-1")));
        assert!(!b.offer("request_id", Scalar::Str("r-1")));
        let rec = b.finish(5, &labels_from([]), &[]);
        assert_eq!(rec.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(rec.extra.get("trace_id"), Some(&serde_json::json!("t-1")));
    }

    #[test]
    fn wrong_typed_values_are_not_taken() {
        let mut b = RecordBuilder::new(LineFormat::Json, DecodeLimits::default());
        assert!(!b.offer("input_tokens", Scalar::Str("many")));
        assert!(!b.offer("level", Scalar::Str("loud")));
        assert!(b.offer("duration", Scalar::Float(1.5)));
        let rec = b.finish(5, &labels_from([]), &[]);
        assert_eq!(rec.duration_ms, Some(1500.0));
        assert_eq!(rec.input_tokens, None);
    }

    #[test]
    fn labels_and_metadata_fill_gaps() {
        let labels = labels_from([("job", "api-job"), ("level", "warn")]);
        let meta = vec![("trace_id".to_owned(), "abc".to_owned())];
        let b = RecordBuilder::new(LineFormat::Plain, DecodeLimits::default());
        let rec = b.finish(42, &labels, &meta);
        assert_eq!(rec.service.as_ref(), "api-job");
        assert_eq!(rec.level, Level::Warn);
        assert_eq!(rec.correlation_id.as_deref(), Some("abc"));
        assert_eq!(rec.ts_ns, 42);
    }

    #[test]
    fn extras_are_bounded() {
        let limits = DecodeLimits {
            max_extra_fields: 2,
            max_extra_value_bytes: 4,
            ..Default::default()
        };
        let mut b = RecordBuilder::new(LineFormat::Json, limits);
        b.offer_or_keep("a", Scalar::Int(1));
        b.offer_or_keep("b", Scalar::Str("too long"));
        b.offer_or_keep("c", Scalar::Int(3));
        b.offer_or_keep("d", Scalar::Int(4));
        let rec = b.finish(1, &labels_from([]), &[]);
        assert_eq!(rec.extra.len(), 2);
        assert_eq!(rec.dropped_fields, 2);
    }
}
