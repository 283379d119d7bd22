//! Consumer offsets: read at assignment, advanced inside each batch's transaction, fenced
//! on the offset the batch started from. A consumer that lost its partitions in a
//! rebalance (or a zombie after a crash) cannot double-count: its commit is refused.

use std::collections::HashMap;

use sqlx::{Postgres as Pg, Row, Transaction};

use super::Postgres;

/// One partition's part of a batch: the offset it started from (as stored, `None` when the
/// partition had no stored offset) and the offset after its last message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionCommit {
    pub topic: String,
    pub partition: i32,
    pub expected: Option<i64>,
    pub next: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("partition {topic}/{partition} was advanced by another consumer")]
    Fenced { topic: String, partition: i32 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl Postgres {
    /// Stored next offsets of a group's partitions of `topic`.
    pub async fn stored_offsets(&self, group: &str, topic: &str) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2")
                .bind(group)
                .bind(topic)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get::<i32, _>(0), r.get::<i64, _>(1))).collect())
    }
}

pub(crate) async fn advance_offset(
    tx: &mut Transaction<'_, Pg>,
    group: &str,
    c: &PartitionCommit,
) -> Result<(), CommitError> {
    let affected = match c.expected {
        None => sqlx::query(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(&c.topic)
        .bind(c.partition)
        .bind(c.next)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        Some(expected) => sqlx::query(
            "UPDATE consumer_offsets SET next_offset = $4, updated_at = now() \
             WHERE group_id = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
        )
        .bind(group)
        .bind(&c.topic)
        .bind(c.partition)
        .bind(c.next)
        .bind(expected)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    };
    if affected == 1 {
        Ok(())
    } else {
        Err(CommitError::Fenced {
            topic: c.topic.clone(),
            partition: c.partition,
        })
    }
}
