//! Rows for the aggregated metrics (`GET /api/v1/ai_logs/metrics`): the window's AI requests
//! from `ai_operations` and its pattern hits from `detected_patterns`, streamed into the
//! pipeline's `Series` one row at a time, so memory does not grow with the window.

use ailogs_pipeline::patterns::Category;
use ailogs_pipeline::usage::series::{Request, Series, failed};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::Row;

use super::{Postgres, ts};

/// Which rows of the window count.
pub struct SeriesFilter<'a> {
    pub start_ns: i64,
    pub end_ns: i64,
    /// Empty: every service.
    pub services: &'a [String],
    pub workspace_id: Option<&'a str>,
    /// Empty: every model.
    pub models: &'a [String],
    /// The caller's workspaces.
    pub scope: &'a ailogs_pipeline::scope::Scope,
}

impl Postgres {
    /// Folds the window's requests and pattern hits into `series`; `category` names a
    /// pattern id's category (None: a pattern no longer in the catalog, left out).
    pub async fn fold_series(
        &self,
        filter: &SeriesFilter<'_>,
        series: &mut Series,
        category: impl Fn(&str) -> Option<Category>,
    ) -> Result<(), sqlx::Error> {
        let (scope_ids, unscoped) = super::usage_read::scope_binds(filter.scope);
        let mut rows = sqlx::query(
            "SELECT event_time, service, model, workspace_id, COALESCE(request_type, 'unknown'), success, \
             error IS NOT NULL, input_tokens, output_tokens, cost_nanousd, priced, duration_ms FROM ai_operations \
             WHERE event_time >= $1 AND event_time < $2 \
             AND (cardinality($3::text[]) = 0 OR service = ANY($3)) \
             AND ($4::text IS NULL OR workspace_id = $4) \
             AND (cardinality($5::text[]) = 0 OR model = ANY($5)) \
             AND ($6::text[] IS NULL OR workspace_id = ANY($6) OR ($7 AND workspace_id = $8))",
        )
        .bind(ts(filter.start_ns))
        .bind(ts(filter.end_ns))
        .bind(filter.services)
        .bind(filter.workspace_id)
        .bind(filter.models)
        .bind(scope_ids)
        .bind(unscoped)
        .bind(ailogs_pipeline::usage::NO_WORKSPACE)
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let (service, model, workspace, operation): (String, String, String, String) =
                (r.get(1), r.get(2), r.get(3), r.get(4));
            series.add_request(&Request {
                ts_ns: r.get::<DateTime<Utc>, _>(0).timestamp_nanos_opt().unwrap_or(0),
                service: &service,
                model: &model,
                workspace_id: &workspace,
                operation: &operation,
                failed: failed(r.get(5), r.get(6)),
                input_tokens: r.get(7),
                output_tokens: r.get(8),
                cost_nanousd: r.get(9),
                priced: r.get(10),
                duration_ms: r.get(11),
            });
        }
        // Pattern hits are per service; a workspace or model filter cannot narrow them, and
        // they count every workspace's lines: a scoped caller does not get them.
        if !filter.scope.is_all() {
            return Ok(());
        }
        let mut hits = sqlx::query(
            "SELECT minute, service, pattern_id, count FROM detected_patterns \
             WHERE minute >= date_trunc('minute', $1::timestamptz) AND minute < $2 \
             AND (cardinality($3::text[]) = 0 OR service = ANY($3))",
        )
        .bind(ts(filter.start_ns))
        .bind(ts(filter.end_ns))
        .bind(filter.services)
        .fetch(&self.pool);
        while let Some(r) = hits.try_next().await? {
            let pattern: String = r.get(2);
            if let Some(category) = category(&pattern) {
                // The minute the window starts in counts toward its first bucket.
                let minute_ns = r
                    .get::<DateTime<Utc>, _>(0)
                    .timestamp_nanos_opt()
                    .unwrap_or(0)
                    .max(filter.start_ns);
                let count: i64 = r.get(3);
                series.add_pattern_hits(minute_ns, &r.get::<String, _>(1), category, count.max(0) as u64);
            }
        }
        Ok(())
    }
}
