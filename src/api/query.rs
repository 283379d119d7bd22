//! `GET /api/v1/ai_logs/query`: parses the parameters, narrows candidates through the view
//! indexes, runs the pipeline's query engine, and wraps the answer in the envelope.

use std::time::{Instant, SystemTime};

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::query::{self, QuerySpec, Window};

use crate::store::memory::Selection;

pub async fn query(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let spec = QuerySpec::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let window = Window::for_query(now, &spec);
    // Selection and ranking walk up to every held line: CPU work, off the async workers.
    let answer = tokio::task::spawn_blocking(move || {
        let selection = Selection {
            services: &spec.services,
            min_level: Some(spec.min_level()),
            correlation_id: spec.correlation_id.as_deref(),
            conversation_id: spec.conversation_id.as_deref(),
            since_ns: window.start_ns,
        };
        let candidates = state.views.select(&selection, |r| query::matches(&spec, window, r));
        let outcome = query::run(&spec, &candidates, window, &*state.views);
        let stats = state.views.stats();
        // With Kafka but no consumer here, lines go to Kafka and never reach these views.
        let ingest_only = state.kafka.is_some() && !state.consumer_running;
        let complete = !ingest_only && stats.evicted_newest_event_ns.is_none_or(|evicted| evicted < window.start_ns);
        let mut body = json!({
            "source": "views",
            "freshness": {
                "newest_event": stats.newest_event_ns.map(format_rfc3339),
                "lag_seconds": stats.newest_event_ns.map(|n| ((now - n) as f64 / 1e9).max(0.0)),
                "last_processed_at": stats.last_insert.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| format_rfc3339(d.as_nanos() as i64)),
            },
            "window": if window.is_unbounded() {
                json!({ "start": null, "end": null, "time_range": "all retained lines (id lookup without time_range)" })
            } else {
                json!({ "start": format_rfc3339(window.start_ns), "end": format_rfc3339(window.end_ns), "time_range": spec.time_range })
            },
            "coverage": {
                "complete": complete,
                "views_hold_since": stats.oldest_event_ns.map(format_rfc3339),
                "note": if ingest_only {
                    "this process only ingests into Kafka (no consumer runs here): its views hold no lines; query a process with AILOGS_DATABASE_URL set".to_owned()
                } else if complete {
                    "every line in the window that reached ailogs is in the views".to_owned()
                } else {
                    format!(
                        "lines up to {} were evicted from the in-memory views and no Loki fallback is configured; counts for the start of the window are low",
                        stats.evicted_newest_event_ns.map(format_rfc3339).unwrap_or_default()
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
