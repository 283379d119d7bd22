//! `GET /api/v1/ai_logs/query`: parses the parameters, narrows candidates through the view
//! indexes, runs the pipeline's query engine, and wraps the answer in the envelope.

use std::time::{Instant, SystemTime};

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, now_ns};
use ailogs_pipeline::normalize::time::format_rfc3339;
use std::sync::Arc;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::query::{self, Context, QuerySpec, SliceContext, Window};
use ailogs_pipeline::views;
use axum::http::StatusCode;

use crate::store::memory::Selection;

#[tracing::instrument(name = "query", skip_all)]
pub async fn query(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let spec = QuerySpec::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let now = now_ns();
    let window = Window::for_query(now, &spec);
    // Redis holds every partition's lines, whichever process consumed them: read it first.
    let mut missing: Vec<&str> = Vec::new();
    let from_redis: Option<Vec<Arc<Enriched>>> = match &state.redis {
        Some(redis) => {
            // All levels: context lines come from the same records.
            let sel = Selection {
                services: &spec.services,
                min_level: None,
                correlation_id: spec.correlation_id.as_deref(),
                conversation_id: spec.conversation_id.as_deref(),
                since_ns: window.start_ns,
            };
            match redis.read(&sel, 20_000).await {
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
    // A scan (Redis, or filters the indexes do not keep) walks many lines: CPU work, off the
    // async workers, and bounded so that a burst of them cannot queue without limit.
    let indexed = from_redis.is_none() && views::indexed(&spec);
    let scan_permit = if !indexed {
        let permit = Arc::clone(&state.scans).try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many queries that scan lines are running".into(),
                "retry shortly, or narrow the query to what the views index: no workspace_id, session_id or exclude_patterns filter",
            )
        })?;
        Some(permit)
    } else {
        None
    };
    let answer = tokio::task::spawn_blocking(move || {
        let _scan_permit = scan_permit;
        let selection = Selection {
            services: &spec.services,
            min_level: Some(spec.min_level()),
            correlation_id: spec.correlation_id.as_deref(),
            conversation_id: spec.conversation_id.as_deref(),
            since_ns: window.start_ns,
        };
        let (outcome, backend) = match &from_redis {
            Some(all) => {
                let candidates: Vec<Arc<Enriched>> = all.iter().filter(|r| query::matches(&spec, window, r)).cloned().collect();
                (query::run(&spec, &candidates, window, &SliceContext::new(all)), "redis")
            }
            None => {
                let selected = if indexed {
                    state.views.answer(&spec, window)
                } else {
                    let candidates = state.views.select(&selection, |r| query::matches(&spec, window, r));
                    query::scan(&spec, &candidates, window)
                };
                let context = Context::new(&*state.views, &spec, window);
                (query::render(&spec, window, selected, &context), "memory")
            }
        };
        let stats = state.views.stats();
        // With Kafka but no consumer here, lines go to Kafka and never reach the memory views.
        let ingest_only = backend == "memory" && state.kafka.is_some() && !state.consumer_running;
        let complete = backend == "memory"
            && !ingest_only
            && missing.is_empty()
            && stats.held.evicted_newest_event_ns.is_none_or(|evicted| evicted < window.start_ns);
        let mut body = json!({
            "views": backend,
            "missing": missing,
            "source": "views",
            "freshness": {
                "newest_event": stats.held.newest_event_ns.map(format_rfc3339),
                "lag_seconds": stats.held.newest_event_ns.map(|n| ((now - n) as f64 / 1e9).max(0.0)),
                "last_processed_at": stats.last_insert.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| format_rfc3339(d.as_nanos() as i64)),
            },
            "window": if window.is_unbounded() {
                json!({ "start": null, "end": null, "time_range": "all retained lines (id lookup without time_range)" })
            } else {
                json!({ "start": format_rfc3339(window.start_ns), "end": format_rfc3339(window.end_ns), "time_range": spec.time_range })
            },
            "coverage": {
                "complete": complete,
                "views_hold_since": stats.held.oldest_event_ns.map(format_rfc3339),
                "note": if backend == "redis" {
                    "redis hot views: the newest 20000 lines per service and 2000 per request or conversation".to_owned()
                } else if !missing.is_empty() {
                    "redis did not answer: this process's memory views hold only the lines it consumed".to_owned()
                } else if ingest_only {
                    "this process only ingests into Kafka (no consumer runs here): its views hold no lines; query a process with AILOGS_DATABASE_URL set".to_owned()
                } else if complete {
                    "every line in the window that reached ailogs is in the views".to_owned()
                } else {
                    format!(
                        "lines up to {} were evicted from the in-memory views and no Loki fallback is configured; counts for the start of the window are low",
                        stats.held.evicted_newest_event_ns.map(format_rfc3339).unwrap_or_default()
                    )
                },
            },
        });
        let outcome = serde_json::to_value(outcome).map_err(|e| ApiError::internal("rendering the answer", e))?;
        if let (Some(body), Value::Object(outcome)) = (body.as_object_mut(), outcome) {
            body.extend(outcome);
        }
        Ok::<_, ApiError>(body)
    })
    .await
    .map_err(|e| ApiError::internal("running the query", e))??;
    let mut answer = answer;
    answer["served_in_ms"] = json!((started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    Ok(Json(answer))
}
