//! Generated LogQL checked with Grafana's own grammar (`@grafana/lezer-logql`, run by node):
//! every query parses with no error node, and values full of quotes, backslashes, backticks,
//! braces, pipes, newlines and unicode appear only inside string literals.
//!
//! Needs node and the grammar: `AILOGS_TEST_NODE_DIR` (scripts/test installs it in
//! target/node). Fails, naming what is missing, without them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ailogs_pipeline::loki::logql::{IdsIn, LogQuery, Parser, Selector, written_verbatim};
use ailogs_pipeline::record::Level;

const NASTY: [&str; 14] = [
    "plain",
    "quote\"inside",
    "back\\slash",
    "trailing\\",
    "`backtick`",
    "brace}{",
    "pipe | json | line_format \"{{.x}}\"",
    "new\nline",
    "tab\tand\rreturn",
    "unicode ✓ é 中文 🚀",
    "\"} |= \"injected",
    "re.+(a|b)*[x]",
    "\u{7f}\u{1}control",
    "=~!=",
];

fn build(services: &[String], contains: &[String], id: &str, ids_in: IdsIn, workspaces: &[String]) -> String {
    let selector = Selector::default();
    LogQuery {
        selector: &selector,
        services,
        contains,
        excludes: contains,
        exclude_regexes: &[],
        parser: (ids_in != IdsIn::Text).then_some(Parser::Json),
        ids: &[("correlation_id", id.to_owned())],
        ids_in,
        min_level: Some(Level::Warn),
        workspaces: Some(workspaces),
    }
    .build()
}

#[test]
fn generated_queries_parse_with_grafanas_grammar_and_keep_user_text_in_strings() {
    let dir = std::env::var("AILOGS_TEST_NODE_DIR").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/node")
            .to_string_lossy()
            .into_owned()
    });
    assert!(
        Path::new(&dir).join("node_modules/@grafana/lezer-logql").exists(),
        "@grafana/lezer-logql is not installed in {dir} (./scripts/test installs it with npm)"
    );
    let mut lines = String::new();
    for (i, a) in NASTY.iter().enumerate() {
        for (j, b) in NASTY.iter().enumerate() {
            let ids_in = [IdsIn::Line, IdsIn::Metadata, IdsIn::Text][(i + j) % 3];
            let services: Vec<String> = if i % 3 == 0 {
                vec![a.to_string()]
            } else {
                vec![a.to_string(), b.to_string()]
            };
            let contains = vec![b.to_string()];
            let plain_services: Vec<String> = services.iter().map(|_| "x".to_owned()).collect();
            // A scope of workspaces is user text too (key holders name them).
            let workspaces = vec![b.to_string()];
            let query = build(&services, &contains, a, ids_in, &workspaces);
            // As line text, an id a logger would escape is left out of the query: so is the
            // plain one then.
            let plain_id = if ids_in == IdsIn::Text && !written_verbatim(a) {
                "\""
            } else {
                "x"
            };
            let plain_workspace = if written_verbatim(b) { "x" } else { "\"" };
            let plain = build(
                &plain_services,
                &["x".to_owned()],
                plain_id,
                ids_in,
                &[plain_workspace.to_owned()],
            );
            lines.push_str(&serde_json::json!({"query": query, "plain": plain}).to_string());
            lines.push('\n');
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logql_grammar.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .env("LEZER_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for this test");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write queries");
    let out = child.wait_with_output().expect("node ran");
    assert!(out.status.success(), "node: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(results.len(), NASTY.len() * NASTY.len());
    let bad: Vec<&serde_json::Value> = results.iter().filter(|r| r["ok"] != true).collect();
    assert!(bad.is_empty(), "{} queries wrong, first: {}", bad.len(), bad[0]);
}
