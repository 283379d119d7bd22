//! `GET /api/v1/ai_logs/metrics`: requests, errors, tokens, cost, latency percentiles and
//! pattern hits per time bucket and group. From Postgres when it is configured (every
//! consumer's rows), else from this process's memory views, through the same `Series`.

use std::collections::HashMap;
use std::sync::Arc;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::patterns::Category;
use ailogs_pipeline::query::spec::{MAX_TIME_RANGE_S, duration};
use ailogs_pipeline::usage::series::{GroupBy, Request, Series, SeriesAnswer, SeriesSpec};
use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use serde::Serialize;

use super::error::{ApiError, db_error};
use super::params::{bad, list, params};
use super::{AppState, now_ns};
use crate::auth::Principal;
use crate::store::memory::Selection;
use crate::store::postgres::series_read::SeriesFilter;

pub(super) const KNOWN: &[&str] = &["time_range", "step", "group_by", "services", "workspace_id", "models"];
const MAX_BUCKETS: i64 = 1_000;
/// Steps a default is chosen from: the smallest giving at most 60 buckets.
const NICE_STEPS_S: [i64; 7] = [60, 300, 900, 3_600, 6 * 3_600, 86_400, 7 * 86_400];
const S: i64 = 1_000_000_000;

#[utoipa::path(get, path = "/api/v1/ai_logs/metrics", tag = "query", params(super::doc_types::MetricsParams),
    responses((status = 200, description = "Buckets of the window, each with its groups", body = MetricsAnswer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
#[tracing::instrument(name = "metrics", skip_all)]
pub async fn metrics(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<MetricsAnswer>, ApiError> {
    let started = std::time::Instant::now();
    let p = params(raw, KNOWN)?;
    let range_s = match p.get("time_range") {
        Some(v) => duration("time_range", v, MAX_TIME_RANGE_S)? as i64,
        None => 3_600,
    };
    let step_s = match p.get("step") {
        Some(v) => duration("step", v, MAX_TIME_RANGE_S)? as i64,
        None => NICE_STEPS_S
            .into_iter()
            .find(|s| range_s / s <= 60)
            .unwrap_or(7 * 86_400),
    };
    if step_s < 60 || step_s % 60 != 0 {
        return Err(bad(
            "step",
            format!("step must be whole minutes, got {step_s}s"),
            "use 1m or more, e.g. 5m, 1h",
        ));
    }
    let buckets = (range_s + step_s - 1) / step_s;
    if buckets > MAX_BUCKETS {
        return Err(bad(
            "step",
            format!("{buckets} buckets of {step_s}s over the time range; at most {MAX_BUCKETS}"),
            "use a larger step or a shorter time_range",
        ));
    }
    let group_by = match p.get("group_by") {
        Some(v) => GroupBy::from_name(v).ok_or_else(|| {
            bad(
                "group_by",
                format!("unknown group_by `{v}`"),
                &format!("one of: {}", GroupBy::NAMES),
            )
        })?,
        None => GroupBy::Service,
    };
    let services = list(p.get("services"));
    let models = list(p.get("models"));
    let workspace_id = p.get("workspace_id").cloned();
    if let Some(ws) = &workspace_id
        && !caller.scope.allows(Some(ws))
    {
        return Err(super::auth::outside_scope("workspace_id", ws));
    }
    let scope = caller.scope.clone();
    // Buckets are aligned to the step; the last one holds now.
    let step_ns = step_s * S;
    let end_ns = (now_ns().div_euclid(step_ns) + 1) * step_ns;
    let spec = SeriesSpec {
        start_ns: end_ns - buckets * step_ns,
        end_ns,
        step_ns,
        group_by,
    };
    let filter = SeriesFilter {
        start_ns: spec.start_ns,
        end_ns,
        services: &services,
        workspace_id: workspace_id.as_deref(),
        models: &models,
        scope: &scope,
    };
    let mut series = Series::new(spec);
    let source = match &state.pg {
        Some(pg) => {
            let categories = categories(&state).await;
            pg.fold_series(&filter, &mut series, |id| categories.get(id).copied())
                .await
                .map_err(db_error)?;
            "postgres"
        }
        None => {
            let permit = Arc::clone(&state.scans)
                .try_acquire_owned()
                .map_err(|_| super::error::busy("retry shortly"))?;
            let state = Arc::clone(&state);
            let (start_ns, services, scope) = (filter.start_ns, services.clone(), scope.clone());
            series = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let selection = Selection {
                    services: &services,
                    min_level: None,
                    correlation_id: None,
                    conversation_id: None,
                    since_ns: start_ns,
                    scope: &scope,
                };
                for line in state.views.select_all(&selection) {
                    fold_line(&mut series, &line, &state, workspace_id.as_deref(), &models);
                }
                series
            })
            .await
            .map_err(|e| ApiError::internal("aggregating the views", e))?;
            "views"
        }
    };
    Ok(Json(MetricsAnswer {
        series: series.finish(),
        source,
        note: if caller.scope.is_all() {
            "requests are AI requests (a model with token usage, or an AI request type); pattern hits count every line of the services asked, whatever the workspace or model filter"
        } else {
            "requests are AI requests of this key's workspaces; pattern hits count the held lines of those workspaces (Postgres counts every workspace's, so they are not read)"
        },
        served_in_ms: (started.elapsed().as_secs_f64() * 1e5).round() / 100.0,
    }))
}

/// The aggregated metrics and where they came from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MetricsAnswer {
    #[serde(flatten)]
    series: SeriesAnswer,
    /// postgres or views.
    source: &'static str,
    note: &'static str,
    served_in_ms: f64,
}

/// One held line into the series: its pattern hits, and the line as a request when it is one.
fn fold_line(series: &mut Series, e: &Enriched, state: &AppState, workspace: Option<&str>, models: &[String]) {
    for m in &e.patterns {
        series.add_pattern_hits(e.record.ts_ns, &e.record.service, m.category, 1);
    }
    if let Some(request) = Request::of_line(e, &state.prices)
        && workspace.is_none_or(|w| request.workspace_id == w)
        && (models.is_empty() || models.iter().any(|m| m == request.model))
    {
        series.add_request(&request);
    }
}

/// Each catalog pattern's category, by id.
async fn categories(state: &AppState) -> HashMap<String, Category> {
    state
        .patterns
        .list()
        .await
        .into_iter()
        .map(|(def, _)| (def.id, def.category))
        .collect()
}
