//! Postgres: the pool and migrations. The batch commit that writes deltas with the Kafka
//! offsets they cover is `store::batch`; offsets, prices and the usage tables' writers and
//! readers live beside this file.

mod offsets;
mod owners;
mod prices;
pub mod series_read;
mod usage_read;
pub(crate) mod usage_write;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub(crate) use offsets::advance_offset;
pub use offsets::{CommitError, PartitionCommit};
pub use owners::PartitionRow;
pub use usage_read::ConversationRow;

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// Months whose `ai_operations` partition a committed transaction has seen.
    partitions: Arc<Mutex<HashSet<(i32, u32)>>>,
}

/// A nanosecond Unix time as Postgres binds it.
pub(crate) fn ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

impl Postgres {
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
        })
    }

    /// A pool that connects on first use: Postgres may be down when a process starts.
    pub fn connect_lazy(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy(url)?;
        Ok(Postgres {
            pool,
            partitions: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(&self.pool).await
    }

    /// Months whose `ai_operations` partition a committed transaction has seen.
    pub(crate) fn known_partitions(&self) -> &Mutex<HashSet<(i32, u32)>> {
        &self.partitions
    }
}
