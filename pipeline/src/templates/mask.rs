//! Which tokens are variables: masked to `<*>` before a message is routed or compared.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

pub const WILDCARD: &str = "<*>";

/// UUIDs, 0x-hex, and runs of hex characters holding a digit (numbers, ids, hashes): what
/// `mask_numbers` masks, as a regex (for baselines given the same masking, and the tests).
pub const NUMERIC_PATTERN: &str =
    r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|[0-9a-f]*[0-9][0-9a-f]*";

/// Quoted values, as a regex (for baselines; `mask_quoted` keeps HTTP methods besides).
pub const QUOTED_PATTERN: &str = r#""[^"]*"|'[^'\s]*'"#;

/// A quoted value is a parameter (`user "alice"`, `tag="View Lock"`), but a quoted HTTP
/// request keeps its method, which names the event: `"GET /v2/x HTTP/1.1"` -> `"GET <*>"`.
pub fn mask_quoted(text: &str) -> Cow<'_, str> {
    static QUOTED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(QUOTED_PATTERN).unwrap_or_else(|e| unreachable!("{e}")));
    const METHODS: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    if memchr::memchr2(b'"', b'\'', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    QUOTED.replace_all(text, |c: &regex::Captures<'_>| {
        let inner = c[0].strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or("");
        match inner.split_once(' ') {
            Some((method, _)) if METHODS.contains(&method) => format!("\"{method} {WILDCARD}\""),
            _ => WILDCARD.to_owned(),
        }
    })
}

/// Values with their unit are one value, and a quantity in parentheses is an optional
/// annotation: `took <*> ms` -> `took <*>`, `<*> bytes (<*> KB) sent` -> `<*> bytes sent`, so
/// `5 bytes sent` and `1200 bytes (1.2 KB) sent` are one event. (A lone value in parentheses,
/// a host or a name, stays: `from <*> (<*>)` and `from <*> ()` are one event.) Runs after
/// numbers are masked.
pub fn fold_values(text: &str) -> Cow<'_, str> {
    const UNIT: &str = r"(?:[KMGTP]?i?B|ms|us|µs|ns|s|secs?|mins?|h|%)";
    static QUANTITY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"<\*>\s?{UNIT}(?-u:\b)|<\*>%")).unwrap_or_else(|e| unreachable!("{e}")));
    static ANNOTATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"\s?\(\s*<\*>\s?{UNIT}\s*\)")).unwrap_or_else(|e| unreachable!("{e}")));
    if !has_quantity(text) {
        return Cow::Borrowed(text);
    }
    let text = match ANNOTATION.replace_all(text, "") {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    };
    match QUANTITY.replace_all(&text, WILDCARD) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Whether a parameter is followed by what could be a unit: most lines have none, and then
/// `fold_values` runs no regex.
fn has_quantity(text: &str) -> bool {
    text.match_indices(WILDCARD).any(|(at, w)| {
        let rest = text[at + w.len()..].trim_start_matches(' ').as_bytes();
        rest.first().is_some_and(|b| {
            matches!(
                b,
                b'K' | b'M' | b'G' | b'T' | b'P' | b'B' | b'm' | b'u' | b'n' | b's' | b'h' | b'%' | 0xC2
            )
        })
    })
}

/// The masks of the default configuration, applied in order after `mask_quoted` and before
/// numbers are masked: URLs, paths, dotted names (hosts, packages), weekday and month names
/// (parts of timestamps inside messages), and booleans.
pub fn default_masks() -> Vec<Regex> {
    [
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
///
/// One pass over the bytes, the same result as three regex passes: `NUMERIC_PATTERN` to
/// `<*>`; then parameters joined by separators (`<*>(?:[.:,/_+-]*<*>)+`: an IP and port, a
/// date, a version) to one; then a minus sign starting a value (`(^|[\s:=,(\[_])-<*>`, not
/// `utf-8`) dropped. Text without digits is returned as it is.
pub fn mask_numbers(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    if !b.iter().any(u8::is_ascii_digit) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(WILDCARD.as_bytes()) {
            push_wildcard(&mut out);
            i += WILDCARD.len();
        } else if let Some(len) = numeric_at(b, i) {
            push_wildcard(&mut out);
            i += len;
        } else if b[i].is_ascii_hexdigit() {
            // A hex run without a digit from here has none from any later start either, but
            // a UUID may start inside it: only where its first group ends at the run's end.
            let run = hex_run(b, i);
            let keep = if run > 8 && is_uuid(&b[i + run - 8..]) {
                run - 8
            } else {
                run
            };
            out.push_str(&text[i..i + keep]);
            i += keep;
        } else {
            let ch = text[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    Cow::Owned(out)
}

/// The length of the numeric value starting at `i`, in `NUMERIC_PATTERN`'s order of
/// alternatives: a UUID, `0x` hex, a hex run holding a digit.
fn numeric_at(b: &[u8], i: usize) -> Option<usize> {
    if !b[i].is_ascii_hexdigit() {
        return None;
    }
    if is_uuid(&b[i..]) {
        return Some(36);
    }
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let run = hex_run(b, i + 2);
        if run > 0 {
            return Some(2 + run);
        }
    }
    let run = hex_run(b, i);
    b[i..i + run].iter().any(u8::is_ascii_digit).then_some(run)
}

fn hex_run(b: &[u8], from: usize) -> usize {
    b.get(from..)
        .map_or(0, |rest| rest.iter().take_while(|c| c.is_ascii_hexdigit()).count())
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() >= 36
        && b[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Appends a parameter: joined to the one before it when only separators stand between them,
/// and taking the place of a minus sign that starts a value.
fn push_wildcard(out: &mut String) {
    let joined = out.trim_end_matches(['.', ':', ',', '/', '_', '+', '-']);
    if joined.ends_with(WILDCARD) {
        out.truncate(joined.len());
        return;
    }
    if let Some(before) = out.strip_suffix('-')
        && before
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, ':' | '=' | ',' | '(' | '[' | '_'))
    {
        out.pop();
    }
    out.push_str(WILDCARD);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_values_are_parameters_but_http_methods_name_the_event() {
        assert_eq!(
            mask_quoted(r#"10.0.0.1 "GET /v2/abc/servers HTTP/1.1" status: 200"#),
            r#"10.0.0.1 "GET <*>" status: 200"#
        );
        assert_eq!(mask_quoted(r#""DELETE /v2/x HTTP/1.1""#), r#""DELETE <*>""#);
        assert_eq!(
            mask_quoted(r#"acquire tag="View Lock", name=x"#),
            "acquire tag=<*>, name=x"
        );
        assert_eq!(mask_quoted("user 'alice' logged in"), "user <*> logged in");
        assert!(matches!(mask_quoted("no quotes here"), Cow::Borrowed(_)));
    }

    #[test]
    fn quantities_fold_and_quantity_annotations_are_optional() {
        assert_eq!(
            fold_values("<*> close, <*> bytes (<*> KB) sent, lifetime <*>"),
            "<*> close, <*> bytes sent, lifetime <*>"
        );
        assert_eq!(fold_values("took <*> ms to spawn"), "took <*> to spawn");
        assert_eq!(
            fold_values("estimated size <*> B, free <*>"),
            "estimated size <*>, free <*>"
        );
        assert_eq!(fold_values("cpu at <*>%"), "cpu at <*>");
        // A lone value in parentheses is a host or a name, not an annotation.
        assert_eq!(
            fold_values("connection from <*> (<*>) at <*>"),
            "connection from <*> (<*>) at <*>"
        );
        assert_eq!(fold_values("<*> sshd started"), "<*> sshd started");
    }

    /// The three regex passes `mask_numbers` replaces, as the oracle it must agree with.
    fn mask_numbers_by_regex(text: &str) -> String {
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return text.to_owned();
        }
        let numeric = Regex::new(NUMERIC_PATTERN).expect("numeric mask");
        let joined = Regex::new(r"<\*>(?:[.:,/_+-]*<\*>)+").expect("joined mask");
        let signed = Regex::new(r"(^|[\s:=,(\[_])-<\*>").expect("signed mask");
        let masked = numeric.replace_all(text, WILDCARD);
        let masked = joined.replace_all(&masked, WILDCARD);
        signed.replace_all(&masked, "${1}<*>").into_owned()
    }

    proptest! {
        #[test]
        fn one_pass_agrees_with_the_regex_passes(
            text in r"([0-9a-fA-FxX\-_.:,/+=(\[ <*>gzé\t]|<\*>|0x|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}){0,24}"
        ) {
            prop_assert_eq!(mask_numbers(&text).into_owned(), mask_numbers_by_regex(&text));
        }
    }

    #[test]
    fn agrees_on_real_messages() {
        for text in [
            "model claude-3-5-sonnet timed out after 60s",
            "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
            "x=-1 index:-3 (-4) [-5] a -6 utf-8 --7 0x1F 0xg 0X 550E8400-E29B-41D4-A716-446655440000ff",
            "-1 starts <*>-<*> and <*><*> 1.2.3-rc4+build.5 é1é",
            "0xxAaaaaaaaa-000a-00aa-a000-a0a00a0aa000",
        ] {
            assert_eq!(mask_numbers(text), mask_numbers_by_regex(text), "{text}");
        }
    }
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
        let masked = m.mask(
            "connection from host-1.example.net (a.b.example.net) at Sat Jul  9 22:53:19 2005 path /var/log/x \"a b\"",
        );
        assert_eq!(
            m.split(&masked).join(" "),
            "connection from <*> (<*>) at <*> path <*>",
            "runs of parameters are one token"
        );
    }
}
