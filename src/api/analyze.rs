//! `GET /analyze`: known pattern hits with their fixes, top and new templates, anomalies,
//! cascades and ranked insights, answered from the views of this process.

use ailogs_pipeline::analyze::{AnalyzeFilter, analyze as run};
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::spec::{MAX_TIME_RANGE_S, duration};
use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::error::ApiError;
use super::fallback;
use super::params::{categories, list, min_severity, params};
use super::{AppState, now_ns};
use crate::auth::Principal;
use crate::loki::Wanted;
use crate::store::memory::Selection;
use ailogs_pipeline::loki::plan::merge;
use ailogs_pipeline::query::Window;

pub(super) const PARAMS: &[&str] = &["time_range", "services", "categories", "min_severity"];

/// What stands out in a window: ranked `insights`, catalog `patterns`, `anomalies`, `cascades`,
/// `new_templates` and `top_templates`, with `source`, `windows` and `missing`.
#[utoipa::path(get, path = "/api/v1/ai_logs/analyze", tag = "query", params(super::doc_types::AnalyzeParams),
    responses((status = 200, description = "The analysis", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
#[tracing::instrument(name = "analyze", skip_all)]
pub async fn analyze(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let scope = &caller.scope;
    let p = params(raw, PARAMS)?;
    let range_s = match p.get("time_range") {
        Some(v) => duration("time_range", v, MAX_TIME_RANGE_S)?,
        None => 3600,
    };
    let categories = categories("categories", p.get("categories"))?;
    let min_severity = min_severity(p.get("min_severity"))?;
    let services = list(p.get("services"));
    let now = now_ns();
    let since_ns = now.saturating_sub(range_s as i64 * 1_000_000_000);
    let held = state.views.select_all(&Selection {
        services: &services,
        min_level: None,
        correlation_id: None,
        conversation_id: None,
        since_ns,
        scope,
    });
    // Before the views' coverage, the lines come from Loki (pattern hits and templates are
    // computed on them alike; anomalies are only those the detector raised on live lines).
    let window = Window {
        start_ns: since_ns,
        end_ns: now,
    };
    let wanted = Wanted {
        services: &services,
        ids: Vec::new(),
        min_level: None,
        workspaces: scope.workspaces().filter(|_| !scope.sees_unscoped()),
    };
    let (plan, mut loki) =
        fallback::plan_and_read(&state, window, fallback::views_coverage(&state), &wanted, true).await;
    let from_loki = loki
        .records()
        .into_iter()
        .filter(|r| window.contains(r.ts_ns) && scope.allows(r.workspace_id.as_deref()))
        .collect();
    let records = merge(held, from_loki);
    let sources = fallback::envelope(&plan, &loki, state.loki.is_some(), false);
    let loki_truncated = loki.truncated().map(str::to_owned);
    let loki_templates = loki.templates();
    let filter = AnalyzeFilter {
        services,
        categories,
        min_severity,
    };
    // The analysis reads the core's published side only, and runs off the async threads.
    let core = state.core.clone();
    // Alerts describe services (rates, templates, cascades) over every workspace's lines: only
    // callers that see lines without a workspace get them, as on the stream.
    let with_alerts = scope.sees_unscoped();
    let report = tokio::task::spawn_blocking(move || {
        let alerts = if with_alerts {
            core.alerts_since(since_ns)
        } else {
            Vec::new()
        };
        let text = |_: &str, id: u64| core.template(id).or_else(|| loki_templates.get(&id).cloned());
        run(&records, &alerts, &text, &filter)
    })
    .await
    .map_err(|e| ApiError::internal("running the analysis", e))?;
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal("rendering the analysis", e))?;
    body["window"] = json!({"from": format_rfc3339(since_ns), "to": format_rfc3339(now)});
    body["source"] = sources["source"].clone();
    body["windows"] = sources["windows"].clone();
    body["missing"] = json!(loki.missing());
    if let Some(reason) = loki_truncated {
        body["truncated"] = json!(true);
        body["truncated_reason"] = json!(reason);
    }
    Ok(Json(body))
}
