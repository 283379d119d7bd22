//! Export rows: which columns a line has (its record and its enrichments), chosen by name,
//! and how one row is written as a JSON object or a CSV record (RFC 4180, by the `csv`
//! crate). The IO side streams them; this side only turns one line into bytes.

use std::io::Write;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::enrich::Enriched;
use crate::normalize::time::format_rfc3339;
use crate::query::ParamError;
use crate::templates::template_key;
use crate::usage::{PriceBook, is_ai_request};

/// One exportable field of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Ts,
    TsNs,
    Service,
    Level,
    Message,
    Error,
    CorrelationId,
    ConversationId,
    SessionId,
    WorkspaceId,
    UserId,
    RequestType,
    Model,
    InputTokens,
    OutputTokens,
    CachedTokens,
    TokensUsed,
    CostUsd,
    DurationMs,
    Success,
    PromptHash,
    Patterns,
    PatternCategories,
    TemplateId,
    Labels,
    Extra,
}

impl Column {
    /// Every column, in the default order.
    pub const ALL: [Column; 26] = [
        Column::Ts,
        Column::TsNs,
        Column::Service,
        Column::Level,
        Column::Message,
        Column::Error,
        Column::CorrelationId,
        Column::ConversationId,
        Column::SessionId,
        Column::WorkspaceId,
        Column::UserId,
        Column::RequestType,
        Column::Model,
        Column::InputTokens,
        Column::OutputTokens,
        Column::CachedTokens,
        Column::TokensUsed,
        Column::CostUsd,
        Column::DurationMs,
        Column::Success,
        Column::PromptHash,
        Column::Patterns,
        Column::PatternCategories,
        Column::TemplateId,
        Column::Labels,
        Column::Extra,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Ts => "ts",
            Column::TsNs => "ts_ns",
            Column::Service => "service",
            Column::Level => "level",
            Column::Message => "message",
            Column::Error => "error",
            Column::CorrelationId => "correlation_id",
            Column::ConversationId => "conversation_id",
            Column::SessionId => "session_id",
            Column::WorkspaceId => "workspace_id",
            Column::UserId => "user_id",
            Column::RequestType => "request_type",
            Column::Model => "model",
            Column::InputTokens => "input_tokens",
            Column::OutputTokens => "output_tokens",
            Column::CachedTokens => "cached_tokens",
            Column::TokensUsed => "tokens_used",
            Column::CostUsd => "cost_usd",
            Column::DurationMs => "duration_ms",
            Column::Success => "success",
            Column::PromptHash => "prompt_hash",
            Column::Patterns => "patterns",
            Column::PatternCategories => "pattern_categories",
            Column::TemplateId => "template_id",
            Column::Labels => "labels",
            Column::Extra => "extra",
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The `fields` parameter: column names in the order wanted; none given means all.
    pub fn parse_list(names: &[String]) -> Result<Vec<Column>, ParamError> {
        if names.is_empty() {
            return Ok(Column::ALL.to_vec());
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let column = Column::from_name(name).ok_or_else(|| ParamError {
                field: "fields".into(),
                message: format!("unknown field `{name}`"),
                suggestion: format!("one of: {}", Column::ALL.map(Column::name).join(", ")),
            })?;
            if !out.contains(&column) {
                out.push(column);
            }
        }
        Ok(out)
    }
}

/// One cell's value, borrowed from the line where it can be.
enum Cell<'a> {
    Null,
    Str(&'a str),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    List(Vec<&'a str>),
    /// Nested values (labels, extra fields): an object in JSON, JSON text in CSV.
    Json(serde_json::Value),
}

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Str(v) => s.serialize_str(v),
            Cell::String(v) => s.serialize_str(v),
            Cell::U64(v) => s.serialize_u64(*v),
            Cell::I64(v) => s.serialize_i64(*v),
            Cell::F64(v) => s.serialize_f64(*v),
            Cell::Bool(v) => s.serialize_bool(*v),
            Cell::List(v) => v.serialize(s),
            Cell::Json(v) => v.serialize(s),
        }
    }
}

/// Turns lines into rows of the chosen columns. Cost is the line's own, or priced from the
/// book for an AI request, as the usage views price it.
pub struct Rows<'a> {
    columns: &'a [Column],
    prices: &'a PriceBook,
}

impl<'a> Rows<'a> {
    pub fn new(columns: &'a [Column], prices: &'a PriceBook) -> Self {
        Rows { columns, prices }
    }

    pub fn columns(&self) -> &[Column] {
        self.columns
    }

    fn cell<'r>(&self, e: &'r Enriched, column: Column) -> Cell<'r> {
        let r = &e.record;
        let text = |v: Option<&'r str>| v.map_or(Cell::Null, Cell::Str);
        let count = |v: Option<u64>| v.map_or(Cell::Null, Cell::U64);
        match column {
            Column::Ts => Cell::String(format_rfc3339(r.ts_ns)),
            Column::TsNs => Cell::I64(r.ts_ns),
            Column::Service => Cell::Str(&r.service),
            Column::Level => Cell::Str(r.level.as_str()),
            Column::Message => Cell::Str(&r.message),
            Column::Error => text(r.error.as_deref()),
            Column::CorrelationId => text(r.correlation_id.as_deref()),
            Column::ConversationId => text(r.conversation_id.as_deref()),
            Column::SessionId => text(r.session_id.as_deref()),
            Column::WorkspaceId => text(r.workspace_id.as_deref()),
            Column::UserId => text(r.user_id.as_deref()),
            Column::RequestType => text(r.request_type.as_deref()),
            Column::Model => text(r.model.as_deref()),
            Column::InputTokens => count(r.input_tokens),
            Column::OutputTokens => count(r.output_tokens),
            Column::CachedTokens => count(r.cached_tokens),
            Column::TokensUsed => count(r.tokens_used),
            Column::CostUsd => match r.cost_usd {
                Some(cost) => Cell::F64(cost),
                None if is_ai_request(r) => {
                    let pricing = self.prices.price(r);
                    if pricing.priced {
                        Cell::F64(pricing.cost_nanousd as f64 / 1e9)
                    } else {
                        Cell::Null
                    }
                }
                None => Cell::Null,
            },
            Column::DurationMs => r.duration_ms.map_or(Cell::Null, Cell::F64),
            Column::Success => r.success.map_or(Cell::Null, Cell::Bool),
            Column::PromptHash => text(r.prompt_hash.as_deref()),
            Column::Patterns => Cell::List(e.patterns.iter().map(|p| p.id.as_ref()).collect()),
            Column::PatternCategories => {
                let mut categories: Vec<&str> = e.patterns.iter().map(|p| p.category.as_str()).collect();
                categories.dedup();
                Cell::List(categories)
            }
            Column::TemplateId => e.template.map_or(Cell::Null, |t| Cell::String(template_key(t.id))),
            Column::Labels if r.labels.is_empty() => Cell::Null,
            Column::Labels => Cell::Json(serde_json::json!(r.labels)),
            Column::Extra if r.extra.is_empty() => Cell::Null,
            Column::Extra => Cell::Json(serde_json::json!(r.extra)),
        }
    }

    /// The line as a JSON object of its non-empty columns.
    pub fn json<'r>(&'r self, e: &'r Enriched) -> JsonRow<'r, 'a> {
        JsonRow { rows: self, line: e }
    }

    /// Writes the CSV header record.
    pub fn csv_header<W: Write>(&self, out: &mut csv::Writer<W>) -> csv::Result<()> {
        out.write_record(self.columns.iter().map(|c| c.name()))
    }

    /// Writes the line as one CSV record: empty for an absent value, lists joined by `;`,
    /// nested values as JSON text.
    pub fn csv<W: Write>(&self, e: &Enriched, out: &mut csv::Writer<W>) -> csv::Result<()> {
        let mut number = ryu::Buffer::new();
        for &column in self.columns {
            match self.cell(e, column) {
                Cell::Null => out.write_field("")?,
                Cell::Str(v) => out.write_field(v)?,
                Cell::String(v) => out.write_field(v)?,
                Cell::U64(v) => out.write_field(v.to_string())?,
                Cell::I64(v) => out.write_field(v.to_string())?,
                Cell::F64(v) if v.is_finite() => out.write_field(number.format_finite(v))?,
                Cell::F64(_) => out.write_field("")?,
                Cell::Bool(v) => out.write_field(if v { "true" } else { "false" })?,
                Cell::List(v) => out.write_field(v.join(";"))?,
                Cell::Json(v) => out.write_field(v.to_string())?,
            }
        }
        out.write_record(None::<&[u8]>)
    }
}

/// A line serialized as an object of the chosen, non-empty columns.
pub struct JsonRow<'r, 'a> {
    rows: &'r Rows<'a>,
    line: &'r Enriched,
}

impl Serialize for JsonRow<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for &column in self.rows.columns {
            let cell = self.rows.cell(self.line, column);
            let empty = match &cell {
                Cell::Null => true,
                Cell::List(v) => v.is_empty(),
                Cell::F64(v) => !v.is_finite(),
                _ => false,
            };
            if !empty {
                map.serialize_entry(column.name(), &cell)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Level, LogRecord};

    fn line(message: &str) -> Enriched {
        let mut r = LogRecord::new(1_795_000_000_000_000_000, "api", Level::Error, message);
        r.model = Some("gpt-4o".into());
        r.input_tokens = Some(1_000);
        r.output_tokens = Some(10);
        Enriched::new(r)
    }

    fn csv_of(lines: &[Enriched], columns: &[Column]) -> String {
        let prices = PriceBook::shipped();
        let rows = Rows::new(columns, &prices);
        let mut out = csv::Writer::from_writer(Vec::new());
        rows.csv_header(&mut out).expect("header");
        for l in lines {
            rows.csv(l, &mut out).expect("row");
        }
        String::from_utf8(out.into_inner().expect("flush")).expect("utf8")
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines_and_reads_back_whole() {
        let tricky = "a, \"quoted\"\nsecond line\r\nthird";
        let text = csv_of(&[line(tricky), line("plain")], &[Column::Service, Column::Message]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][1], tricky);
        assert_eq!(&records[1][1], "plain");
        assert!(text.contains("\"a, \"\"quoted\"\""), "{text}");
    }

    #[test]
    fn cost_is_priced_from_the_book_when_the_line_has_none() {
        let prices = PriceBook::shipped();
        let columns = [Column::Model, Column::CostUsd, Column::Patterns];
        let rows = Rows::new(&columns, &prices);
        let v = serde_json::to_value(rows.json(&line("x"))).expect("json");
        assert_eq!(v["model"], "gpt-4o");
        assert!(v["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{v}");
        assert!(v.get("patterns").is_none(), "empty lists are left out: {v}");
    }

    #[test]
    fn fields_are_checked_and_named_in_the_error() {
        assert_eq!(Column::parse_list(&[]).expect("all").len(), Column::ALL.len());
        let picked = Column::parse_list(&["message".into(), "ts".into(), "message".into()]).expect("ok");
        assert_eq!(picked, vec![Column::Message, Column::Ts]);
        let err = Column::parse_list(&["mesage".into()]).expect_err("unknown");
        assert_eq!(err.field, "fields");
        assert!(err.suggestion.contains("message"));
    }
}
