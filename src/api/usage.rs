//! `GET /workspace/{id}/summary` and `GET /conversations/{id}`: from Postgres when it is
//! configured, else from the in-memory views through the same pipeline code.

use std::collections::HashMap;
use std::sync::Arc;

use ailogs_pipeline::loki::plan::merge;
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::spec::{boolean, duration};
use ailogs_pipeline::query::{ParamError, Verbosity, Window};
use ailogs_pipeline::scope::Scope;
use ailogs_pipeline::usage::{
    self, Operation, SourcePos, UsageBatch, UsageRow, conversation_metrics, workspace_summary,
};
use ailogs_pipeline::{Enriched, query::render_line};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::error::{ApiError, db_error};
use super::fallback;
use super::params::params;
use super::{AppState, now_ns};
use crate::auth::Principal;
use crate::loki::Wanted;
use crate::store::memory::Selection;

fn flag(p: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, ParamError> {
    p.get(name).map_or(Ok(default), |v| boolean(name, v))
}

fn id_ok(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{field} must be 1 to 256 printable characters"),
            "pass the id as it appears in the logs",
        );
        e.field = Some(field.into());
        return Err(e);
    }
    Ok(())
}

/// Records of the in-memory views that pass `keep`, through the usage pipeline.
fn batch_from_views(
    state: &AppState,
    sel: &Selection<'_>,
    keep: impl Fn(&Enriched) -> bool,
) -> (UsageBatch, Vec<Arc<Enriched>>) {
    let records = state.views.select(sel, keep);
    let mut batch = UsageBatch::default();
    for (i, r) in records.iter().enumerate() {
        batch.add(
            r,
            &state.prices,
            SourcePos {
                topic: "memory".into(),
                partition: 0,
                offset: i as i64,
            },
        );
    }
    (batch, records)
}

/// `usage::request_errors` over the views, which hold the recent window; `named` are the
/// workspace's lines there.
fn request_errors(
    state: &AppState,
    workspace: &str,
    since_ns: i64,
    named: &[Arc<Enriched>],
    scope: &Scope,
) -> Vec<String> {
    usage::request_errors(workspace, named, |id| {
        let sel = Selection {
            correlation_id: Some(id),
            since_ns,
            scope,
            ..Default::default()
        };
        state.views.select_all(&sel)
    })
}

/// A workspace's usage: requests, tokens, cost by model, errors, peak times.
#[utoipa::path(get, path = "/api/v1/ai_logs/workspace/{id}/summary", tag = "query",
    params(("id" = String, Path, description = "The workspace id"), super::doc_types::WorkspaceParams),
    responses((status = 200, description = "The summary", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
pub async fn workspace(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    id_ok("workspace_id", &id)?;
    if !caller.scope.allows(Some(&id)) {
        return Err(super::auth::outside_scope("id", &id));
    }
    let scope = &caller.scope;
    let p = params(raw, WORKSPACE_PARAMS)?;
    let range = match p.get("time_range") {
        Some(v) => duration("time_range", v, ailogs_pipeline::query::spec::MAX_TIME_RANGE_S)?,
        None => 86_400,
    };
    let include_costs = flag(&p, "include_costs", true)?;
    let since = now_ns().saturating_sub(range as i64 * 1_000_000_000);
    let (summary, source) = match &state.pg {
        Some(pg) => {
            let rows = pg.usage_rows(&id, since).await.map_err(db_error)?;
            let conversations = pg.conversation_count(&id, since).await.map_err(db_error)?;
            let errors = pg.recent_errors(&id, since, 1000).await.map_err(db_error)?;
            let sel = Selection {
                since_ns: since,
                scope,
                ..Default::default()
            };
            let named = state
                .views
                .select(&sel, |r| r.workspace_id.as_deref() == Some(id.as_str()));
            (
                workspace_summary(
                    &rows,
                    conversations,
                    &errors,
                    &request_errors(&state, &id, since, &named, scope),
                    include_costs,
                ),
                "postgres",
            )
        }
        None => {
            let sel = Selection {
                since_ns: since,
                scope,
                ..Default::default()
            };
            let (batch, named) = batch_from_views(&state, &sel, |r| r.workspace_id.as_deref() == Some(id.as_str()));
            let rows: Vec<UsageRow> = batch
                .usage
                .iter()
                .map(|(k, t)| UsageRow {
                    model: k.model.clone(),
                    hour_ns: k.hour_ns,
                    totals: t.clone(),
                })
                .collect();
            let errors: Vec<String> = batch.operations.iter().filter_map(|o| o.error.clone()).collect();
            (
                workspace_summary(
                    &rows,
                    batch.conversations.len() as i64,
                    &errors,
                    &request_errors(&state, &id, since, &named, scope),
                    include_costs,
                ),
                "views",
            )
        }
    };
    let mut body = json!({
        "workspace_id": id,
        "source": source,
        "window": { "start": format_rfc3339(since), "end": format_rfc3339(now_ns()) },
    });
    if let (Some(b), Value::Object(s)) = (body.as_object_mut(), summary) {
        b.extend(s);
    }
    Ok(Json(body))
}

pub(super) const WORKSPACE_PARAMS: &[&str] = &["time_range", "include_costs"];

pub(super) const CONVERSATION_PARAMS: &[&str] = &[
    "include_prompts",
    "include_responses",
    "include_metrics",
    "include_related_logs",
    "time_buffer",
];

/// One conversation: requests, tokens, cost, errors, and its related log lines.
#[utoipa::path(get, path = "/api/v1/ai_logs/conversations/{id}", tag = "query",
    params(("id" = String, Path, description = "The conversation id"), super::doc_types::ConversationParams),
    responses((status = 200, description = "The conversation", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError),
        (status = 404, description = "No such conversation", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
pub async fn conversation(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let scope = &caller.scope;
    id_ok("conversation_id", &id)?;
    let p = params(raw, CONVERSATION_PARAMS)?;
    let include_prompts = flag(&p, "include_prompts", false)?;
    let include_responses = flag(&p, "include_responses", false)?;
    let include_metrics = flag(&p, "include_metrics", true)?;
    let include_related = flag(&p, "include_related_logs", false)?;
    let buffer_s = match p.get("time_buffer") {
        Some(v) => duration("time_buffer", v, 86_400)?,
        None => 300,
    };
    let sel = Selection {
        conversation_id: Some(&id),
        since_ns: i64::MIN,
        scope,
        ..Default::default()
    };
    let (header, ops, source) = match &state.pg {
        Some(pg) => {
            let Some(row) = pg.conversation(&id, scope).await.map_err(db_error)? else {
                return Err(unknown_conversation(&id));
            };
            let ops = pg.conversation_operations(&id, scope).await.map_err(db_error)?;
            let header = (
                row.workspace_id,
                row.user_id,
                row.first_seen_ns,
                row.last_seen_ns,
                row.lines,
                row.prompt_hashes,
            );
            (header, ops, "postgres")
        }
        None => {
            let (batch, _) = batch_from_views(&state, &sel, |_| true);
            let Some(c) = batch.conversations.get(&id) else {
                return Err(unknown_conversation(&id));
            };
            let header = (
                c.workspace_id.clone(),
                c.user_id.clone(),
                c.first_seen_ns,
                c.last_seen_ns,
                c.lines,
                c.prompt_hashes.clone(),
            );
            (header, batch.operations, "views")
        }
    };
    let (workspace_id, user_id, first, last, lines, hashes) = header;
    let mut body = json!({
        "conversation_id": id,
        "source": source,
        "workspace_id": workspace_id,
        "user_id": user_id,
        "first_seen": format_rfc3339(first),
        "last_seen": format_rfc3339(last),
        "lines": lines,
        "requests": ops.len(),
    });
    if include_metrics {
        body["metrics"] = conversation_metrics(&ops);
    }
    if include_prompts {
        body["prompts"] =
            json!({ "note": "prompts are never stored; these are their hashes", "prompt_hashes": hashes });
    }
    if include_responses {
        body["responses"] = json!({ "note": "responses are never stored; these are their outcomes", "outcomes": ops.iter().map(outcome).collect::<Vec<_>>() });
    }
    if include_related {
        let buffer = buffer_s as i64 * 1_000_000_000;
        let (start, end) = (first.saturating_sub(buffer), last.saturating_add(buffer));
        let held = state.views.select(&sel, |r| (start..=end).contains(&r.ts_ns));
        // The part of the conversation's span the views do not cover is read from Loki.
        let window = Window {
            start_ns: start,
            end_ns: end,
        };
        let wanted = Wanted {
            services: &[],
            ids: vec![("conversation_id", id.clone())],
            min_level: None,
            workspaces: scope.workspaces().filter(|_| !scope.sees_unscoped()),
        };
        let (plan, mut loki) =
            fallback::plan_and_read(&state, window, fallback::views_coverage(&state), &wanted, true).await;
        let from_loki: Vec<Arc<Enriched>> = loki
            .records()
            .into_iter()
            .filter(|r| {
                r.record.conversation_id.as_deref() == Some(id.as_str())
                    && (start..=end).contains(&r.ts_ns)
                    && scope.allows(r.workspace_id.as_deref())
            })
            .collect();
        let related = merge(held, from_loki);
        let mut related: Vec<&Arc<Enriched>> = related.iter().collect();
        related.sort_by_key(|r| r.ts_ns);
        body["related_logs_total"] = json!(related.len());
        body["related_logs"] = json!(
            related
                .iter()
                .take(MAX_RELATED)
                .map(|r| render_line(Verbosity::Standard, r))
                .collect::<Vec<_>>()
        );
        let sources = fallback::envelope(&plan, &loki, state.loki.is_some(), false);
        body["related_logs_source"] = sources["source"].clone();
        body["related_logs_windows"] = sources["windows"].clone();
        if loki.failed() {
            body["missing"] = json!(loki.missing());
        }
    }
    Ok(Json(body))
}

/// Related lines returned at most; `related_logs_total` says how many there were.
const MAX_RELATED: usize = 1_000;

fn outcome(o: &Operation) -> Value {
    json!({
        "t": format_rfc3339(o.ts_ns),
        "model": o.model,
        "success": o.success,
        "output_tokens": o.output_tokens,
        "duration_ms": o.duration_ms,
        "error": o.error,
        "correlation_id": o.correlation_id,
    })
}

fn unknown_conversation(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no conversation {id:?} in the views"),
        "check the id; GET /api/v1/ai_logs/query?mode=conversation lists recent conversations",
    )
}
