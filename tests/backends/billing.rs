//! Billing: re-pricing after a price change, and the report's reconciliation.

use ailogs::store::postgres::PartitionCommit;
use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::usage::{PriceBook, SourcePos, UsageBatch};
use ailogs_pipeline::{Enriched, Level, LogRecord};

use crate::env::TestDb;

fn request(ts_ns: i64, model: &str, input: u64, output: u64, cost_usd: Option<f64>) -> Enriched {
    let mut r = LogRecord::new(ts_ns, "gw", Level::Info, "done");
    r.model = Some(model.into());
    r.workspace_id = Some("w1".into());
    r.conversation_id = Some("c1".into());
    r.input_tokens = Some(input);
    r.output_tokens = Some(output);
    r.cost_usd = cost_usd;
    Enriched::new(r)
}

#[tokio::test]
async fn reprice_applies_new_prices_and_keeps_reconciliation() {
    let db = TestDb::create().await;
    let pg = db.pg().await;
    ailogs::commands::migrate(&pg).await.expect("migrate");
    let now = chrono::Utc::now();
    let ts = now.timestamp_nanos_opt().expect("now") - 60_000_000_000;
    let mut batches = [UsageBatch::default(), UsageBatch::default()];
    let book = pg.load_prices().await.expect("prices");
    for (i, e) in [
        request(ts, "gpt-4o", 1_000_000, 0, None),              // $2.50
        request(ts + 1, "gpt-4o", 0, 100_000, None),            // $1.00
        request(ts + 2, "gpt-4o", 1_000_000, 0, Some(0.5)),     // provider said $0.50: kept
        request(ts + 3, "brand-new-model", 1_000_000, 0, None), // unpriced until a price exists
    ]
    .iter()
    .enumerate()
    {
        batches[i / 2].add(
            e,
            &book,
            SourcePos {
                topic: "t".into(),
                partition: 0,
                offset: i as i64,
            },
        );
    }
    // Two commits, so the conversation row is merged, not just inserted.
    let first = PartitionCommit {
        topic: "t".into(),
        partition: 0,
        expected: None,
        next: 2,
    };
    ailogs::store::batch::commit(
        &pg,
        "g",
        std::slice::from_ref(&first),
        &batches[0],
        &InsightBatch::default(),
    )
    .await
    .expect("first commit");
    assert!(
        matches!(
            ailogs::store::batch::commit(&pg, "g", &[first], &batches[1], &InsightBatch::default()).await,
            Err(ailogs::store::postgres::CommitError::Fenced { .. })
        ),
        "a commit that does not start where the stored offset is, is fenced"
    );
    let second = PartitionCommit {
        topic: "t".into(),
        partition: 0,
        expected: Some(2),
        next: 4,
    };
    ailogs::store::batch::commit(&pg, "g", &[second], &batches[1], &InsightBatch::default())
        .await
        .expect("second commit");
    let (models, lines): (serde_json::Value, i64) =
        sqlx::query_as("SELECT models, lines FROM ai_conversations WHERE conversation_id = 'c1'")
            .fetch_one(pg.pool())
            .await
            .expect("row");
    assert_eq!(models, serde_json::json!({"gpt-4o": 3, "brand-new-model": 1}));
    assert_eq!(lines, 4);
    let month = now.format("%Y-%m").to_string();
    let report = ailogs::billing::report(&pg, &month, None).await.expect("report");
    let cost = |model: &str, r: &ailogs::billing::Report| {
        r.rows
            .iter()
            .find(|x| x.model == model)
            .map(|x| (x.cost_nanousd, x.unpriced_requests))
    };
    assert_eq!(cost("gpt-4o", &report), Some((4_000_000_000, 0)));
    assert_eq!(cost("brand-new-model", &report), Some((0, 1)));

    // New prices from an hour ago: gpt-4o doubles, brand-new-model gets a price.
    let from = ts - 3_600_000_000_000;
    let row = |pattern: &str, input: i64, output: i64| ailogs_pipeline::usage::Price {
        model_pattern: pattern.into(),
        provider: None,
        valid_from_ns: from,
        input_nanousd_per_mtok: input,
        output_nanousd_per_mtok: output,
        cached_input_nanousd_per_mtok: input,
        version: format!("{pattern}@test"),
    };
    pg.seed_prices(&PriceBook::new(vec![
        row("gpt-4o", 5_000_000_000, 20_000_000_000),
        row("brand-new-model", 1_000_000_000, 0),
    ]))
    .await
    .expect("new prices");
    let r = ailogs::billing::reprice(&pg, now - chrono::Duration::hours(2), now + chrono::Duration::hours(1))
        .await
        .expect("reprice");
    assert_eq!((r.operations, r.changed), (4, 3));
    assert_eq!(
        (r.cost_before_nanousd, r.cost_after_nanousd),
        (4_000_000_000, 8_500_000_000)
    );
    let report = ailogs::billing::report(&pg, &month, None).await.expect("report");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(
        cost("gpt-4o", &report),
        Some((7_500_000_000, 0)),
        "5.00 + 2.00 + the provider's 0.50"
    );
    assert_eq!(cost("brand-new-model", &report), Some((1_000_000_000, 0)));
    let conv: i64 = sqlx::query_scalar("SELECT cost_nanousd FROM ai_conversations WHERE conversation_id = 'c1'")
        .fetch_one(pg.pool())
        .await
        .expect("conversation");
    assert_eq!(conv, 8_500_000_000);
    db.drop_db().await;
}
