//! How well a message's tokens fit a template of the same length: a similarity and the
//! template's parameter count (ties go to the more general template).

use std::sync::Arc;

use super::mask::WILDCARD;

#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub sim: f64,
    pub params: usize,
}

/// ailogs: the share of equal words among the message's words (a masked token tells nothing
/// either way: the template has a parameter there, or a word was masked in this line). `None`
/// when the template is settled and one of its words differs: another event.
pub fn words(template: &[Arc<str>], tokens: &[&str], settled: bool) -> Option<Fit> {
    let (mut same, mut words, mut params) = (0usize, 0usize, 0usize);
    for (t, &m) in template.iter().zip(tokens) {
        let wild = **t == *WILDCARD;
        params += usize::from(wild);
        // A token holding a parameter (`github.com:<*>`) is a value, like a masked one, where
        // the template has a parameter.
        if m == WILDCARD || (wild && m.contains(WILDCARD)) {
            continue;
        }
        words += 1;
        if **t == *m {
            same += 1;
        } else if settled && !wild && settles(t) && settles(m) {
            return None;
        }
    }
    let sim = if words == 0 { 1.0 } else { same as f64 / words as f64 };
    Some(Fit { sim, params })
}

/// Published Drain (drain3's `get_seq_distance`): equal tokens over all tokens, the
/// template's `<*>` counted unequal.
pub fn classic(template: &[Arc<str>], tokens: &[&str]) -> Fit {
    let (mut same, mut params) = (0usize, 0usize);
    for (t, &m) in template.iter().zip(tokens) {
        if **t == *WILDCARD {
            params += 1;
        } else if **t == *m {
            same += 1;
        }
    }
    let sim = if tokens.is_empty() {
        1.0
    } else {
        same as f64 / tokens.len() as f64
    };
    Fit { sim, params }
}

/// Words that settle: with a letter, and not bracketed or a `key=value` (such tokens hold
/// values: "Killed process <*> (httpd)" then "(sshd)" is one event).
fn settles(t: &str) -> bool {
    t.bytes().any(|b| b.is_ascii_alphabetic())
        && !t
            .bytes()
            .any(|b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'=' | b'<' | b'>'))
}
