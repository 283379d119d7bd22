//! HTTP handlers for the ingest endpoints: decode the body (`ingest`), enqueue or produce,
//! and answer as Loki would.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
#[allow(unused_imports)]
use super::doc_types::Answer;
#[allow(unused_imports)] // named by the OpenAPI attributes
use super::error::ApiError;
use crate::consume::embedded::EnqueueError;
use crate::ingest::{PushBatch, ndjson, push};
use crate::internal_events::{InternalEvent, LinesRejected, PushRefused};
use crate::store::dead_letters::DeadLetter;

const LOKI: &str = "loki_push";
const NDJSON: &str = "ndjson";

/// `POST /loki/api/v1/push`: 204 once the lines are queued; plain-text 4xx naming the fault.
#[tracing::instrument(name = "loki_push", skip_all)]
/// Loki's push API: protobuf+snappy (Promtail, Alloy) or JSON, optionally gzip.
#[utoipa::path(post, path = "/loki/api/v1/push", tag = "ingest",
    request_body(description = "A Loki PushRequest: protobuf+snappy, or JSON `{streams: [{stream: {labels}, values: [[ns, line]]}]}`",
        content((String = "application/x-protobuf"), (Answer = "application/json"))),
    responses((status = 204, description = "Accepted"),
        (status = 400, description = "The body cannot be decoded (plain text, as Loki answers)", content_type = "text/plain", body = String),
        (status = 401, description = "No valid key", body = ApiError),
        (status = 413, description = "Over `ingest.max_body_bytes`", content_type = "text/plain", body = String),
        (status = 415, description = "An unsupported content type or encoding", content_type = "text/plain", body = String),
        (status = 429, description = "The ingest queue is full: retry with backoff", content_type = "text/plain", body = String),
        (status = 503, description = "Kafka does not take the lines: retry", content_type = "text/plain", body = String)))]
pub async fn loki_push(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => return reject(&state, LOKI, e),
    };
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let content_encoding = header_str(&headers, header::CONTENT_ENCODING);
    let max = state.config.ingest.max_decompressed_bytes;
    let masking = state.masking.clone();
    // Decompressing, decoding and masking a large body is CPU work: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || {
        let mut batch = push::decode(content_type.as_deref(), content_encoding.as_deref(), &body, max)?;
        if let Some(m) = &masking {
            m.batch(&mut batch);
        }
        Ok(batch)
    })
    .await;
    let batch = match decoded {
        Ok(Ok(batch)) => batch,
        Ok(Err(e)) => return reject(&state, LOKI, e),
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "push decoding failed"),
    };
    match enqueue(&state, batch, LOKI).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(resp) => resp,
    }
}

/// `POST /api/v1/ai_logs/ingest`: NDJSON. 200 when every line was accepted; 400 listing the
/// refused lines otherwise (the others are accepted, as Loki does for partial pushes).
#[tracing::instrument(name = "ndjson_push", skip_all)]
/// NDJSON logs, one JSON object per line.
#[utoipa::path(post, path = "/api/v1/ai_logs/ingest", tag = "ingest",
    request_body(description = "One JSON object per line; an empty body accepts nothing",
        content((Option<String> = "application/x-ndjson"), (Option<String> = "text/plain"))),
    responses((status = 200, description = "Every line accepted: `{accepted, rejected}`", body = Answer),
        (status = 400, description = "Some lines refused (dead-lettered); the others accepted: `{accepted, rejected, error, message, suggestion, lines}`", body = Answer),
        (status = 401, description = "No valid key", body = ApiError),
        (status = 413, description = "Over `ingest.max_body_bytes`", body = ApiError),
        (status = 415, description = "An unsupported content encoding", body = ApiError),
        (status = 429, description = "The ingest queue is full: retry with backoff", body = ApiError),
        (status = 503, description = "Kafka does not take the lines: retry", body = ApiError)))]
pub async fn ndjson(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            return json_error(status_of(&e), &e.to_string());
        }
    };
    let encoding = header_str(&headers, header::CONTENT_ENCODING);
    let max = state.config.ingest.max_decompressed_bytes;
    let max_line = state.config.ingest.max_line_bytes;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let masking = state.masking.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        push::decompress(encoding.as_deref(), &body, max).map(|plain| {
            let (mut batch, mut errors) = ndjson::decode(&plain, now, max_line);
            // Refused lines are dead-lettered: masked too, like every line kept anywhere.
            if let Some(m) = &masking {
                m.batch(&mut batch);
                for e in &mut errors {
                    m.text(&mut e.text);
                }
            }
            (batch, errors)
        })
    })
    .await;
    let (batch, errors) = match decoded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return json_error(status_of(&e), &e.to_string()),
        Err(_) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, "decoding failed"),
    };
    for e in &errors {
        LinesRejected {
            endpoint: NDJSON,
            rejection: &e.rejection,
        }
        .emit(&state.metrics);
        state.dead_letters.push(DeadLetter::new(
            now,
            NDJSON,
            &e.rejection,
            e.text.clone(),
            Default::default(),
        ));
    }
    let accepted = batch.line_count();
    if let Err(resp) = enqueue(&state, batch, NDJSON).await {
        return resp;
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut body = json!({ "accepted": accepted, "rejected": errors.len() });
    if !errors.is_empty() {
        body["error"] = json!("invalid_lines");
        body["message"] = json!(format!(
            "{} line(s) refused and dead-lettered; the other {accepted} were accepted",
            errors.len()
        ));
        body["suggestion"] =
            json!("send one JSON object per line, UTF-8, under the line size limit; do not resend accepted lines");
        body["lines"] = json!(errors.iter().take(100).collect::<Vec<_>>());
    }
    (status, axum::Json(body)).into_response()
}

/// Makes the batch durable (Kafka or spool) or queues it (embedded); 503 with Retry-After
/// when neither is possible, which shippers retry.
async fn enqueue(state: &AppState, batch: PushBatch, endpoint: &'static str) -> Result<(), Response> {
    let lines = batch.line_count() as u64;
    let refused: Option<(&str, String)> = match &state.kafka {
        Some(kafka) => kafka
            .produce(batch)
            .await
            .err()
            .map(|e| ("kafka_unavailable", e.to_string())),
        None => state.queue.push(batch, endpoint).await.err().map(|e| {
            let reason = match e {
                EnqueueError::Full => "queue_full",
                EnqueueError::Closed => "shutting_down",
            };
            (reason, e.to_string())
        }),
    };
    match refused {
        None => {
            state
                .metrics
                .lines_received
                .with_label_values(&[endpoint])
                .inc_by(lines);
            Ok(())
        }
        Some((reason, message)) => {
            PushRefused {
                endpoint,
                reason,
                message: &message,
                ours: true,
            }
            .emit(&state.metrics);
            let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, &message);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(resp)
        }
    }
}

/// Reads the body up to `max_body_bytes`; larger bodies are 413 as in Loki.
async fn read_body(state: &Arc<super::State>, headers: &HeaderMap, body: Body) -> Result<Bytes, push::PushError> {
    let limit = state.config.ingest.max_body_bytes;
    let too_large = || push::PushError::TooLarge(format!("request body is larger than {limit} bytes"));
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
            too_large()
        } else {
            push::PushError::BadRequest(format!("failed to read request body: {e}"))
        }
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn reject(state: &AppState, endpoint: &str, e: push::PushError) -> Response {
    let message = e.to_string();
    PushRefused {
        endpoint,
        reason: e.reason(),
        message: &message,
        ours: false,
    }
    .emit(&state.metrics);
    plain(status_of(&e), &message)
}

/// Loki's error bodies: Go's `http.Error`, plain text ending in a newline.
fn plain(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    super::error::ApiError::new(
        status,
        "invalid_body",
        msg.to_owned(),
        "check the body encoding and size",
    )
    .into_response()
}

/// The status Loki answers a refused push with.
fn status_of(e: &push::PushError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
}
