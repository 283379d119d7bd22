//! Loki stream label strings: `{app="web", job="x"}`, parsed as Loki does (PromQL metric
//! syntax, Go string escapes, empty values dropped) and written as Promtail does (sorted,
//! `", "`-separated, quoted).

use std::collections::BTreeMap;

/// Loki's defaults for label name and value length (`limits_config`).
pub const MAX_NAME_LEN: usize = 1024;
pub const MAX_VALUE_LEN: usize = 2048;

/// Parses a label string. Errors say what is wrong and where.
pub fn parse(input: &str) -> Result<BTreeMap<String, String>, String> {
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
        input,
    };
    p.ws();
    p.expect(b'{')?;
    let mut labels = BTreeMap::new();
    loop {
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let name = p.name()?;
        p.ws();
        p.expect(b'=')?;
        p.ws();
        let value = p.string()?;
        if value.len() > MAX_VALUE_LEN {
            return Err(format!("label {name} value is longer than {MAX_VALUE_LEN} bytes"));
        }
        if !value.is_empty() && labels.insert(name.clone(), value).is_some() {
            return Err(format!("duplicate label name {name}"));
        }
        p.ws();
        match p.peek() {
            Some(b',') => p.i += 1,
            Some(b'}') => {
                p.i += 1;
                break;
            }
            _ => return Err(p.unexpected("',' or '}'")),
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(p.unexpected("end of input"));
    }
    Ok(labels)
}

/// The label string Promtail would write for these labels.
pub fn format(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Checks a label name as Prometheus defines it.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    input: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.input.get(self.i..).and_then(|r| r.chars().next()) {
            Some(c) => format!("unexpected {c:?} at position {}, expected {wanted}", self.i),
            None => format!("unexpected end of input, expected {wanted}"),
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("{:?}", b as char)))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            self.i += 1;
        }
        let name = &self.input[start..self.i];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            self.i = start;
            return Err(self.unexpected("a label name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(format!("label name longer than {MAX_NAME_LEN} bytes"));
        }
        Ok(name.to_owned())
    }

    /// A PromQL string literal: "..." or '...' with Go escapes, or `...` raw.
    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.unexpected("a quoted label value")),
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.input[self.i..];
            let Some(c) = rest.chars().next() else {
                return Err("unterminated label value".to_owned());
            };
            self.i += c.len_utf8();
            if c as u32 == u32::from(quote) {
                return Ok(out);
            }
            if c == '\\' && quote != b'`' {
                self.escape(quote, &mut out)?;
            } else if c == '\n' && quote != b'`' {
                return Err("newline in label value".to_owned());
            } else {
                out.push(c);
            }
        }
    }

    fn escape(&mut self, quote: u8, out: &mut String) -> Result<(), String> {
        let Some(e) = self.peek() else {
            return Err("unterminated escape in label value".to_owned());
        };
        self.i += 1;
        let simple = match e {
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\x0b'),
            b'\\' => Some('\\'),
            q if q == quote => Some(q as char),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let (digits, radix) = match e {
            b'x' => (2, 16),
            b'u' => (4, 16),
            b'U' => (8, 16),
            b'0'..=b'7' => {
                self.i -= 1;
                (3, 8)
            }
            _ => return Err(format!("invalid escape \\{} in label value", e as char)),
        };
        let hex = self
            .input
            .get(self.i..self.i + digits)
            .ok_or("truncated escape in label value")?;
        let code =
            u32::from_str_radix(hex, radix).map_err(|_| format!("invalid escape digits {hex:?} in label value"))?;
        self.i += digits;
        // \x and octal escapes are bytes in Go; bytes >= 0x80 alone are not valid UTF-8, so
        // they are kept as the replacement character rather than failing the push.
        let c = if digits <= 3 && code > 0x7f {
            Some('\u{fffd}')
        } else {
            char::from_u32(code)
        };
        out.push(c.ok_or_else(|| format!("escape {hex:?} is not a valid character"))?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn promtail_style() {
        assert_eq!(
            parse(r#"{app="web", job="x"}"#),
            Ok(map(&[("app", "web"), ("job", "x")]))
        );
        assert_eq!(parse(r#" { a = "1" ,b="2",} "#), Ok(map(&[("a", "1"), ("b", "2")])));
        assert_eq!(parse("{}"), Ok(BTreeMap::new()));
    }

    #[test]
    fn go_escapes_and_empty_values() {
        assert_eq!(
            parse(r#"{p="a\"b\\c\n\x41\u00e9\101", e="", r=`raw\n`}"#),
            Ok(map(&[("p", "a\"b\\c\nAéA"), ("r", "raw\\n")]))
        );
    }

    #[test]
    fn errors_say_what() {
        assert!(parse(r#"app="web""#).expect_err("rejected").contains("expected '{'"));
        assert!(
            parse(r#"{app="web""#)
                .expect_err("rejected")
                .contains("expected ',' or '}'")
        );
        assert!(parse(r#"{1app="web"}"#).expect_err("rejected").contains("label name"));
        assert!(parse(r#"{a="1", a="2"}"#).expect_err("rejected").contains("duplicate"));
        assert!(parse(r#"{a="1}"#).expect_err("rejected").contains("unterminated"));
        assert!(parse(r#"{a="\q"}"#).expect_err("rejected").contains("invalid escape"));
        assert!(parse(r#"{a=web}"#).expect_err("rejected").contains("quoted"));
        assert!(parse(r#"{a="1"} x"#).expect_err("rejected").contains("end of input"));
    }

    #[test]
    fn format_round_trips() {
        let labels = map(&[("job", "x"), ("app", "we\"b")]);
        assert_eq!(format(&labels), r#"{app="we\"b", job="x"}"#);
        assert_eq!(parse(&format(&labels)), Ok(labels));
    }
}
