//! The audit middleware (one row per call made with a key) and `GET /api/v1/ai_logs/audit`.

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::auth::RouteClass;
use super::error::ApiError;
use crate::audit::{AuditEntry, BodyParams, Returned, params_of};
use crate::auth::Principal;

use crate::mcp::api::MCP_TOOL_HEADER;

/// Records reads, exports and admin calls. Pushes are counted by metrics instead (a shipper
/// pushes every second), and open routes carry no key.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let class = RouteClass::of(req.method(), req.uri().path());
    if matches!(class, RouteClass::Open | RouteClass::Push | RouteClass::Mcp) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::open);
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let tool = req
        .headers()
        .get(MCP_TOOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|t| t.chars().take(64).collect());
    let mut params = params_of(req.uri().query());
    let resp = next.run(req).await;
    if let (Some(BodyParams(serde_json::Value::Object(body))), Some(p)) =
        (resp.extensions().get::<BodyParams>(), params.as_object_mut())
    {
        p.extend(body.clone());
    }
    state.audit.record(AuditEntry {
        at: chrono::Utc::now(),
        key_name: principal.name.to_string(),
        key_id: principal.key_id,
        method,
        endpoint,
        tool,
        scope: principal.scope.describe(),
        params,
        status: resp.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        returned: resp.extensions().get::<Returned>().map(|r| r.0),
    });
    resp
}

/// The parameters `list` parses.
pub(super) const PARAMS: &[&str] = &["limit", "key"];

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters
pub struct AuditParams {
    /// Calls to return, newest first (1-1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only this key holder's calls.
    pub key: Option<String>,
}

/// Recent calls (admin keys only): from Postgres when configured, else this process's log.
#[utoipa::path(get, path = "/api/v1/ai_logs/audit", tag = "ops", params(AuditParams),
    responses((status = 200, description = "`{source, calls: [...]}`, newest first", body = super::doc_types::Answer),
        (status = 400, description = "A parameter is invalid", body = ApiError),
        (status = 401, description = "No valid key", body = ApiError),
        (status = 403, description = "The key is not an admin key", body = ApiError)))]
pub async fn list(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let p = super::params::params(raw, PARAMS)?;
    let limit =
        match p.get("limit") {
            None => 100,
            Some(v) => v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                super::params::bad("limit", format!("limit must be 1-1000, not {v:?}"), "pass 1-1000")
            })?,
        };
    let key = p.get("key").map(String::as_str);
    if let Some(pg) = &state.pg {
        match crate::audit::writer::recent(pg.pool(), limit as i64, key).await {
            Ok(calls) => return Ok(Json(json!({"source": "postgres", "calls": calls}))),
            Err(e) => tracing::warn!(error = %e, "reading the audit log from Postgres failed; answering from memory"),
        }
    }
    let calls = state.audit.recent(limit, key);
    Ok(Json(json!({"source": "memory", "calls": calls})))
}
