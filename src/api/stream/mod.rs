//! `GET /stream` (WebSocket): live lines and alerts for a subscriber's filter, resumable by
//! event id (or, for alerts that came through Kafka, by offset). The protocol is in
//! `ailogs_pipeline::stream::protocol`.
//!
//! With API keys configured a client presents its key in the upgrade request's headers
//! (`Authorization: Bearer`, `X-API-Key`), in `?api_key=` if `auth.allow_url_key` is set,
//! or in its first message (`auth`, or `api_key` in `subscribe`).
//!
//! Close codes: 4001 without a valid key; 4008 when the client stays too far behind (its
//! inbox overflowed three times within a minute, or a send stalled for
//! `stream.send_timeout_ms`); 1009 for a message over 64 KiB; 1013 when the process serves
//! `stream.max_subscribers`; 4029 when the key holds `stream.max_subscribers_per_key`; 1008
//! when a client sends more than 100 messages in 10 s.
//!
//! `session` runs one connection; `render` writes the `log` and `alert` messages.

mod render;
mod session;

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{AppState, auth};
use crate::internal_events::{AuthRefused, InternalEvent};
use session::Session;

pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_KEY_LIMIT: u16 = 4029;
pub const CLOSE_FORBIDDEN: u16 = 4003;

/// Who the connection is, as far as the upgrade request tells.
enum Access {
    /// No keys are configured.
    Open,
    /// The key's holder.
    Holder(crate::auth::Principal),
    /// Keys are configured and the request carried none: the first message must.
    AwaitingKey,
}

#[utoipa::path(get, path = "/api/v1/ai_logs/stream", tag = "query", description = super::doc_types::stream_protocol(),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade (plain text, from the WebSocket layer), or a bad filter (JSON)",
            content((String = "text/plain"), (ApiError = "application/json"))),
        (status = 401, description = "A key was presented and is not valid", body = ApiError),
        (status = 426, description = "The upgrade is missing", content_type = "text/plain", body = String)))]
pub async fn stream(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    State(state): State<AppState>,
) -> Response {
    let access = match access(&state, &headers, query.as_deref()) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // Small buffers: clients send a few short messages, and at 10,000 subscribers the
    // default 128 KiB read buffer alone would be 1.3 GB. Bursts bigger than the write
    // buffer go out in chunks of it.
    ws.max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(32 * 1024)
        .on_upgrade(move |socket| async move {
            let metrics = Arc::clone(&state.metrics);
            metrics.stream_subscribers.inc();
            Session::new(socket, state).run(access).await;
            metrics.stream_subscribers.dec();
        })
}

/// Checks a key the upgrade request carries; a wrong one is refused before the upgrade.
fn access(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<Access, ApiError> {
    let url_key = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "api_key")
            .map(|(_, v)| v.into_owned())
    });
    if url_key.is_some() && !state.config.auth.allow_url_key {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "this server does not accept API keys in the URL".into(),
            "send the key in `Authorization: Bearer <key>`, `X-API-Key`, or an `auth` message",
        )
        .field("api_key"));
    }
    if !state.api_keys.enabled() {
        return Ok(Access::Open);
    }
    let Some(key) = auth::presented(headers).map(str::to_owned).or(url_key) else {
        return Ok(Access::AwaitingKey);
    };
    match state.api_keys.holder(&key) {
        Some(holder) => Ok(Access::Holder(holder)),
        None => {
            AuthRefused {
                path: super::STREAM_PATH,
            }
            .emit(&state.metrics);
            Err(auth::unauthorized("the API key is not valid"))
        }
    }
}
