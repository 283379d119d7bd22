//! Every tool's structured output: summary first, then the few items that matter, with the
//! envelope's facts (source, freshness, total, returned, truncated) and the call to make
//! next when something was left out. Answers fit a byte budget the agent sets.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// About 1,500 tokens.
pub const DEFAULT_MAX_BYTES: usize = 6_000;
pub const MIN_MAX_BYTES: usize = 1_000;
pub const MAX_MAX_BYTES: usize = 200_000;
/// A text field of an item is cut past this many characters.
const MAX_TEXT: usize = 300;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ToolAnswer {
    /// What the answer says, in a sentence or two.
    pub summary: String,
    /// Who answered: views, loki, views+loki, postgres or memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How fresh the views are (newest event processed, lag in seconds), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freshness: Option<Value>,
    /// Stores that did not answer (the rest was still answered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Items that matched in all, when the API says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Items in this answer.
    pub returned: usize,
    /// True when items were left out (by the limit, the byte budget, or a store's budget).
    pub truncated: bool,
    /// What was left out and the narrower call to make next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The items, most useful first; ids in them drill down with the other tools.
    pub items: Vec<Value>,
    /// The tool's facts beyond the items (root cause, totals, breakdowns).
    pub details: Map<String, Value>,
}

impl ToolAnswer {
    pub fn new(summary: impl Into<String>) -> Self {
        ToolAnswer {
            summary: summary.into(),
            source: None,
            freshness: None,
            missing: Vec::new(),
            total: None,
            returned: 0,
            truncated: false,
            next: None,
            items: Vec::new(),
            details: Map::new(),
        }
    }

    /// Takes `source`, `freshness` and `missing` from a REST envelope.
    pub fn envelope(mut self, body: &Value) -> Self {
        self.source = body.get("source").and_then(Value::as_str).map(str::to_owned);
        self.freshness = body.get("freshness").filter(|f| !f.is_null()).cloned();
        self.missing = body
            .get("missing")
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if body.get("truncated").and_then(Value::as_bool) == Some(true) {
            self.truncated = true;
            if let Some(reason) = body.get("truncated_reason").and_then(Value::as_str) {
                self.next = Some(reason.to_owned());
            }
        }
        self
    }

    /// The first `limit` items, each cut to `fields` (all when empty) and clipped.
    pub fn items(mut self, items: &[Value], fields: &[&str], limit: usize) -> Self {
        self.items = items.iter().take(limit).map(|v| compact(v, fields)).collect();
        self.returned = self.items.len();
        if items.len() > self.returned {
            self.truncated = true;
        }
        self
    }

    pub fn detail(mut self, key: &str, value: Value) -> Self {
        if !value.is_null() {
            self.details.insert(key.to_owned(), value);
        }
        self
    }

    pub fn total(mut self, total: Option<u64>) -> Self {
        self.total = total;
        if total.is_some_and(|t| t > self.returned as u64) {
            self.truncated = true;
        }
        self
    }

    /// Says what to call for more, unless a store's own reason is already there.
    pub fn next_if_truncated(mut self, hint: &str) -> Self {
        if self.truncated && self.next.is_none() {
            self.next = Some(hint.to_owned());
        }
        self
    }

    /// Drops items from the end, then details, until the JSON (the note saying so
    /// included) fits `max_bytes`.
    pub fn fit(mut self, max_bytes: usize) -> Self {
        let size = |a: &ToolAnswer| serde_json::to_vec(a).map_or(usize::MAX, |v| v.len());
        let mut noted = false;
        while size(&self) > max_bytes {
            if !noted {
                noted = true;
                self.truncated = true;
                let hint =
                    format!("the answer was cut to fit max_bytes={max_bytes}: raise max_bytes or narrow the call");
                self.next = Some(match self.next.take() {
                    Some(n) => format!("{n}; {hint}"),
                    None => hint,
                });
                continue;
            }
            if self.items.pop().is_some() {
                self.returned = self.items.len();
                continue;
            }
            let Some(largest) = self
                .details
                .iter()
                .filter(|(k, _)| k.as_str() != "left_out")
                .max_by_key(|(_, v)| v.to_string().len())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.details.remove(&largest);
            if let Value::Array(left) = self
                .details
                .entry("left_out".to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                left.push(Value::String(largest));
            }
        }
        self
    }
}

/// The item with only `fields` (all when empty), long strings clipped.
fn compact(v: &Value, fields: &[&str]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if fields.is_empty() || fields.contains(&k.as_str()) {
                    out.insert(k.clone(), clip(val));
                }
            }
            Value::Object(out)
        }
        other => clip(other),
    }
}

fn clip(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            let cut: String = s.chars().take(MAX_TEXT).collect();
            Value::String(format!("{cut}…"))
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fit_drops_items_then_details_and_says_so() {
        let items: Vec<Value> = (0..50)
            .map(|i| json!({"message": format!("line {i} {}", "x".repeat(200))}))
            .collect();
        let a = ToolAnswer::new("s")
            .items(&items, &[], 50)
            .detail("big", json!("y".repeat(3_000)))
            .fit(2_000);
        assert!(serde_json::to_vec(&a).expect("json").len() <= 2_000);
        assert!(a.truncated);
        assert!(a.next.as_deref().is_some_and(|n| n.contains("max_bytes=2000")));
        assert_eq!(a.returned, a.items.len());
        assert_eq!(a.details["left_out"], json!(["big"]));
    }

    #[test]
    fn items_are_cut_to_fields_and_clipped() {
        let long = "z".repeat(1_000);
        let a = ToolAnswer::new("s").items(&[json!({"message": long, "other": 1})], &["message"], 5);
        let m = a.items[0]["message"].as_str().expect("string");
        assert_eq!(m.chars().count(), MAX_TEXT + 1);
        assert!(a.items[0].get("other").is_none());
        assert!(!a.truncated);
    }
}
