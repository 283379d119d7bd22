//! `GET /correlate`: what happened to one request (`correlation_id`), or a service's
//! neighbourhood in the dependency graph (`service`).
//!
//! A request is looked up in this process's recently completed requests, then in Postgres
//! `ai_correlations`; a request not completed anywhere is rebuilt from the recent lines the
//! views hold (Redis, or this process's memory) and answered `in_progress`; unknown
//! everywhere is a 404. Nothing here takes the lock the pipeline workers hold.

use std::sync::Arc;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::correlate::{DependencyGraph, analyze_lines};
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::spec::{MAX_TIME_RANGE_S, duration};
use ailogs_pipeline::scope::Scope;
use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::{ApiError, db_error};
use super::fallback;
use super::params::{bad, params};
use super::{AppState, now_ns};
use crate::auth::Principal;
use crate::loki::Wanted;
use crate::store::memory::Selection;
use ailogs_pipeline::loki::plan::{Coverage, merge};
use ailogs_pipeline::query::Window;

pub(super) const PARAMS: &[&str] = &["correlation_id", "service", "time_window"];

/// One request (`correlation_id`): `request_flow`, `critical_path`, `bottlenecks`, `errors`,
/// `root_cause` with evidence, `recommendations`, `status`; or a service's recent requests.
#[utoipa::path(get, path = "/api/v1/ai_logs/correlate", tag = "query", params(super::doc_types::CorrelateParams),
    responses((status = 200, description = "The request's graph and root cause", body = super::doc_types::Answer),
        (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 404, description = "No line of that request is held or in Loki", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
#[tracing::instrument(name = "correlate", skip_all)]
pub async fn correlate(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = params(raw, PARAMS)?;
    let window_s = match p.get("time_window") {
        Some(v) => duration("time_window", v, MAX_TIME_RANGE_S)?,
        None => 3600,
    };
    let since_ns = now_ns().saturating_sub(window_s as i64 * 1_000_000_000);
    let id = p.get("correlation_id").filter(|v| !v.is_empty());
    let service = p.get("service").filter(|v| !v.is_empty());
    match (id, service) {
        (Some(id), None) => request(&state, id, since_ns, &caller.scope).await.map(Json),
        (None, Some(service)) if !caller.scope.sees_unscoped() => Err(super::auth::forbidden(
            format!("the dependency graph of {service:?} counts every workspace's requests"),
            "ask with an all-workspace key, or explain one request with ?correlation_id=",
        )
        .field("service")),
        (None, Some(service)) => neighbourhood(&state, service, since_ns).await.map(Json),
        (Some(_), Some(_)) => Err(bad(
            "service",
            "give either correlation_id or service, not both".into(),
            "correlation_id explains one request; service shows its dependencies",
        )),
        (None, None) => Err(bad(
            "correlation_id",
            "correlation_id or service is required".into(),
            "e.g. ?correlation_id=req-123, or ?service=api&time_window=1h",
        )),
    }
}

async fn request(state: &AppState, id: &str, since_ns: i64, scope: &Scope) -> Result<Value, ApiError> {
    if !scope.is_all() {
        return scoped_request(state, id, since_ns, scope).await;
    }
    if let Some(analysis) = state.core.completed_request(id) {
        let mut body = serde_json::to_value(&*analysis).map_err(|e| ApiError::internal("rendering", e))?;
        body["status"] = json!("complete");
        body["source"] = json!("views");
        return Ok(body);
    }
    if let Some(pg) = &state.pg
        && let Some(mut body) = crate::store::correlations::read(pg, id).await.map_err(db_error)?
    {
        body["status"] = json!("complete");
        body["source"] = json!("postgres");
        return Ok(body);
    }
    rebuilt(state, id, since_ns, &Scope::All).await
}

/// A scoped caller's view of a request: rebuilt from the lines of its workspaces only (the
/// stored analyses cover every line), saying how many lines were left out.
async fn scoped_request(state: &AppState, id: &str, since_ns: i64, scope: &Scope) -> Result<Value, ApiError> {
    let mut body = rebuilt(state, id, since_ns, scope).await?;
    let (every, _) = recent_lines(state, id, since_ns, &Scope::All).await;
    let hidden = every
        .iter()
        .filter(|r| !scope.allows(r.workspace_id.as_deref()))
        .count();
    body["scope"] = json!({
        "workspaces": scope.describe(),
        "lines_outside_scope": hidden,
        "note": if hidden > 0 {
            format!("{hidden} line(s) of this request belong to other workspaces (or none) and are left out: the flow shows only this key's workspaces")
        } else {
            "every line of this request the views hold is in this key's workspaces".to_owned()
        },
    });
    Ok(body)
}

/// The request rebuilt from the lines held (and Loki's) that `scope` may see.
async fn rebuilt(state: &AppState, id: &str, since_ns: i64, scope: &Scope) -> Result<Value, ApiError> {
    let (held, views_source) = recent_lines(state, id, since_ns, scope).await;
    // What the views do not cover is read from Loki: the request may be older than them.
    let now = now_ns();
    let coverage = match views_source {
        "redis" => Coverage::of_lines(&held),
        _ => fallback::views_coverage(state),
    };
    let window = Window {
        start_ns: since_ns,
        end_ns: now,
    };
    let wanted = Wanted {
        services: &[],
        ids: vec![("correlation_id", id.to_owned())],
        min_level: None,
        workspaces: scope.workspaces().filter(|_| !scope.sees_unscoped()),
    };
    let (plan, mut loki) = fallback::plan_and_read(state, window, coverage, &wanted, true).await;
    let from_loki: Vec<Arc<Enriched>> = loki
        .records()
        .into_iter()
        .filter(|r| r.record.correlation_id.as_deref() == Some(id) && scope.allows(r.workspace_id.as_deref()))
        .collect();
    let read_loki = !from_loki.is_empty();
    let lines = merge(held, from_loki);
    let owned_id = id.to_owned();
    let analysis = tokio::task::spawn_blocking(move || analyze_lines(&owned_id, lines.iter().map(|l| &**l)))
        .await
        .map_err(|e| ApiError::internal("rebuilding the request", e))?;
    let sources = fallback::envelope(&plan, &loki, state.loki.is_some(), false);
    if let Some(analysis) = analysis {
        let ended = read_loki && now - analysis.last_ns > REQUEST_IDLE_NS;
        let mut body = serde_json::to_value(analysis).map_err(|e| ApiError::internal("rendering", e))?;
        // Not completed here nor in Postgres: its lines are still arriving (or its
        // completion is not written yet), unless its lines are all older than a request
        // stays open (then Loki holds a request that ended before the views' time).
        body["status"] = json!(if ended { "complete" } else { "in_progress" });
        body["source"] = if read_loki {
            sources["source"].clone()
        } else {
            json!(views_source)
        };
        body["windows"] = sources["windows"].clone();
        body["missing"] = json!(loki.missing());
        return Ok(body);
    }
    let looked = if state.loki.is_some() {
        if loki.failed() {
            "in the views (Loki did not answer: retry shortly)"
        } else {
            "in the views nor in Loki"
        }
    } else {
        "in the views (no Loki is configured: AILOGS_LOKI_URL)"
    };
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "correlation_not_found",
        format!("no request with correlation_id {id:?} {looked} within time_window"),
        "check the id (the X-Correlation-ID header or the correlation_id/trace_id field), or widen time_window",
    )
    .field("correlation_id"))
}

/// A request with no line for this long is over (the correlation tracker's idle timeout).
const REQUEST_IDLE_NS: i64 = 5 * 60 * 1_000_000_000;

/// The request's lines still held: Redis when configured (every consumer's lines), else
/// this process's memory.
async fn recent_lines(state: &AppState, id: &str, since_ns: i64, scope: &Scope) -> (Vec<Arc<Enriched>>, &'static str) {
    let sel = Selection {
        services: &[],
        min_level: None,
        correlation_id: Some(id),
        conversation_id: None,
        since_ns,
        scope,
    };
    if let Some(redis) = &state.redis {
        match redis.read(&sel, 20_000).await {
            Ok(lines) => return (lines.into_iter().map(Arc::new).collect(), "redis"),
            Err(e) => tracing::warn!(error = %e, "redis unavailable; rebuilding from memory views"),
        }
    }
    (state.views.select_all(&sel), "memory")
}

/// Requests read from Postgres for one neighbourhood, newest first.
const MAX_STORED_REQUESTS: i64 = 50_000;

/// With Postgres: from the requests every consumer completed; else from this process's.
async fn neighbourhood(state: &AppState, service: &str, since_ns: i64) -> Result<Value, ApiError> {
    let (view, source) = match &state.pg {
        Some(pg) => {
            let stored = crate::store::correlations::around(pg, service, since_ns, MAX_STORED_REQUESTS)
                .await
                .map_err(db_error)?;
            let minutes = usize::try_from((now_ns() - since_ns) / 60_000_000_000 + 2).unwrap_or(usize::MAX);
            let mut graph = DependencyGraph::new(minutes.min(60 * 24 * 31));
            for (start_ns, a) in &stored {
                graph.add(a, *start_ns);
            }
            (
                graph.view(since_ns, Some(service)),
                "postgres ai_correlations (completed requests)",
            )
        }
        None => (
            state.core.dependencies(since_ns, Some(service)),
            "views (requests completed in this process)",
        ),
    };
    Ok(json!({
        "service": service,
        "window": {"from": format_rfc3339(since_ns)},
        "requests_in_window": view.requests,
        "callers": view.edges.iter().filter(|e| e.to == service).collect::<Vec<_>>(),
        "callees": view.edges.iter().filter(|e| e.from == service).collect::<Vec<_>>(),
        "cycles": view.cycles,
        "fan_out": view.fan_out.iter().find(|(s, _)| s == service).map_or(0, |(_, n)| *n),
        "source": source,
    }))
}
