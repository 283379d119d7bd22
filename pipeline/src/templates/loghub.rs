//! Loghub's header formats (`<Date> <Time> <Level> <Component>: <Content>`): the regex that
//! cuts a raw line's header off, leaving the `Content` its templates are labelled on. Used by
//! the Loghub accuracy runs and the check of classic Drain against `drain3`.

use regex::Regex;

/// The regex for a set's `log_format`: each `<Field>` a lazy named group, runs of spaces
/// matching any whitespace.
pub fn header_regex(format: &str) -> Result<Regex, regex::Error> {
    let field = Regex::new(r"<(\w+)>")?;
    let spaces = Regex::new(r" +")?;
    let mut pattern = String::from("^");
    let mut last = 0;
    for m in field.captures_iter(format) {
        let whole = m.get(0).map_or(0..0, |g| g.range());
        pattern.push_str(&spaces.replace_all(&format[last..whole.start], r"\s+"));
        pattern.push_str(&format!("(?P<{}>.*?)", &m[1]));
        last = whole.end;
    }
    pattern.push_str(&spaces.replace_all(&format[last..], r"\s+"));
    pattern.push('$');
    Regex::new(&pattern)
}

/// A raw line's `Content`; the whole (trimmed) line when the header does not match.
pub fn content<'a>(header: &Regex, line: &'a str) -> &'a str {
    let line = line.trim();
    header
        .captures(line)
        .and_then(|c| c.name("Content"))
        .map_or(line, |m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_the_header_off() {
        let re = header_regex("<Date> <Time> <Pid> <Level> <Component>: <Content>").expect("regex");
        let line =
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38 terminating";
        assert_eq!(content(&re, line), "PacketResponder 1 for block blk_38 terminating");
        assert_eq!(content(&re, "  no header here "), "no header here");
    }
}
