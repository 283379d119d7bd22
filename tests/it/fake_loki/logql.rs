//! The LogQL subset the fake Loki honours, parsed on its own (not with the builder it
//! checks): selector with `=`/`=~`/`!=`/`!~` (anchored, at least one matcher refusing the empty
//! value), line filters `|=` `!=` `|~` `!~`, `| json`, `| logfmt`, label equality. Anything
//! else is refused.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::Entry;

struct Matcher {
    name: String,
    op: String,
    value: String,
    re: Option<Regex>,
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match (self.op.as_str(), &self.re) {
            ("=", _) => v == self.value,
            ("!=", _) => v != self.value,
            ("=~", Some(re)) => re.is_match(v),
            ("!~", Some(re)) => !re.is_match(v),
            _ => false,
        }
    }
}

enum Stage {
    Contains(String),
    NotContains(String),
    Matches(Regex),
    NotMatches(Regex),
    Json,
    Logfmt,
    Label(Matcher),
}

pub struct Query {
    selector: Vec<Matcher>,
    stages: Vec<Stage>,
}

impl Query {
    /// Whether the stream selector picks a stream with these labels.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .iter()
            .all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
    }

    pub fn keeps(&self, labels: &BTreeMap<String, String>, e: &Entry) -> bool {
        let mut fields: BTreeMap<String, String> = labels.clone();
        fields.extend(e.metadata.clone());
        for s in &self.stages {
            let ok = match s {
                Stage::Contains(t) => e.line.contains(t.as_str()),
                Stage::NotContains(t) => !e.line.contains(t.as_str()),
                Stage::Matches(re) => re.is_match(&e.line),
                Stage::NotMatches(re) => !re.is_match(&e.line),
                Stage::Json => {
                    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&e.line) {
                        for (k, v) in o {
                            let v = match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            fields.entry(k).or_insert(v);
                        }
                    }
                    true
                }
                Stage::Logfmt => {
                    for pair in e.line.split_whitespace() {
                        if let Some((k, v)) = pair.split_once('=') {
                            fields.entry(k.to_owned()).or_insert(v.trim_matches('"').to_owned());
                        }
                    }
                    true
                }
                Stage::Label(m) => m.matches(fields.get(&m.name).map_or("", String::as_str)),
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The LogQL subset above; anything else is refused.
pub fn parse_logql(q: &str) -> Result<Query, String> {
    let mut lx = Lexer { s: q, i: 0 };
    lx.expect("{")?;
    let mut selector = Vec::new();
    loop {
        lx.ws();
        if lx.eat("}") {
            break;
        }
        let name = lx.ident()?;
        let op = lx.op(&["=~", "!~", "!=", "="])?;
        let value = lx.string()?;
        selector.push(matcher(name, op, value, true)?);
        lx.ws();
        if !lx.eat(",") {
            lx.expect("}")?;
            break;
        }
    }
    if selector.iter().all(|m| m.matches("")) {
        return Err("parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".into());
    }
    let mut stages = Vec::new();
    loop {
        lx.ws();
        if lx.i == q.len() {
            break;
        }
        if lx.eat("|=") {
            stages.push(Stage::Contains(lx.string()?));
        } else if lx.eat("!=") {
            stages.push(Stage::NotContains(lx.string()?));
        } else if lx.eat("|~") {
            stages.push(Stage::Matches(regex(&lx.string()?)?));
        } else if lx.eat("!~") {
            stages.push(Stage::NotMatches(regex(&lx.string()?)?));
        } else if lx.eat("|") {
            lx.ws();
            let word = lx.ident()?;
            match word.as_str() {
                "json" => stages.push(Stage::Json),
                "logfmt" => stages.push(Stage::Logfmt),
                _ => {
                    let op = lx.op(&["=~", "!~", "!=", "="])?;
                    let value = lx.string()?;
                    stages.push(Stage::Label(matcher(word, op, value, true)?));
                }
            }
        } else {
            return Err(format!(
                "parse error at position {}: this fake Loki does not understand {:?}",
                lx.i,
                &q[lx.i..]
            ));
        }
    }
    Ok(Query { selector, stages })
}

fn matcher(name: String, op: &str, value: String, anchored: bool) -> Result<Matcher, String> {
    let re = if op.contains('~') {
        Some(regex(&if anchored {
            format!("^(?:{value})$")
        } else {
            value.clone()
        })?)
    } else {
        None
    };
    Ok(Matcher {
        name,
        op: op.to_owned(),
        value,
        re,
    })
}

fn regex(re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("parse error : invalid regex {re:?}: {e}"))
}

struct Lexer<'a> {
    s: &'a str,
    i: usize,
}

impl Lexer<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with([' ', '\t', '\n']) {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: &str) -> Result<(), String> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(format!("parse error at position {}: expected {t:?}", self.i))
        }
    }
    fn op(&mut self, ops: &[&'static str]) -> Result<&'static str, String> {
        ops.iter()
            .copied()
            .find(|o| self.eat(o))
            .ok_or_else(|| format!("parse error at position {}: expected an operator", self.i))
    }
    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let rest = &self.s[self.i..];
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if n == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("parse error at position {}: expected a label name", self.i));
        }
        self.i += n;
        Ok(rest[..n].to_owned())
    }
    /// `"..."` with Go escapes, or a backtick raw string.
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let rest = &self.s[self.i..];
        if let Some(raw) = rest.strip_prefix('`') {
            let end = raw.find('`').ok_or("parse error: unterminated raw string")?;
            self.i += end + 2;
            return Ok(raw[..end].to_owned());
        }
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("parse error at position {}: expected a string", self.i))?;
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += 1 + at + 1;
                    return Ok(out);
                }
                '\n' => return Err("parse error: newline in string".into()),
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                        let cp = u32::from_str_radix(&hex, 16).map_err(|_| "parse error: bad \\u escape")?;
                        out.push(char::from_u32(cp).ok_or("parse error: bad \\u escape")?);
                    }
                    other => return Err(format!("parse error: unknown escape {other:?}")),
                },
                c => out.push(c),
            }
        }
        Err("parse error: unterminated string".into())
    }
}
