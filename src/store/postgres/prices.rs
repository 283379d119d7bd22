//! Model prices: the shipped book seeded into `model_prices`, and read back.

use ailogs_pipeline::usage::{Price, PriceBook};
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Postgres, ts};

impl Postgres {
    /// Inserts price rows that are not there yet; returns how many were added.
    pub async fn seed_prices(&self, book: &PriceBook) -> Result<u64, sqlx::Error> {
        let mut added = 0;
        for p in book.prices() {
            added += sqlx::query(
                "INSERT INTO model_prices (model_pattern, provider, valid_from, input_nanousd_per_mtok, \
                 output_nanousd_per_mtok, cached_input_nanousd_per_mtok, version) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (model_pattern, valid_from) DO NOTHING",
            )
            .bind(&p.model_pattern)
            .bind(&p.provider)
            .bind(ts(p.valid_from_ns))
            .bind(p.input_nanousd_per_mtok)
            .bind(p.output_nanousd_per_mtok)
            .bind(p.cached_input_nanousd_per_mtok)
            .bind(&p.version)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(added)
    }

    pub async fn load_prices(&self) -> Result<PriceBook, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT model_pattern, provider, valid_from, input_nanousd_per_mtok, output_nanousd_per_mtok, \
             cached_input_nanousd_per_mtok, version FROM model_prices",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(PriceBook::new(
            rows.iter()
                .map(|r| Price {
                    model_pattern: r.get(0),
                    provider: r.get(1),
                    valid_from_ns: r.get::<DateTime<Utc>, _>(2).timestamp_nanos_opt().unwrap_or(i64::MIN),
                    input_nanousd_per_mtok: r.get(3),
                    output_nanousd_per_mtok: r.get(4),
                    cached_input_nanousd_per_mtok: r.get(5),
                    version: r.get(6),
                })
                .collect(),
        ))
    }
}
