//! Partition owners as consumers report them (`partition_owners`), and each partition's
//! progress read back beside its stored offset, for `/health` and the consumers' own check.

use sqlx::Row;

use super::Postgres;

/// One partition as Postgres knows it: its reported owner, the end of the partition last
/// seen, and how far the group's stored offset got.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionRow {
    pub partition: i32,
    pub owner: Option<String>,
    /// Seconds since the owner last reported it (None: never owned).
    pub heartbeat_age_s: Option<f64>,
    pub high_watermark: i64,
    /// None: nothing committed yet.
    pub stored_offset: Option<i64>,
    /// Seconds since the stored offset last moved.
    pub progressed_age_s: Option<f64>,
}

impl Postgres {
    /// Records what one consumer owns (heartbeat now) and every partition's end it sees.
    pub async fn report_owners(
        &self,
        group: &str,
        topic: &str,
        owner: &str,
        owned: &[i32],
        ends: &[(i32, i64)],
    ) -> Result<(), sqlx::Error> {
        let (parts, highs): (Vec<i32>, Vec<i64>) = ends.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO partition_owners (group_id, topic, partition, high_watermark, seen_at) \
             SELECT $1, $2, p, h, now() FROM UNNEST($3::int4[], $4::int8[]) AS t(p, h) \
             ON CONFLICT (group_id, topic, partition) DO UPDATE SET \
             high_watermark = GREATEST(partition_owners.high_watermark, EXCLUDED.high_watermark), seen_at = now()",
        )
        .bind(group)
        .bind(topic)
        .bind(&parts)
        .bind(&highs)
        .execute(self.pool())
        .await?;
        sqlx::query(
            "INSERT INTO partition_owners (group_id, topic, partition, owner, heartbeat_at) \
             SELECT $1, $2, p, $3, now() FROM UNNEST($4::int4[]) AS t(p) \
             ON CONFLICT (group_id, topic, partition) DO UPDATE SET owner = $3, heartbeat_at = now()",
        )
        .bind(group)
        .bind(topic)
        .bind(owner)
        .bind(owned)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every partition reported or committed for the group's topic, by partition.
    pub async fn partition_rows(&self, group: &str, topic: &str) -> Result<Vec<PartitionRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT COALESCE(o.partition, c.partition), o.owner, \
             EXTRACT(EPOCH FROM now() - o.heartbeat_at)::float8, COALESCE(o.high_watermark, 0), \
             c.next_offset, EXTRACT(EPOCH FROM now() - c.updated_at)::float8 \
             FROM (SELECT * FROM partition_owners WHERE group_id = $1 AND topic = $2) o \
             FULL JOIN (SELECT * FROM consumer_offsets WHERE group_id = $1 AND topic = $2) c \
             ON o.partition = c.partition ORDER BY 1",
        )
        .bind(group)
        .bind(topic)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| PartitionRow {
                partition: r.get(0),
                owner: r.get(1),
                heartbeat_age_s: r.get(2),
                high_watermark: r.get(3),
                stored_offset: r.get(4),
                progressed_age_s: r.get(5),
            })
            .collect())
    }
}
