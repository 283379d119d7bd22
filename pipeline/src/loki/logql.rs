//! LogQL built, never spliced: every value a user gave reaches the query only inside a string
//! literal quoted as Go's `strconv.Quote` does (Loki's parser unquotes PromQL/Go strings), and
//! a regex only after it compiled as RE2 syntax. The query's structure is fixed by the
//! builder, whatever the values hold.

use regex::Regex;

use crate::record::Level;

/// A LogQL string literal for any text: `"` and `\` escaped, control characters as `\n`,
/// `\t`, `\r` or `\u00XX`, everything else (printable Unicode) as it is.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A regex a user wrote is refused unless it compiles with RE2's syntax (no look-around, no
/// backreferences: the `regex` crate's syntax is RE2's).
pub fn checked_regex(re: &str) -> Result<&str, regex::Error> {
    Regex::new(re).map(|_| re)
}

/// How the lines of one service are found: which stream label holds the service name.
#[derive(Debug, Clone)]
pub struct Selector {
    pub service_label: String,
}

impl Default for Selector {
    fn default() -> Self {
        Selector {
            service_label: "service_name".into(),
        }
    }
}

/// Where the lines carry their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdsIn {
    /// Loki structured metadata (filterable before any parser).
    Metadata,
    /// A field of the line, after `| json` or `| logfmt` (and as line text before it).
    Line,
    /// Anywhere in the line text only: a superset of the lines whose field holds the id,
    /// whatever the field is called (`trace_id`, `request_id`, ...), so no parser is needed.
    /// Values a logger would escape (quotes, backslashes, control or non-ASCII characters)
    /// are left out: the caller filters on them exactly.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    Json,
    Logfmt,
}

/// One log query; `build` renders it.
#[derive(Debug, Clone)]
pub struct LogQuery<'a> {
    pub selector: &'a Selector,
    /// Services wanted (none: every stream that has the service label).
    pub services: &'a [String],
    /// Lines must contain each of these.
    pub contains: &'a [String],
    /// Lines must not contain any of these.
    pub excludes: &'a [String],
    /// Lines must not match these (already checked with `checked_regex`).
    pub exclude_regexes: &'a [String],
    /// `None`: no parser; levels are then matched as words of the line.
    pub parser: Option<Parser>,
    /// (field, value) pairs a line must carry, e.g. ("correlation_id", "req-1").
    pub ids: &'a [(&'a str, String)],
    pub ids_in: IdsIn,
    pub min_level: Option<Level>,
    /// The caller's workspaces (none: all). Lines of other workspaces are not read: the
    /// line must name one of these (or, with ids in metadata, its `workspace_id` must be one).
    pub workspaces: Option<&'a [String]>,
}

impl LogQuery<'_> {
    pub fn build(&self) -> String {
        let label = &self.selector.service_label;
        // Loki refuses a selector whose every matcher accepts the empty value: empty names go.
        let services: Vec<&String> = self.services.iter().filter(|s| !s.is_empty()).collect();
        let mut q = match services.as_slice() {
            [] => format!("{{{label}=~\".+\"}}"),
            [one] => format!("{{{label}={}}}", string_literal(one)),
            many => {
                let alternatives: Vec<String> = many.iter().map(|s| regex::escape(s)).collect();
                format!("{{{label}=~{}}}", string_literal(&alternatives.join("|")))
            }
        };
        // Line filters first: they are the cheapest, and an id must appear in the line when
        // the line carries it.
        for s in self.contains {
            q.push_str(&format!(" |= {}", string_literal(s)));
        }
        if matches!(self.ids_in, IdsIn::Line | IdsIn::Text) {
            // As line text, a value is only where the line writes it as it is: loggers escape
            // quotes, backslashes and control characters (and some, non-ASCII) inside their
            // JSON or logfmt, so such a value narrows nothing safely and is left to the caller.
            let narrows = |v: &&(&str, String)| self.ids_in == IdsIn::Line || written_verbatim(&v.1);
            for (_, v) in self.ids.iter().filter(narrows) {
                q.push_str(&format!(" |= {}", string_literal(v)));
            }
        }
        let workspaces = self.workspace_alternatives();
        if let Some(alt) = workspaces.as_deref().filter(|_| self.ids_in != IdsIn::Metadata) {
            q.push_str(&format!(" |~ {}", string_literal(alt)));
        }
        for s in self.excludes {
            q.push_str(&format!(" != {}", string_literal(s)));
        }
        for re in self.exclude_regexes {
            q.push_str(&format!(" !~ {}", string_literal(re)));
        }
        if self.ids_in == IdsIn::Metadata {
            for (field, v) in self.ids {
                q.push_str(&format!(" | {}={}", label_name(field), string_literal(v)));
            }
            if let Some(alt) = &workspaces {
                q.push_str(&format!(" | workspace_id=~{}", string_literal(&format!("^(?:{alt})$"))));
            }
        }
        match self.parser {
            Some(Parser::Json) => q.push_str(" | json"),
            Some(Parser::Logfmt) => q.push_str(" | logfmt"),
            None => {}
        }
        if self.ids_in == IdsIn::Line {
            for (field, v) in self.ids {
                q.push_str(&format!(" | {}={}", label_name(field), string_literal(v)));
            }
        }
        if let Some(min) = self.min_level {
            let names: Vec<&str> = Level::ALL
                .iter()
                .filter(|l| **l >= min)
                .flat_map(|l| level_spellings(*l))
                .copied()
                .collect();
            let pattern = string_literal(&format!("(?i){}", names.join("|")));
            if self.parser.is_some() {
                q.push_str(&format!(" | level=~{pattern}"));
            } else {
                // Without a parser the level is a word of the line: every line at these
                // levels carries one of them, so this keeps a superset.
                q.push_str(&format!(" |~ {pattern}"));
            }
        }
        q
    }
}

impl LogQuery<'_> {
    /// The workspaces as one RE2 alternation, when every id is written verbatim in a line
    /// (otherwise the filter could drop a line of the scope; the caller's exact check stays).
    fn workspace_alternatives(&self) -> Option<String> {
        let ws = self.workspaces.filter(|w| !w.is_empty())?;
        if !ws.iter().all(|w| written_verbatim(w)) {
            return None;
        }
        Some(ws.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|"))
    }
}

/// Whether loggers write `value` into a JSON or logfmt line as it is: printable ASCII
/// without quotes or backslashes (which they escape; some escape non-ASCII too).
pub fn written_verbatim(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// A field name as a LogQL label: what `| json` makes of it (characters outside
/// `[a-zA-Z0-9_]` become `_`), never user text.
fn label_name(field: &str) -> String {
    let mut s: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn level_spellings(l: Level) -> &'static [&'static str] {
    match l {
        Level::Trace => &["trace"],
        Level::Debug => &["debug", "dbug"],
        Level::Info => &["info", "information"],
        Level::Warn => &["warn", "warning"],
        Level::Error => &["error", "err", "eror"],
        Level::Fatal => &["fatal", "critical", "crit", "panic", "emerg", "alert"],
    }
}

#[cfg(test)]
mod tests;
