//! Custom patterns persist in Postgres and reach every process that loads the catalog.

use ailogs::patterns::{PatternService, Source};
use ailogs_pipeline::patterns::{Category, PatternDef, Severity};
use ailogs_pipeline::{Level, LogRecord};

use crate::env::TestDb;

fn custom(id: &str, regex: &str) -> PatternDef {
    PatternDef {
        id: id.into(),
        regex: regex.into(),
        severity: Severity::High,
        category: Category::Ai,
        suggestion: "check the agent loop".into(),
        condition: None,
        examples: Default::default(),
    }
}

#[tokio::test]
async fn custom_patterns_persist_and_load_in_other_processes() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    pg.migrate().await.expect("migrate");
    let one = PatternService::load(Some(pg.clone())).await.expect("load");
    assert!(one.put(custom("agent_loop", "agent loop detected")).await.expect("put"));
    assert!(one.put(custom("b_custom", "zzz")).await.expect("put"));
    one.remove("b_custom").await.expect("remove");
    assert!(one.put(custom("bad", "(unclosed")).await.is_err());

    // A second process (same database) starts with the stored custom pattern.
    let two = PatternService::load(Some(pg.clone())).await.expect("load");
    let customs: Vec<String> = two
        .list()
        .await
        .into_iter()
        .filter(|(_, s)| *s == Source::Custom)
        .map(|(p, _)| p.id)
        .collect();
    assert_eq!(customs, ["agent_loop"]);
    let mut scanner = two.matcher().scanner();
    let rec = LogRecord::new(0, "agent", Level::Warn, "Agent loop detected after 12 tool calls");
    assert_eq!(scanner.scan(&rec)[0].id.as_ref(), "agent_loop");
    db.drop_db().await;
}
