//! The pattern catalog: `GET /patterns` (with counts), and custom patterns added, replaced
//! and removed through `POST /patterns`, `PUT /patterns/{id}`, `DELETE /patterns/{id}`.

use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::patterns::{CatalogError, PatternDef};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, db_error};
use super::params::{bad, categories, min_severity, params, severities};
use crate::auth::Principal;
use crate::patterns::PatternError;
use crate::store::memory::Selection;

pub(super) const LIST_PARAMS: &[&str] = &["category", "severity", "min_severity", "source"];

/// The pattern catalog (shipped and custom) with each pattern's match counts.
#[utoipa::path(get, path = "/api/v1/ai_logs/patterns", tag = "ops", params(super::doc_types::PatternParams),
    responses((status = 200, description = "The catalog", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = params(raw, LIST_PARAMS)?;
    let categories = categories("category", p.get("category"))?;
    let severities = severities("severity", p.get("severity"))?;
    let min_severity = min_severity(p.get("min_severity"))?;
    let source = match p.get("source").map(String::as_str) {
        None | Some("") => None,
        Some(s @ ("shipped" | "custom")) => Some(s.to_owned()),
        Some(s) => {
            return Err(bad(
                "source",
                format!("unknown source `{s}`"),
                "one of: shipped, custom",
            ));
        }
    };
    // With Postgres, counts come from `detected_patterns` (every consumer's lines); else
    // from the lines this process handled.
    // `detected_patterns` counts every workspace's lines: a scoped caller's counts are taken
    // from the held lines of its workspaces instead.
    let (stats, counts_since) = match &state.pg {
        _ if !caller.scope.is_all() => {
            let sel = Selection {
                scope: &caller.scope,
                ..Default::default()
            };
            let mut stats = ailogs_pipeline::patterns::PatternStats::default();
            for r in state.views.select_all(&sel) {
                stats.observe(&r);
            }
            (stats, "the lines the views hold of this key's workspaces")
        }
        Some(pg) => (
            crate::store::insights::pattern_stats(pg).await.map_err(db_error)?,
            "all time (postgres detected_patterns, minute precision)",
        ),
        None => (state.views.pattern_stats(), "process start"),
    };
    let mut out = Vec::new();
    for (def, src) in state.patterns.list().await {
        if (!categories.is_empty() && !categories.contains(&def.category))
            || (!severities.is_empty() && !severities.contains(&def.severity))
            || min_severity.is_some_and(|m| def.severity < m)
            || source.as_deref().is_some_and(|s| json!(src) != json!(s))
        {
            continue;
        }
        let counter = stats.get(&def.id);
        let mut v = serde_json::to_value(&def).unwrap_or(Value::Null);
        v["source"] = json!(src);
        v["count"] = json!(counter.map_or(0, |c| c.count));
        v["first_seen"] = json!(counter.map(|c| format_rfc3339(c.first_seen_ns)));
        v["last_seen"] = json!(counter.map(|c| format_rfc3339(c.last_seen_ns)));
        v["services"] = json!(counter.map(|c| &c.services));
        out.push(v);
    }
    Ok(Json(json!({
        "catalog_version": state.patterns.version(),
        "total_patterns": out.len(),
        "total_matches": stats.total(),
        "counts_since": counts_since,
        "patterns": out,
    })))
}

/// Adds a custom pattern (applied to new lines at once).
#[utoipa::path(post, path = "/api/v1/ai_logs/patterns", tag = "ops", request_body(content = super::doc_types::Answer, description = "A pattern: `{id, regex, severity, category, suggestion, condition?, examples?}`", content_type = "application/json"),
    responses((status = 201, description = "Created", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError),
        (status = 409, description = "A pattern with that id exists", body = ApiError),
        (status = 422, description = "The regex does not compile, or an example disagrees with it", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let def = parse(&body)?;
    match state.patterns.put(def.clone()).await {
        Ok(true) => Ok((StatusCode::CREATED, Json(json!({"created": def}))).into_response()),
        Ok(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "pattern_exists",
            format!("custom pattern {:?} already exists", def.id),
            "use PUT /api/v1/ai_logs/patterns/{id} to replace it",
        )
        .field("id")),
        Err(e) => Err(pattern_error(e)),
    }
}

/// Adds or replaces a custom pattern.
#[utoipa::path(put, path = "/api/v1/ai_logs/patterns/{id}", tag = "ops", request_body(content = super::doc_types::Answer, description = "A pattern: `{id, regex, severity, category, suggestion, condition?, examples?}`", content_type = "application/json"),
    params(("id" = String, Path, description = "The pattern id")),
    responses((status = 200, description = "Replaced", body = super::doc_types::Answer),
        (status = 201, description = "Created", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError),
        (status = 409, description = "A shipped pattern cannot be replaced", body = ApiError),
        (status = 422, description = "The regex does not compile, or an example disagrees with it", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
pub async fn replace(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let def = parse(&body)?;
    if def.id != id {
        return Err(bad(
            "id",
            format!("the body's id {:?} differs from the path's {id:?}", def.id),
            "send the same id in the path and the body",
        ));
    }
    match state.patterns.put(def.clone()).await {
        Ok(true) => Ok((StatusCode::CREATED, Json(json!({"created": def}))).into_response()),
        Ok(false) => Ok((StatusCode::OK, Json(json!({"replaced": def}))).into_response()),
        Err(e) => Err(pattern_error(e)),
    }
}

/// Removes a custom pattern.
#[utoipa::path(delete, path = "/api/v1/ai_logs/patterns/{id}", tag = "ops",
    params(("id" = String, Path, description = "The pattern id")),
    responses((status = 204, description = "Removed"), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError),
        (status = 404, description = "No custom pattern with that id", body = ApiError),
        (status = 409, description = "A shipped pattern cannot be removed", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state
        .patterns
        .remove(&id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(pattern_error)
}

/// The body as a pattern; serde's message names the field that is wrong.
fn parse(body: &[u8]) -> Result<PatternDef, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .unwrap_or("body")
            .to_owned();
        bad(
            &field,
            format!("not a pattern: {msg}"),
            "send JSON with id, regex, severity (low|medium|high|critical), category (connectivity|performance|ai|security|infrastructure|data), suggestion, and optionally condition and examples",
        )
    })
}

fn pattern_error(e: PatternError) -> ApiError {
    match e {
        PatternError::Invalid(c) => {
            let field = match &c {
                CatalogError::Compile { .. } => "regex",
                CatalogError::Example { .. } => "examples",
                CatalogError::Invalid { reason, .. } => reason.split_whitespace().next().unwrap_or("body"),
                CatalogError::Syntax(_) => "body",
            }
            .to_owned();
            let mut err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_pattern",
                c.to_string(),
                "fix the field named; the running catalog is unchanged",
            );
            err.field = Some(field);
            err
        }
        PatternError::Shipped(id) => ApiError::new(
            StatusCode::CONFLICT,
            "shipped_pattern",
            format!("pattern {id:?} is part of the shipped catalog"),
            "add a custom pattern with another id",
        )
        .field("id"),
        PatternError::NotFound(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no custom pattern {id:?}"),
            "GET /api/v1/ai_logs/patterns?source=custom lists them",
        ),
        PatternError::Db(e) => ApiError::internal("storing the pattern", e),
    }
}
