//! `GET /api/v1/ai_logs/health`: the status of each component, plainly.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use crate::consume::kafka::ownership::{OwnerSettings, PartitionState, classify, counts};
use ailogs_pipeline::normalize::time::format_rfc3339;

#[utoipa::path(get, path = "/api/v1/ai_logs/health", tag = "ops",
    responses((status = 200, description = "Overall `status` (ok, degraded) and each component's", body = super::doc_types::Answer)))]
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let views = state.views.stats();
    let depth = state.queue.depth();
    let capacity = state.queue.capacity();
    let queue_status = if depth >= capacity { "saturated" } else { "ok" };
    let not_configured = || json!({ "status": "not_configured" });
    let redis = match &state.redis {
        Some(r) if r.ping().await => json!({ "status": "ok", "role": "hot views the API reads" }),
        Some(_) => json!({ "status": "unreachable", "message": "queries answer from this process's memory views" }),
        None => not_configured(),
    };
    let redis_ok = redis["status"] != "unreachable";
    let loki = match &state.loki {
        Some(l) => l.health().await,
        None => {
            json!({ "status": "not_configured", "message": "windows the views do not hold answer empty (set AILOGS_LOKI_URL)" })
        }
    };
    let loki_ok = loki["status"] != "unreachable";
    let status = if queue_status == "ok" && loki_ok && redis_ok {
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
    let partitions = partitions(&state).await;
    let status = if partitions["status"] == "degraded" {
        "degraded"
    } else {
        status
    };
    let durable = state.kafka.is_some() && state.pg.is_some();
    Json(json!({
        "status": status,
        "mode": if state.kafka.is_some() { "kafka" } else { "embedded" },
        "durable": durable,
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
                "lines": views.held.lines,
                "max_lines": views.max_lines,
                "inserted_total": views.held.inserted_total,
                "evicted_total": views.held.evicted_total,
                "oldest_event": views.held.oldest_event_ns.map(format_rfc3339),
                "newest_event": views.held.newest_event_ns.map(format_rfc3339),
            },
            "kafka": if state.kafka.is_some() {
                json!({ "status": "configured", "topic": state.config.kafka.raw_topic })
            } else {
                not_configured()
            },
            "postgres": match (&state.pg, state.consumer_running) {
                (Some(_), true) => json!({ "status": "configured", "role": "a consumer in this process writes usage and offsets; the API reads it" }),
                (Some(_), false) => json!({ "status": "configured", "role": "the API reads usage and conversations" }),
                (None, _) => not_configured(),
            },
            "redis": redis,
            "partitions": partitions,
            "loki": loki,
        }
    }))
}

/// The consumer group's partitions as the consumers report them (`partition_owners`):
/// lag, and the ones nobody consumes (`unowned`: owner gone; `stalled`: stored offset not
/// moving). Needs Kafka and Postgres.
async fn partitions(state: &AppState) -> Value {
    let (Some(pg), Some(_)) = (&state.pg, &state.kafka) else {
        return json!({ "status": "not_configured" });
    };
    let kafka = &state.config.kafka;
    let rows = match pg.partition_rows(&kafka.group_id, &kafka.raw_topic).await {
        Ok(rows) => rows,
        Err(e) => return json!({ "status": "unknown", "message": format!("cannot read partition owners: {e}") }),
    };
    let bounds = OwnerSettings::from(kafka).bounds;
    let reports: Vec<_> = rows.iter().map(|r| classify(r, bounds)).collect();
    let counts = counts(&reports);
    let bad = counts[&PartitionState::Unowned] + counts[&PartitionState::Stalled];
    let mut body = json!({
        "status": if bad > 0 { "degraded" } else { "ok" },
        "lag_lines": reports.iter().map(|r| r.lag).sum::<i64>(),
        "partitions": reports,
    });
    for (state, n) in counts {
        body[state.as_str()] = json!(n);
    }
    if bad > 0 {
        body["message"] = json!(
            "partitions with lag that no live consumer reads: usage and billing for them are not advancing; \
             check the consumers (`ailogs consume`), which re-join the group when this lasts"
        );
    }
    body
}
