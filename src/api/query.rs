//! `GET /api/v1/ai_logs/query`: parses the parameters, plans who answers which part of the
//! window (the views from what they cover, Loki for the rest), narrows candidates through
//! the view indexes, runs the pipeline's query engine, and wraps the answer in the envelope.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ailogs_pipeline::Enriched;
use ailogs_pipeline::loki::plan::{Coverage, merge};
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::{self, Context, QuerySpec, SliceContext, Verbosity, Window};
use ailogs_pipeline::views;
use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::error::ApiError;
use super::fallback::{self, LokiSide};
use super::{AppState, now_ns};
use crate::audit::Returned;
use crate::auth::Principal;
use crate::store::memory::Selection;

/// Lines of each service read from the Redis hot views.
const REDIS_LINES: usize = 20_000;

/// Answers for agents from the views (and Loki for what they do not cover). The answer carries
/// `source`, `windows`, `missing`, `freshness`, `window`, `coverage`, `summary`, `total_matched`,
/// `returned`, `truncated`, `served_in_ms`, and by mode and format `lines`, `conversations`,
/// `groups`, `narrative` or `timeline`.
#[utoipa::path(get, path = "/api/v1/ai_logs/query", tag = "query", params(super::doc_types::QueryParams),
    responses((status = 200, description = "The answer", body = super::doc_types::Answer), (status = 400, description = "A parameter is invalid; `field` names it", body = ApiError), (status = 401, description = "API keys are configured and the request carried no valid one", body = ApiError), (status = 503, description = "Too many scanning queries at once, or a store did not answer", body = ApiError)))]
#[tracing::instrument(name = "query", skip_all)]
pub async fn query(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<(Extension<Returned>, Json<Value>), ApiError> {
    let started = Instant::now();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let mut spec = QuerySpec::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    super::auth::scope_query(&caller, &mut spec)?;
    let now = now_ns();
    let window = spec.window(now)?;
    // Redis holds every partition's lines, whichever process consumed them: read it first.
    let mut missing: Vec<&str> = Vec::new();
    let from_redis: Option<Vec<Arc<Enriched>>> = match &state.redis {
        Some(redis) => {
            // All levels: context lines come from the same records.
            match redis.read(&selection(&spec, window, None), REDIS_LINES).await {
                Ok(records) => Some(records.into_iter().map(Arc::new).collect()),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unavailable; answering from this process's memory views");
                    missing.push("redis");
                    None
                }
            }
        }
        None => None,
    };
    let stats = state.views.stats();
    // With Kafka but no consumer here, lines go to Kafka and never reach the memory views.
    let ingest_only = from_redis.is_none() && state.kafka.is_some() && !state.consumer_running;
    let coverage = match &from_redis {
        Some(all) => Coverage::of_lines(all),
        None if ingest_only => Coverage::NOTHING,
        None => Coverage::of_views(&stats.held),
    };
    let plan = fallback::planned(&state, window, coverage, now);
    let mut loki = fallback::read(&state, &plan, &fallback::wanted(&spec), spec.cache, now).await;
    missing.extend(loki.missing());
    let from_loki = loki.records();
    // A scan (Redis, Loki, or filters the indexes do not keep) walks many lines: CPU work,
    // off the async workers, and bounded so that a burst of them cannot queue without limit.
    let indexed = from_redis.is_none() && matches!(loki, LokiSide::Unread) && views::indexed(&spec);
    let scan_permit = if !indexed {
        let permit = Arc::clone(&state.scans).try_acquire_owned().map_err(|_| super::error::busy("retry shortly, or narrow the query to what the views index: no workspace_id, session_id or exclude_patterns filter"))?;
        Some(permit)
    } else {
        None
    };
    let backend = if from_redis.is_some() { "redis" } else { "memory" };
    let loki_configured = state.loki.is_some();
    let sources = fallback::envelope(&plan, &loki, loki_configured, spec.verbosity == Verbosity::Detailed);
    let loki_truncated = loki.truncated().map(str::to_owned);
    // An absolute window (`start`) has no range back from now.
    let time_range = spec.start_ns.is_none().then(|| spec.time_range.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let _scan_permit = scan_permit;
        let with_context = spec.context_lines() > 0;
        // Context lines need every level around a match; otherwise only matches are kept.
        let keep = |r: &Enriched| window.contains(r.ts_ns) && (with_context || query::matches(&spec, window, r));
        let outcome = match (from_redis, indexed) {
            (Some(all), _) => {
                let all = merge(all, from_loki.into_iter().filter(|r| keep(r)).collect());
                let candidates: Vec<Arc<Enriched>> = all
                    .iter()
                    .filter(|r| query::matches(&spec, window, r))
                    .cloned()
                    .collect();
                query::run(&spec, &candidates, window, &SliceContext::new(&all))
            }
            (None, true) => {
                let selected = state.views.answer(&spec, window);
                query::render(&spec, window, selected, &Context::new(&*state.views, &spec, window))
            }
            (None, false) if from_loki.is_empty() => {
                let candidates = state
                    .views
                    .select(&selection(&spec, window, Some(spec.min_level())), |r| {
                        query::matches(&spec, window, r)
                    });
                let selected = query::scan(&spec, &candidates, window);
                query::render(&spec, window, selected, &Context::new(&*state.views, &spec, window))
            }
            (None, false) => {
                let min_level = (!with_context).then(|| spec.min_level());
                let held = state.views.select(&selection(&spec, window, min_level), |r| keep(r));
                let all = merge(held, from_loki.into_iter().filter(|r| keep(r)).collect());
                query::run(&spec, &all, window, &SliceContext::new(&all))
            }
        };
        serde_json::to_value(outcome).map_err(|e| ApiError::internal("rendering the answer", e))
    })
    .await
    .map_err(|e| ApiError::internal("running the query", e))??;
    let views_whole = backend == "memory" && fallback::views_whole(&stats.held, window);
    let complete =
        !ingest_only && missing.is_empty() && fallback::answer_complete(views_whole, &plan, &loki, loki_configured);
    let mut body = json!({
        "views": backend,
        "missing": missing,
        "source": sources["source"],
        "windows": sources["windows"],
        "freshness": {
            "newest_event": stats.held.newest_event_ns.map(format_rfc3339),
            "lag_seconds": stats.held.newest_event_ns.map(|n| ((now - n) as f64 / 1e9).max(0.0)),
            "last_processed_at": stats.last_insert.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| format_rfc3339(d.as_nanos() as i64)),
        },
        "window": if window.is_unbounded() {
            json!({ "start": null, "end": null, "time_range": "all retained lines (id lookup without time_range)" })
        } else {
            json!({ "start": format_rfc3339(window.start_ns), "end": format_rfc3339(window.end_ns), "time_range": time_range })
        },
        "coverage": {
            "complete": complete,
            "views_hold_since": coverage.complete_from_ns.map(format_rfc3339),
            "note": coverage_note(backend, &missing, ingest_only, complete, loki_truncated.as_deref(), &stats),
        },
    });
    if let (Some(body), Value::Object(outcome)) = (body.as_object_mut(), outcome) {
        body.extend(outcome);
    }
    if let Some(reason) = loki_truncated {
        body["truncated"] = json!(true);
        body["truncated_reason"] = json!(reason);
    }
    body["served_in_ms"] = json!((started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    let returned = Returned(body["returned"].as_u64().unwrap_or(0));
    Ok((Extension(returned), Json(body)))
}

fn selection(spec: &QuerySpec, window: Window, min_level: Option<ailogs_pipeline::Level>) -> Selection<'_> {
    Selection {
        services: &spec.services,
        min_level,
        correlation_id: spec.correlation_id.as_deref(),
        conversation_id: spec.conversation_id.as_deref(),
        since_ns: window.start_ns,
        scope: &spec.scope,
    }
}

fn coverage_note(
    backend: &str,
    missing: &[&str],
    ingest_only: bool,
    complete: bool,
    loki_truncated: Option<&str>,
    stats: &crate::store::memory::ViewStats,
) -> String {
    if missing.contains(&"loki") {
        "Loki did not answer: the part of the window before the views' coverage is missing (see windows)".to_owned()
    } else if let Some(reason) = loki_truncated {
        format!("Loki's part is truncated: {reason}")
    } else if backend == "redis" {
        "redis hot views: the newest 20000 lines per service and 2000 per request or conversation".to_owned()
    } else if !missing.is_empty() {
        "redis did not answer: this process's memory views hold only the lines it consumed".to_owned()
    } else if ingest_only {
        "this process only ingests into Kafka (no consumer runs here): its views hold no lines; query a process with AILOGS_DATABASE_URL set".to_owned()
    } else if complete {
        "every line in the window that reached ailogs is in the answer".to_owned()
    } else {
        format!(
            "lines up to {} were evicted from the in-memory views and no Loki fallback is configured; counts for the start of the window are low",
            stats
                .held
                .evicted_newest_event_ns
                .map(format_rfc3339)
                .unwrap_or_default()
        )
    }
}
