//! Custom patterns in Postgres (`custom_patterns`).

use ailogs_pipeline::patterns::PatternDef;

use super::postgres::Postgres;

/// Every custom pattern, by id. A row that no longer parses (written by another version)
/// is skipped with a warning rather than blocking the catalog.
pub async fn load(pg: &Postgres) -> Result<Vec<PatternDef>, sqlx::Error> {
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT id, definition FROM custom_patterns ORDER BY id")
            .fetch_all(pg.pool())
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, v)| match serde_json::from_value(v) {
            Ok(def) => Some(def),
            Err(e) => {
                tracing::warn!(id, error = %e, "skipping a custom pattern that does not parse");
                None
            }
        })
        .collect())
}

pub async fn upsert(pg: &Postgres, def: &PatternDef) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(def).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO custom_patterns (id, definition) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()",
    )
    .bind(&def.id)
    .bind(json)
    .execute(pg.pool())
    .await?;
    Ok(())
}

/// Whether a row was deleted.
pub async fn delete(pg: &Postgres, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM custom_patterns WHERE id = $1")
        .bind(id)
        .execute(pg.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}
