//! `GET /analyze`: known pattern hits with their fixes, top and new templates, anomalies,
//! cascades and ranked insights, answered from the views of this process.

use ailogs_pipeline::analyze::{AnalyzeFilter, analyze as run};
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::spec::{MAX_TIME_RANGE_S, duration};
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::params::{categories, list, min_severity, params};
use super::{AppState, now_ns};
use crate::store::memory::Selection;

const PARAMS: &[&str] = &["time_range", "services", "categories", "min_severity"];

#[tracing::instrument(name = "analyze", skip_all)]
pub async fn analyze(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
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
    let records = state.views.select_all(&Selection {
        services: &services,
        min_level: None,
        correlation_id: None,
        conversation_id: None,
        since_ns,
    });
    let filter = AnalyzeFilter {
        services,
        categories,
        min_severity,
    };
    // The analysis reads the core's published side only, and runs off the async threads.
    let core = state.core.clone();
    let report = tokio::task::spawn_blocking(move || {
        let alerts = core.alerts_since(since_ns);
        let text = |_: &str, id: u64| core.template(id);
        run(&records, &alerts, &text, &filter)
    })
    .await
    .map_err(|e| ApiError::internal("running the analysis", e))?;
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal("rendering the analysis", e))?;
    body["window"] = json!({"from": format_rfc3339(since_ns), "to": format_rfc3339(now)});
    body["source"] = json!("memory");
    Ok(Json(body))
}
