//! `GET /api/v1/ai_logs/health`: the status of each component, plainly.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use ailogs_pipeline::normalize::time::format_rfc3339;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let views = state.views.stats();
    let depth = state.queue.depth();
    let capacity = state.queue.capacity();
    let queue_status = if depth >= capacity { "saturated" } else { "ok" };
    let unsupported = state.config.unsupported_backends();
    let backend = |name: &str| {
        if unsupported.contains(&name) {
            json!({ "status": "unsupported", "message": "configured, but this build runs embedded only; the setting is ignored" })
        } else {
            json!({ "status": "not_configured" })
        }
    };
    let redis = match &state.redis {
        Some(r) if r.ping().await => json!({ "status": "ok", "role": "hot views the API reads" }),
        Some(_) => json!({ "status": "unreachable", "message": "queries answer from this process's memory views" }),
        None => backend("redis"),
    };
    let redis_ok = redis["status"] != "unreachable";
    let status = if queue_status == "ok" && unsupported.is_empty() && redis_ok {
        "ok"
    } else {
        "degraded"
    };
    let correlation = {
        let c = state.core.stats();
        json!({
            "status": "ok",
            "live_requests": c.live_requests,
            "completed_total": c.completed_total,
            "evicted_total": c.evicted_total,
            "lines_without_correlation_id": c.lines_without_correlation_id,
            "unwritten_dropped_total": c.unwritten_dropped_total,
        })
    };
    let hub = state.hub.stats();
    let stream = match &state.stream_tail {
        Some(reading) if reading.load(std::sync::atomic::Ordering::Relaxed) => json!({
            "status": "ok", "source": format!("kafka: {} and {}", state.config.kafka.alerts_topic, state.config.kafka.lines_topic), "hub": hub,
        }),
        Some(_) => json!({
            "status": "degraded", "source": "kafka", "hub": hub,
            "message": "not reading the alerts and lines topics yet (do they exist? `ailogs kafka create-topics`)",
        }),
        None => json!({ "status": "ok", "source": "this process's pipeline", "hub": hub }),
    };
    Json(json!({
        "status": status,
        "mode": "embedded",
        "durable": false,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "components": {
            "ingest": { "status": queue_status, "queue_depth_lines": depth, "queue_capacity_lines": capacity },
            "pipeline": { "status": "ok", "workers": state.workers },
            "correlation": correlation,
            "stream": stream,
            "views": {
                "status": "ok",
                "kind": "memory",
                "lines": views.lines,
                "max_lines": views.max_lines,
                "inserted_total": views.inserted_total,
                "evicted_total": views.evicted_total,
                "oldest_event": views.oldest_event_ns.map(format_rfc3339),
                "newest_event": views.newest_event_ns.map(format_rfc3339),
            },
            "kafka": if state.kafka.is_some() {
                json!({ "status": "configured", "topic": state.config.kafka.raw_topic })
            } else {
                backend("kafka")
            },
            "postgres": match (&state.pg, state.consumer_running) {
                (Some(_), true) => json!({ "status": "configured", "role": "a consumer in this process writes usage and offsets; the API reads it" }),
                (Some(_), false) => json!({ "status": "configured", "role": "the API reads usage and conversations" }),
                (None, _) => backend("postgres"),
            },
            "redis": redis,
            "loki": backend("loki"),
        }
    }))
}
