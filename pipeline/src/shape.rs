//! Message shape: the message with its variable parts masked, so "timeout after 30s for
//! req 8f3a..." and "timeout after 12s for req 11bc..." group together. A cheap stand-in for
//! learned templates when grouping and de-duplicating query answers.

use std::borrow::Cow;

const MAX_SHAPE_BYTES: usize = 240;

/// Masks quoted strings, UUIDs, IPs, URLs, paths, long hex ids, `key=value` values and digit
/// runs.
pub fn message_shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_SHAPE_BYTES) + 8);
    let unquoted = mask_quotes(message);
    for (i, token) in unquoted.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        shape_token(token, &mut out);
        if out.len() >= MAX_SHAPE_BYTES {
            let mut end = MAX_SHAPE_BYTES;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
            break;
        }
    }
    out
}

/// Replaces `"..."` and `'...'` that start a word with `<str>`; apostrophes inside words stay.
fn mask_quotes(s: &str) -> Cow<'_, str> {
    if !s.contains(['"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let opens = (c == '"' || c == '\'')
            && prev.is_none_or(|p| p.is_whitespace() || matches!(p, '=' | ':' | '(' | '[' | ','));
        if opens && let Some(close) = s[i + 1..].find(c) {
            out.push_str("<str>");
            let end = i + 1 + close;
            while chars.peek().is_some_and(|&(j, _)| j <= end) {
                chars.next();
            }
            prev = Some(c);
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    Cow::Owned(out)
}

fn shape_token(token: &str, out: &mut String) {
    let punctuation = |c: char| matches!(c, ',' | ';' | '(' | ')' | '[' | ']' | '.' | ':');
    let start = token.len() - token.trim_start_matches(punctuation).len();
    let core = token[start..].trim_end_matches(punctuation);
    let (lead, trail) = if core.is_empty() {
        ("", "")
    } else {
        (&token[..start], &token[start + core.len()..])
    };
    let masked = if core.is_empty() {
        None
    } else if core.starts_with("http://") || core.starts_with("https://") {
        Some("<url>")
    } else if is_uuid(core) {
        Some("<uuid>")
    } else if is_ip(core) {
        Some("<ip>")
    } else if core.starts_with('/') && core.len() > 1 && core[1..].contains(|c: char| c.is_alphanumeric()) {
        Some("<path>")
    } else if core.len() >= 8 && core.bytes().all(|b| b.is_ascii_hexdigit()) && core.bytes().any(|b| b.is_ascii_digit())
    {
        Some("<hex>")
    } else {
        None
    };
    out.push_str(lead);
    match masked {
        Some(m) => out.push_str(m),
        None => match core.split_once('=') {
            Some((key, value)) if !key.is_empty() && !value.is_empty() => {
                out.push_str(key);
                out.push_str("=<v>");
            }
            _ => mask_digits(core, out),
        },
    }
    out.push_str(trail);
}

/// Replaces each run of digits (with inner `.`/`,` as in `1.5` or `1,024`) by `<n>`.
fn mask_digits(token: &str, out: &mut String) {
    let bytes = token.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || (matches!(bytes[i], b'.' | b',') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            out.push_str("<n>");
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&token[start..i]);
        }
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_ip(s: &str) -> bool {
    let host = s
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(s, |(h, _)| h);
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_are_masked() {
        assert_eq!(
            message_shape("Model timeout after 30s for request 8f3a9c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
            "Model timeout after <n>s for request <uuid>"
        );
        assert_eq!(
            message_shape("connect to 10.0.0.12:5432 failed, user=alice path /var/lib/x"),
            "connect to <ip> failed, user=<v> path <path>"
        );
        assert_eq!(
            message_shape("model \"gpt-4o\" said 'no' don't"),
            "model <str> said <str> don't"
        );
        assert_eq!(message_shape("hash deadbeef01 took 1.5ms"), "hash <hex> took <n>ms");
    }

    #[test]
    fn same_shape_for_same_event() {
        assert_eq!(
            message_shape("pool exhausted (32/32 in use)"),
            message_shape("pool exhausted (17/32 in use)")
        );
        assert!(message_shape(&"x ".repeat(500)).len() <= MAX_SHAPE_BYTES + 3);
    }
}
