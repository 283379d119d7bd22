//! Effective-dated model prices and request pricing, in integer nano-dollars.

use serde::{Deserialize, Serialize};

use crate::normalize::time::parse_ts_str;
use crate::record::LogRecord;

/// One price row: per million tokens, in nano-USD (1 USD = 1e9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Exact model name, or a glob with `*` (`claude-3-5-sonnet*`).
    pub model_pattern: String,
    pub provider: Option<String>,
    pub valid_from_ns: i64,
    pub input_nanousd_per_mtok: i64,
    pub output_nanousd_per_mtok: i64,
    pub cached_input_nanousd_per_mtok: i64,
    /// Names this row in reports: `<pattern>@<valid_from date>`.
    pub version: String,
}

impl Price {
    fn matches(&self, model: &str) -> bool {
        glob_match(&self.model_pattern, model)
    }

    /// Exact names beat globs; longer globs beat shorter ones.
    fn specificity(&self) -> (bool, usize) {
        (!self.model_pattern.contains('*'), self.model_pattern.len())
    }
}

/// What a request cost and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    pub cost_nanousd: i64,
    /// False when neither the line nor the price book gave a price: cost is 0 and the
    /// request is counted as unpriced, never silently free.
    pub priced: bool,
    /// `provider-reported`, a price row's version, or `None` when unpriced.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceBook {
    prices: Vec<Price>,
}

#[derive(Deserialize)]
struct PriceFile {
    #[serde(default)]
    price: Vec<PriceFileRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFileRow {
    model: String,
    provider: Option<String>,
    valid_from: String,
    input: String,
    output: String,
    cached_input: String,
}

impl PriceBook {
    pub fn new(mut prices: Vec<Price>) -> Self {
        prices.sort_by(|a, b| {
            a.model_pattern
                .cmp(&b.model_pattern)
                .then(a.valid_from_ns.cmp(&b.valid_from_ns))
        });
        PriceBook { prices }
    }

    /// The shipped price file format (`model_prices.toml`).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| format!("price file: {e}"))?;
        let prices = file
            .price
            .into_iter()
            .map(|row| {
                let valid_from_ns = parse_ts_str(&row.valid_from).ok_or_else(|| {
                    format!(
                        "price for {}: valid_from {:?} is not RFC3339",
                        row.model, row.valid_from
                    )
                })?;
                let usd = |field: &str, v: &str| {
                    parse_usd_per_mtok(v)
                        .ok_or_else(|| format!("price for {}: {field} {v:?} is not a USD amount", row.model))
                };
                Ok(Price {
                    version: format!("{}@{}", row.model, &row.valid_from[..row.valid_from.len().min(10)]),
                    input_nanousd_per_mtok: usd("input", &row.input)?,
                    output_nanousd_per_mtok: usd("output", &row.output)?,
                    cached_input_nanousd_per_mtok: usd("cached_input", &row.cached_input)?,
                    model_pattern: row.model,
                    provider: row.provider,
                    valid_from_ns,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PriceBook::new(prices))
    }

    /// The prices shipped with ailogs.
    pub fn shipped() -> Self {
        PriceBook::from_toml(include_str!("../../model_prices.toml")).expect("the shipped price file parses")
    }

    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    /// The row in force for `model` at `at_ns`: the most specific matching pattern, then the
    /// newest `valid_from` not after the event.
    pub fn lookup(&self, model: &str, at_ns: i64) -> Option<&Price> {
        self.prices
            .iter()
            .filter(|p| p.valid_from_ns <= at_ns && p.matches(model))
            .max_by_key(|p| (p.specificity(), p.valid_from_ns))
    }

    /// Prices one AI request. A cost the line itself reports (the provider's) is preferred.
    /// Cached tokens are part of the input tokens (OpenAI's convention) and billed at the
    /// cached rate; the rest of the input at the input rate.
    pub fn price(&self, rec: &LogRecord) -> Pricing {
        if let Some(cost) = rec.cost_usd {
            return Pricing {
                cost_nanousd: (cost * 1e9).round() as i64,
                priced: true,
                version: Some("provider-reported".to_owned()),
            };
        }
        let model = rec.model.as_deref().unwrap_or("");
        let Some(price) = self.lookup(model, rec.ts_ns) else {
            return Pricing {
                cost_nanousd: 0,
                priced: false,
                version: None,
            };
        };
        let (input, output, cached) = tokens(rec);
        let cached = cached.min(input);
        let micro = i128::from(input - cached) * i128::from(price.input_nanousd_per_mtok)
            + i128::from(cached) * i128::from(price.cached_input_nanousd_per_mtok)
            + i128::from(output) * i128::from(price.output_nanousd_per_mtok);
        // Per-million prices: divide once per request, rounding half up.
        let cost = (micro + 500_000) / 1_000_000;
        Pricing {
            cost_nanousd: i64::try_from(cost).unwrap_or(i64::MAX),
            priced: true,
            version: Some(price.version.clone()),
        }
    }
}

/// (input, output, cached) tokens of a request as non-negative i64. When only a total is
/// given, it counts as input.
pub(super) fn tokens(rec: &LogRecord) -> (i64, i64, i64) {
    let clamp = |v: Option<u64>| i64::try_from(v.unwrap_or(0)).unwrap_or(i64::MAX);
    let (input, output) = match (rec.input_tokens, rec.output_tokens) {
        (None, None) => (clamp(rec.tokens_used), 0),
        (i, o) => (clamp(i), clamp(o)),
    };
    (input, output, clamp(rec.cached_tokens))
}

/// `"2.50"` USD per million tokens -> 2_500_000_000 nano-USD per million tokens, exactly.
pub fn parse_usd_per_mtok(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_nano: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    whole.checked_mul(1_000_000_000)?.checked_add(frac_nano)
}

/// `*` matches any run of characters; everything else literally (case-insensitive).
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Level;

    const NOV_2026: i64 = 1_793_000_000_000_000_000;

    fn request(model: &str, input: u64, output: u64, cached: Option<u64>) -> LogRecord {
        let mut r = LogRecord::new(NOV_2026, "gw", Level::Info, "done");
        r.model = Some(model.into());
        r.input_tokens = Some(input);
        r.output_tokens = Some(output);
        r.cached_tokens = cached;
        r
    }

    #[test]
    fn usd_amounts_parse_exactly() {
        assert_eq!(parse_usd_per_mtok("2.50"), Some(2_500_000_000));
        assert_eq!(parse_usd_per_mtok("0.0375"), Some(37_500_000));
        assert_eq!(parse_usd_per_mtok("10"), Some(10_000_000_000));
        assert_eq!(parse_usd_per_mtok("0"), Some(0));
        assert_eq!(parse_usd_per_mtok("-1"), None);
        assert_eq!(parse_usd_per_mtok("1e3"), None);
        assert_eq!(parse_usd_per_mtok(""), None);
    }

    #[test]
    fn shipped_prices_price_common_models() {
        let book = PriceBook::shipped();
        // gpt-4o: 1000 input (200 cached) + 500 output
        // = 800 * 2.50 + 200 * 1.25 + 500 * 10.00 per million = 0.002 + 0.00025 + 0.005 USD
        let p = book.price(&request("gpt-4o", 1000, 500, Some(200)));
        assert_eq!(
            p,
            Pricing {
                cost_nanousd: 7_250_000,
                priced: true,
                version: Some("gpt-4o@2024-08-06".into())
            }
        );
        let glob = book.price(&request("claude-3-5-sonnet-20241022", 1_000_000, 0, None));
        assert_eq!(glob.cost_nanousd, 3_000_000_000);
        assert_eq!(book.price(&request("llama3.1:8b", 5000, 5000, None)).cost_nanousd, 0);
        assert!(book.price(&request("llama3.1:8b", 5000, 5000, None)).priced);
    }

    #[test]
    fn unknown_models_are_unpriced_not_free() {
        let p = PriceBook::shipped().price(&request("mystery-model", 10, 10, None));
        assert_eq!(
            p,
            Pricing {
                cost_nanousd: 0,
                priced: false,
                version: None
            }
        );
    }

    #[test]
    fn provider_cost_wins_and_prices_are_effective_dated() {
        let mut r = request("gpt-4o", 1000, 1000, None);
        r.cost_usd = Some(0.0123);
        assert_eq!(PriceBook::shipped().price(&r).cost_nanousd, 12_300_000);
        let row = |from: i64, input: i64, v: &str| Price {
            model_pattern: "m".into(),
            provider: None,
            valid_from_ns: from,
            input_nanousd_per_mtok: input,
            output_nanousd_per_mtok: 0,
            cached_input_nanousd_per_mtok: 0,
            version: v.into(),
        };
        let book = PriceBook::new(vec![row(0, 1_000_000_000, "old"), row(NOV_2026, 2_000_000_000, "new")]);
        let mut early = request("m", 1_000_000, 0, None);
        early.ts_ns = NOV_2026 - 1;
        assert_eq!(book.price(&early).version.as_deref(), Some("old"));
        assert_eq!(
            book.price(&request("m", 1_000_000, 0, None)).cost_nanousd,
            2_000_000_000
        );
        let mut before_all = early.clone();
        before_all.ts_ns = -1;
        assert!(!book.price(&before_all).priced);
    }

    #[test]
    fn globs() {
        assert!(glob_match("claude-3-5-sonnet*", "Claude-3-5-Sonnet-20241022"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(glob_match("gpt-*-mini", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(!glob_match("gpt-*-mini", "gpt-4o"));
    }
}
