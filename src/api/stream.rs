//! `GET /stream` (WebSocket): live lines and alerts for a subscriber's filter, resumable by
//! event id. The protocol is in `ailogs_pipeline::stream::protocol`.
//!
//! Close codes: 4008 when the client stays too far behind (it lost a whole queue of
//! messages three times within a minute); 1009 for a message over 64 KiB; 1013 when the
//! process already serves `MAX_SUBSCRIBERS`; 1008 when a client sends more than
//! `MAX_CLIENT_MESSAGES` messages in `CLIENT_WINDOW`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::stream::{ClientMessage, Filter, FilterSpec, parse};
use ailogs_pipeline::templates::template_key;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, now_ns};
use crate::metrics::Metrics;
use crate::stream::{Event, Hub, Payload, Replay};

const HEARTBEAT: Duration = Duration::from_secs(30);
/// Lost queues tolerated within `LAG_WINDOW` before the client is disconnected.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(60);
/// A send that takes longer means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const MAX_SUBSCRIBERS: i64 = 10_000;
const MAX_CLIENT_MESSAGES: usize = 100;
const CLIENT_WINDOW: Duration = Duration::from_secs(10);

pub async fn stream(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.max_message_size(64 * 1024).on_upgrade(move |socket| async move {
        let metrics = Arc::clone(&state.metrics);
        metrics.stream_subscribers.inc();
        let full = metrics.stream_subscribers.get() > MAX_SUBSCRIBERS;
        Session::new(socket, Arc::clone(&state.hub), Arc::clone(&metrics))
            .run(full)
            .await;
        metrics.stream_subscribers.dec();
    })
}

struct Session {
    socket: WebSocket,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    /// Arrival times of the client's recent messages, for its rate limit.
    received: VecDeque<Instant>,
    filter: Option<Filter>,
    rx: Option<Receiver<Arc<Event>>>,
    /// The newest event id sent (replay and live may overlap).
    last_sent: u64,
    lags: VecDeque<Instant>,
    /// Sending retained events (their delivery time is not the stream's latency).
    replaying: bool,
}

/// Why a session ends.
enum End {
    Gone,
    Close(u16, &'static str),
}

impl Session {
    fn new(socket: WebSocket, hub: Arc<Hub>, metrics: Arc<Metrics>) -> Self {
        Session {
            socket,
            hub,
            metrics,
            received: VecDeque::new(),
            filter: None,
            rx: None,
            last_sent: 0,
            lags: VecDeque::new(),
            replaying: false,
        }
    }

    async fn run(mut self, full: bool) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        let end = loop {
            if full {
                break End::Close(1013, "too many subscribers; retry later");
            }
            let step = tokio::select! {
                msg = self.socket.recv() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_message(&text).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.error("malformed_message", "messages are JSON text".into()).await
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(End::Gone),
                    Some(Ok(_)) => Ok(()),
                },
                event = next_event(&mut self.rx) => self.on_event(event).await,
                _ = heartbeat.tick() => {
                    self.send(json!({"type": "heartbeat", "ts": format_rfc3339(now_ns()), "next_id": self.hub.next_id()})).await
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            let label = match code {
                CLOSE_TOO_SLOW => "too_slow",
                1013 => "too_many_subscribers",
                1008 => "message_rate",
                _ => "shutdown",
            };
            self.metrics.stream_closed.with_label_values(&[label]).inc();
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.send(Message::Close(Some(frame)))).await;
        }
    }

    async fn on_message(&mut self, text: &str) -> Result<(), End> {
        let now = Instant::now();
        self.received.push_back(now);
        while self
            .received
            .front()
            .is_some_and(|t| now.duration_since(*t) > CLIENT_WINDOW)
        {
            self.received.pop_front();
        }
        if self.received.len() > MAX_CLIENT_MESSAGES {
            return Err(End::Close(1008, "too many messages from the client"));
        }
        match parse(text) {
            Err((code, message)) => self.error(code, message).await,
            Ok(ClientMessage::Heartbeat) => {
                self.send(json!({"type": "heartbeat", "ts": format_rfc3339(now_ns()), "next_id": self.hub.next_id()}))
                    .await
            }
            Ok(ClientMessage::Unsubscribe) => {
                self.rx = None;
                self.filter = None;
                self.send(json!({"type": "unsubscribed"})).await
            }
            Ok(ClientMessage::UpdateFilter { filter }) => {
                if self.rx.is_none() {
                    return self
                        .error("not_subscribed", "subscribe before update_filter".into())
                        .await;
                }
                self.set_filter(filter, "filter_updated").await
            }
            Ok(ClientMessage::Subscribe { filter, resume_from }) => {
                // Subscribe before reading the retained events: nothing falls in between
                // (what arrives in both is sent once, by id).
                self.rx = Some(self.hub.subscribe());
                self.set_filter(filter, "connected").await?;
                if let Some(last) = resume_from {
                    self.replay(last).await?;
                } else {
                    self.last_sent = self.hub.next_id().saturating_sub(1);
                }
                Ok(())
            }
        }
    }

    async fn set_filter(&mut self, spec: FilterSpec, answer: &'static str) -> Result<(), End> {
        match Filter::from_spec(spec) {
            Ok(f) => {
                let body = json!({"type": answer, "filter": f, "next_id": self.hub.next_id()});
                self.filter = Some(f);
                self.send(body).await
            }
            Err(e) => {
                if answer == "connected" {
                    self.rx = None;
                }
                let body = json!({"type": "error", "code": "invalid_filter", "field": e.field, "message": e.message});
                self.send(body).await
            }
        }
    }

    async fn replay(&mut self, last: u64) -> Result<(), End> {
        let (after, replay) = self.hub.replay(last, u64::MAX);
        let events = match replay {
            Replay::Events(events) => events,
            Replay::Gap { from, to, events } => {
                self.send(json!({"type": "gone", "from_id": from, "to_id": to,
                    "message": "these events are no longer retained"}))
                    .await?;
                events
            }
        };
        // An id from another run of the server counts from 0 (see `Hub::replay`).
        self.last_sent = after;
        self.replaying = true;
        let mut sent = Ok(());
        for e in events {
            sent = self.deliver(&e).await;
            if sent.is_err() {
                break;
            }
        }
        self.replaying = false;
        sent
    }

    async fn on_event(&mut self, event: Result<Arc<Event>, RecvError>) -> Result<(), End> {
        match event {
            Ok(e) => self.deliver(&e).await,
            Err(RecvError::Lagged(missed)) => {
                self.metrics.stream_dropped.inc_by(missed);
                let now = Instant::now();
                self.lags.push_back(now);
                while self.lags.front().is_some_and(|t| now.duration_since(*t) > LAG_WINDOW) {
                    self.lags.pop_front();
                }
                self.send(json!({"type": "dropped", "count": missed,
                    "message": "this client read too slowly; the oldest messages were dropped"}))
                    .await?;
                if self.lags.len() >= MAX_LAGS {
                    return Err(End::Close(CLOSE_TOO_SLOW, "too slow: messages dropped repeatedly"));
                }
                Ok(())
            }
            Err(RecvError::Closed) => Err(End::Close(1001, "server shutting down")),
        }
    }

    async fn deliver(&mut self, e: &Event) -> Result<(), End> {
        if e.id <= self.last_sent {
            return Ok(());
        }
        let Some(filter) = &self.filter else { return Ok(()) };
        let wanted = match &e.payload {
            Payload::Log(r) => filter.wants_log(r),
            Payload::Alert(a) => filter.wants_alert(a),
        };
        if !wanted {
            return Ok(());
        }
        self.last_sent = e.id;
        let text = e
            .rendered
            .get_or_init(|| {
                let body = match &e.payload {
                    Payload::Log(r) => log_message(e.id, r),
                    Payload::Alert(a) => alert_message(e.id, a),
                };
                Utf8Bytes::from(body.to_string())
            })
            .clone();
        self.send_text(text).await?;
        if !self.replaying {
            self.metrics.stream_delivery.observe(e.at.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn error(&mut self, code: &str, message: String) -> Result<(), End> {
        self.send(json!({"type": "error", "code": code, "message": message}))
            .await
    }

    async fn send(&mut self, body: Value) -> Result<(), End> {
        self.send_text(Utf8Bytes::from(body.to_string())).await
    }

    async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(CLOSE_TOO_SLOW, "too slow: a send did not complete")),
        }
    }
}

async fn next_event(rx: &mut Option<Receiver<Arc<Event>>>) -> Result<Arc<Event>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn log_message(id: u64, e: &ailogs_pipeline::Enriched) -> Value {
    let r = &e.record;
    json!({
        "type": "log",
        "id": id,
        "log": {
            "ts": format_rfc3339(r.ts_ns),
            "service": r.service,
            "level": r.level.as_str(),
            "message": r.message,
            "correlation_id": r.correlation_id,
            "error": r.error,
            "patterns": e.patterns.iter().map(|m| m.id.to_string()).collect::<Vec<_>>(),
            "template_id": e.template.map(|t| template_key(t.id)),
        },
    })
}

fn alert_message(id: u64, a: &ailogs_pipeline::anomaly::Alert) -> Value {
    let mut alert = serde_json::to_value(a).unwrap_or(Value::Null);
    alert["id"] = json!(id);
    alert["first_seen"] = json!(format_rfc3339(a.first_seen_ns));
    alert["last_seen"] = json!(format_rfc3339(a.last_seen_ns));
    json!({"type": "alert", "id": id, "alert": alert})
}
