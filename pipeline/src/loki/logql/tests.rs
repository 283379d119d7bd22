use proptest::prelude::*;

use super::*;

/// A LogQL lexer as far as structure goes: string literals (Go escapes undone) apart, every
/// other non-space character a token of its own.
fn lex(q: &str) -> (Vec<String>, Vec<String>) {
    let (mut structure, mut strings) = (Vec::new(), Vec::new());
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('"') => s.push('"'),
                        Some('\\') => s.push('\\'),
                        Some('u') => {
                            let hex: String = chars.by_ref().take(4).collect();
                            let code = u32::from_str_radix(&hex, 16).expect("\\u hex");
                            s.push(char::from_u32(code).expect("char"));
                        }
                        other => panic!("unknown escape {other:?} in {q}"),
                    },
                    Some('"') => break,
                    Some(c) => s.push(c),
                    None => panic!("unterminated string in {q}"),
                }
            }
            structure.push("STR".to_owned());
            strings.push(s);
        } else if !c.is_whitespace() {
            structure.push(c.to_string());
        }
    }
    (structure, strings)
}

fn query<'a>(
    sel: &'a Selector,
    services: &'a [String],
    contains: &'a [String],
    ids: &'a [(&'a str, String)],
    ids_in: IdsIn,
) -> String {
    LogQuery {
        selector: sel,
        services,
        contains,
        excludes: contains,
        exclude_regexes: &[],
        parser: Some(Parser::Json),
        ids,
        ids_in,
        min_level: Some(Level::Error),
        workspaces: None,
    }
    .build()
}

fn q_parts(sel: &Selector) -> LogQuery<'_> {
    LogQuery {
        selector: sel,
        services: &[],
        contains: &[],
        excludes: &[],
        exclude_regexes: &[],
        parser: Some(Parser::Json),
        ids: &[],
        ids_in: IdsIn::Line,
        min_level: None,
        workspaces: None,
    }
}

#[test]
fn a_query_reads_as_logql() {
    let sel = Selector::default();
    let q = LogQuery {
        selector: &sel,
        services: &["api".into()],
        contains: &["timeout".into()],
        excludes: &["health".into()],
        exclude_regexes: &["GET /ready$".into()],
        parser: Some(Parser::Json),
        ids: &[("correlation_id", "req-1".into())],
        ids_in: IdsIn::Line,
        min_level: Some(Level::Fatal),
        workspaces: None,
    }
    .build();
    assert_eq!(
        q,
        r#"{service_name="api"} |= "timeout" |= "req-1" != "health" !~ "GET /ready$" | json | correlation_id="req-1" | level=~"(?i)fatal|critical|crit|panic|emerg|alert""#
    );
    assert!(checked_regex("(?<=x)y").is_err(), "look-behind is not RE2");
    let any = LogQuery {
        services: &["".into()],
        contains: &[],
        excludes: &[],
        exclude_regexes: &[],
        ids: &[],
        min_level: None,
        ..q_parts(&sel)
    }
    .build();
    assert_eq!(
        any, r#"{service_name=~".+"} | json"#,
        "an empty name never makes an empty-compatible selector"
    );
}

proptest! {
    /// Quotes, backslashes, backticks, braces, pipes, newlines, unicode: whatever the values,
    /// the query has the structure it has with plain values, and each string literal holds
    /// exactly the value given.
    #[test]
    fn values_never_change_the_structure(
        services in prop::collection::vec("\\PC{1,12}|[\"\\\\`{}|\\n=~!]{1,6}", 1..4),
        contains in prop::collection::vec(any::<String>(), 0..3),
        id in any::<String>(),
        mode in any::<u8>(),
    ) {
        let sel = Selector::default();
        let ids_in = [IdsIn::Line, IdsIn::Metadata, IdsIn::Text][mode as usize % 3];
        let ids = [("correlation_id", id.clone())];
        let plain_services: Vec<String> = services.iter().map(|_| "x".to_owned()).collect();
        let plain_contains: Vec<String> = contains.iter().map(|_| "x".to_owned()).collect();
        // As line text, a value a logger would escape is left out of the query (both ways).
        let dropped = ids_in == IdsIn::Text && !written_verbatim(&id);
        let plain_ids = [("correlation_id", if dropped { "\"" } else { "x" }.to_owned())];
        let (structure, strings) = lex(&query(&sel, &services, &contains, &ids, ids_in));
        let (plain, _) = lex(&query(&sel, &plain_services, &plain_contains, &plain_ids, ids_in));
        prop_assert_eq!(&structure, &plain);
        // The selector's value: the service, or an anchored alternation matching exactly them.
        if services.len() == 1 {
            prop_assert_eq!(&strings[0], &services[0]);
        } else {
            let re = Regex::new(&format!("^(?:{})$", strings[0])).expect("valid RE2");
            for s in &services {
                prop_assert!(re.is_match(s), "{:?} does not match {:?}", strings[0], s);
            }
        }
        for c in &contains {
            prop_assert!(strings.contains(c));
        }
        prop_assert_eq!(strings.contains(&id), !dropped || contains.contains(&id));
    }
}

#[test]
fn without_a_parser_ids_and_levels_are_line_text() {
    let sel = Selector::default();
    let q = LogQuery {
        services: &["api".into()],
        ids: &[("correlation_id", "req-1".into())],
        ids_in: IdsIn::Text,
        parser: None,
        min_level: Some(Level::Fatal),
        ..q_parts(&sel)
    }
    .build();
    assert_eq!(
        q,
        r#"{service_name="api"} |= "req-1" |~ "(?i)fatal|critical|crit|panic|emerg|alert""#
    );
}

#[test]
fn as_line_text_only_values_a_logger_writes_verbatim_narrow_the_query() {
    let sel = Selector::default();
    let ids = [("correlation_id", "a\"b".to_owned()), ("session_id", "s-1".to_owned())];
    let q = LogQuery {
        ids: &ids,
        ids_in: IdsIn::Text,
        parser: None,
        ..q_parts(&sel)
    }
    .build();
    assert_eq!(q, r#"{service_name=~".+"} |= "s-1""#);
}

#[test]
fn a_scope_becomes_a_line_filter_or_a_metadata_matcher() {
    let sel = Selector::default();
    let ws = ["ws-a".to_owned(), "ws.b".to_owned()];
    let q = LogQuery {
        workspaces: Some(&ws),
        ..q_parts(&sel)
    }
    .build();
    assert_eq!(q, r#"{service_name=~".+"} |~ "ws\\-a|ws\\.b" | json"#);
    let q = LogQuery {
        workspaces: Some(&ws),
        ids_in: IdsIn::Metadata,
        ..q_parts(&sel)
    }
    .build();
    assert_eq!(
        q,
        r#"{service_name=~".+"} | workspace_id=~"^(?:ws\\-a|ws\\.b)$" | json"#
    );
}
