//! logfmt (`key=value key2="quoted value"`), as written by Go's logfmt, Heroku and slog's text
//! handler. The crates.io `logfmt` crate (0.0.x) is unmaintained, and the grammar is a few lines.

use std::borrow::Cow;

/// One whitespace-separated token of a line.
enum Token<'a> {
    Pair(&'a str, Cow<'a, str>),
    /// A word without `=`, or with a key logfmt does not allow (`{json=1}`, `/x?a=1`).
    Word {
        bad_key: bool,
    },
}

/// Tokens of `line`; `None` when a quoted value is never closed.
fn tokens(line: &str) -> Option<Vec<Token<'_>>> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &line[key_start..i];
        if i >= bytes.len() || bytes[i] != b'=' || !valid_key(key) {
            let bad_key = i < bytes.len() && bytes[i] == b'=';
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Token::Word { bad_key });
            continue;
        }
        i += 1; // '='
        let value = if i < bytes.len() && bytes[i] == b'"' {
            let (value, next) = quoted(line, i + 1)?;
            i = next;
            value
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            Cow::Borrowed(&line[start..i])
        };
        out.push(Token::Pair(key, value));
    }
    Some(out)
}

/// Parses a logfmt line into pairs; `None` when the line does not look like logfmt: fewer than
/// two `key=value` pairs, or fewer pairs than bare words (plain prose with an `=` in it).
pub fn parse(line: &str) -> Option<Vec<(&str, Cow<'_, str>)>> {
    let mut pairs = Vec::new();
    let mut bare = 0usize;
    for token in tokens(line)? {
        match token {
            Token::Pair(k, v) => pairs.push((k, v)),
            Token::Word { bad_key: true } => return None,
            Token::Word { bad_key: false } => bare += 1,
        }
    }
    (pairs.len() >= 2 && pairs.len() > bare).then_some(pairs)
}

/// The `key=value` pairs a plain-text line ends with (`WARN slow query took 4200 ms
/// correlation_id=req-1`): the run of pairs after the last word that is not one. Empty when
/// the line ends in prose or a quote is never closed.
pub fn trailing_pairs(line: &str) -> Vec<(&str, Cow<'_, str>)> {
    let mut run = Vec::new();
    for token in tokens(line).unwrap_or_default() {
        match token {
            Token::Pair(k, v) => run.push((k, v)),
            Token::Word { .. } => run.clear(),
        }
    }
    run
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '@')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '@'))
}

/// Reads a quoted value starting after the opening quote; returns it and the index after the
/// closing quote. `None` when the quote is never closed.
fn quoted(line: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = line.as_bytes();
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut run_start = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = match owned {
                    Some(mut s) => {
                        s.push_str(&line[run_start..i]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&line[start..i]),
                };
                return Some((value, i + 1));
            }
            b'\\' if i + 1 < bytes.len() => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&line[run_start..i]);
                match bytes[i + 1] {
                    b'n' => s.push('\n'),
                    b't' => s.push('\t'),
                    b'r' => s.push('\r'),
                    b'"' => s.push('"'),
                    b'\\' => s.push('\\'),
                    _ => {
                        // Unknown escape: keep it as written.
                        run_start = i;
                        i += 1;
                        continue;
                    }
                }
                i += 2;
                run_start = i;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_quotes() {
        let pairs = parse(r#"level=error msg="db \"main\" down" took_ms=12 ok"#).expect("logfmt");
        assert_eq!(pairs[0], ("level", Cow::Borrowed("error")));
        assert_eq!(pairs[1].1, r#"db "main" down"#);
        assert_eq!(pairs[2], ("took_ms", Cow::Borrowed("12")));
    }

    #[test]
    fn reads_the_pairs_a_plain_line_ends_with() {
        let pairs = trailing_pairs("WARN slow query took 4200 ms correlation_id=req-1 db=\"main pg\"");
        assert_eq!(
            pairs,
            [
                ("correlation_id", Cow::Borrowed("req-1")),
                ("db", Cow::Borrowed("main pg"))
            ]
        );
        assert!(trailing_pairs("x=1 then prose").is_empty());
        assert!(trailing_pairs("GET /x?a=1").is_empty());
        assert!(trailing_pairs(r#"oops a="never closed"#).is_empty());
    }

    #[test]
    fn rejects_prose() {
        assert!(parse("the value x=1 was odd and wrong").is_none());
        assert!(parse("plain words only").is_none());
        assert!(parse(r#"a=1 b="unterminated"#).is_none());
        assert!(parse("{json=1} x=2").is_none());
    }
}
