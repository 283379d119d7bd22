//! Which tokens are variables: masked to `<*>` before a message is routed or compared.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

pub const WILDCARD: &str = "<*>";

/// UUIDs, 0x-hex, and runs of hex characters holding a digit (numbers, ids, hashes).
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|[0-9a-f]*[0-9][0-9a-f]*")
        .unwrap_or_else(|e| unreachable!("{e}"))
});
/// Parameters joined by separators (an IP and port, a date, a version): one parameter.
static JOINED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<\*>(?:[.:,/_+-]*<\*>)+").unwrap_or_else(|e| unreachable!("{e}")));

/// A minus sign starting a value (`index:-3`, `x=-1`, `blk_-1`), not one inside a word
/// (`utf-8`).
static SIGNED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[\s:=,(\[_])-<\*>").unwrap_or_else(|e| unreachable!("{e}")));

/// The masks of the default configuration, applied in order before numbers are masked:
/// quoted values, URLs, paths, dotted names (hosts, packages), weekday and month names
/// (parts of timestamps inside messages), and booleans.
pub fn default_masks() -> Vec<Regex> {
    [
        r#""[^"]*"|'[^'\s]*'"#,
        r"(?-u:\b)[a-z][a-z0-9+.-]*://\S+",
        r"(?:/[\w.@~+-]+){2,}/?",
        r"(?-u:\b)(?:[\w-]+\.){2,}[\w-]+(?-u:\b)",
        r"(?-u:\b)(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?-u:\b)",
        r"(?i)(?-u:\b)(?:true|false)(?-u:\b)",
    ]
    .iter()
    .map(|p| Regex::new(p).unwrap_or_else(|e| unreachable!("{e}")))
    .collect()
}

/// Masks the numeric parts of a message inside its tokens, keeping their words and
/// punctuation: `index:42` -> `index:<*>`, `10.0.0.1:8080` -> `<*>`, `blk_-123` -> `blk_<*>`, `x=-1` -> `x=<*>`.
pub fn mask_numbers(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(text);
    }
    let masked = NUMERIC.replace_all(text, WILDCARD);
    let joined = JOINED.replace_all(&masked, WILDCARD).into_owned();
    match SIGNED.replace_all(&joined, "${1}<*>") {
        Cow::Borrowed(_) => Cow::Owned(joined),
        Cow::Owned(o) => Cow::Owned(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::{DrainConfig, Miner};

    #[test]
    fn numbers_are_masked_inside_tokens() {
        assert_eq!(
            mask_numbers(
                "index:42 from 10.0.0.1:8080 blk_-123 at 2005-07-09 took 1.5s id=550e8400-e29b-41d4-a716-446655440000"
            ),
            "index:<*> from <*> blk_<*> at <*> took <*>s id=<*>"
        );
        assert_eq!(mask_numbers("no digits here"), "no digits here");
        let m = Miner::new(DrainConfig::default());
        let t: Vec<String> = m
            .tokens("connection from host-1.example.net (a.b.example.net) at Sat Jul  9 22:53:19 2005 path /var/log/x \"a b\"")
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            t.join(" "),
            "connection from <*> (<*>) at <*> path <*>",
            "runs of parameters are one token"
        );
    }
}
