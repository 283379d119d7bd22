//! The `log` and `alert` messages as sent: rendered once per event, shared by every
//! subscriber that gets it.

use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::stream::StreamLine;
use ailogs_pipeline::templates::template_key;
use serde_json::{Value, json};

/// A line this process enriched, as the same message a consumer's published line gives.
pub(super) fn log_message(id: u64, e: &ailogs_pipeline::Enriched) -> Value {
    line_message(id, &StreamLine::from(e))
}

/// A `log` message: the fields a subscriber sees of a line.
pub(super) fn line_message(id: u64, l: &StreamLine) -> Value {
    json!({
        "type": "log",
        "id": id,
        "log": {
            "ts": format_rfc3339(l.ts_ns),
            "service": l.service,
            "level": l.level.as_str(),
            "message": l.message,
            "correlation_id": l.correlation_id,
            "error": l.error,
            "patterns": l.patterns,
            "template_id": l.template_id.map(template_key),
        },
    })
}

pub(super) fn alert_message(id: u64, offset: Option<i64>, a: &ailogs_pipeline::anomaly::Alert) -> Value {
    let mut alert = serde_json::to_value(a).unwrap_or(Value::Null);
    alert["id"] = json!(a.stable_id());
    alert["first_seen"] = json!(format_rfc3339(a.first_seen_ns));
    alert["last_seen"] = json!(format_rfc3339(a.last_seen_ns));
    match offset {
        Some(offset) => json!({"type": "alert", "id": id, "offset": offset, "alert": alert}),
        None => json!({"type": "alert", "id": id, "alert": alert}),
    }
}
