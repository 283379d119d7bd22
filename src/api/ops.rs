//! Operational endpoints: index, Prometheus metrics, dead letters, 404.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::doc_types::Answer;
use super::error::ApiError;

#[utoipa::path(get, path = "/", tag = "ops", responses((status = 200, description = "Name, version and endpoints", body = Answer)))]
pub async fn index() -> Json<Value> {
    Json(json!({
        "name": "ailogs",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "GET /api/v1/ai_logs/health": "status of each component",
            "GET /api/v1/ai_logs/query": "agent queries: mode=troubleshoot|performance|errors|audit|conversation",
            "GET /api/v1/ai_logs/dead_letters": "lines that could not be accepted, with their reason",
            "POST /api/v1/ai_logs/ingest": "NDJSON logs, one JSON object per line",
            "POST /loki/api/v1/push": "Loki push API (protobuf+snappy or JSON)",
            "GET /metrics": "Prometheus metrics",
        }
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus metrics, text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

#[derive(Deserialize)]
pub struct DeadLetterParams {
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/ai_logs/dead_letters", tag = "ops",
    params(("limit" = Option<u32>, Query, description = "1-1000, default 100")),
    responses((status = 200, description = "Recent lines that could not be accepted, with their reason", body = Answer),
        (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::auth::Principal>,
    params: Result<Query<DeadLetterParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            e.body_text(),
            "limit is a whole number from 1 to 1000",
        );
        err.field = Some("limit".into());
        err
    })?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("limit {limit} is out of range"),
            "limit is a whole number from 1 to 1000",
        );
        err.field = Some("limit".into());
        return Err(err);
    }
    let letters = state.dead_letters.recent(limit, &caller.scope);
    Ok(Json(json!({ "returned": letters.len(), "dead_letters": letters })))
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {}", uri.path()),
        "GET / lists the endpoints",
    )
}
