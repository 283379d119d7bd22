//! A consumer batch made durable: its deltas (usage, operations, conversations, pattern
//! hits, templates, completed requests) and its partitions' offsets in one transaction.
//!
//! Offsets are fenced: the batch commits only if each partition's stored offset is still
//! the one the batch started from; otherwise nothing of it is written (`CommitError::Fenced`)
//! and the consumer re-reads.

use ailogs_pipeline::insight_delta::InsightBatch;
use ailogs_pipeline::usage::UsageBatch;

use super::postgres::usage_write::{
    ensure_partitions, operation_months, write_conversations, write_operations, write_usage,
};
use super::postgres::{CommitError, PartitionCommit, Postgres, advance_offset};

pub async fn commit(
    pg: &Postgres,
    group: &str,
    commits: &[PartitionCommit],
    batch: &UsageBatch,
    insights: &InsightBatch,
) -> Result<(), CommitError> {
    // Partitions first, in their own statements: DDL inside the batch transaction would
    // make concurrent consumers wait on (or fail against) each other's creation.
    let new_months: Vec<(i32, u32)> = {
        let known = pg.known_partitions().lock();
        operation_months(batch)
            .into_iter()
            .filter(|m| !known.contains(m))
            .collect()
    };
    ensure_partitions(pg.pool(), &new_months).await?;
    pg.known_partitions().lock().extend(new_months);
    let mut tx = pg.pool().begin().await?;
    for c in commits {
        advance_offset(&mut tx, group, c).await?;
    }
    write_usage(&mut tx, batch).await?;
    write_operations(&mut tx, batch).await?;
    write_conversations(&mut tx, batch).await?;
    super::insights::write(&mut tx, insights).await?;
    super::correlations::write(&mut tx, &insights.correlations).await?;
    tx.commit().await?;
    Ok(())
}
