//! One stream connection: admission (key, slot), the client's messages, replay, and
//! delivery of its inbox.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::normalize::time::format_rfc3339;
use ailogs_pipeline::stream::protocol::ApiKey;
use ailogs_pipeline::stream::{ClientMessage, Filter, FilterSpec, parse};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use serde_json::{Value, json};

use super::render::{alert_message, line_message, log_message};
use super::{Access, CLOSE_FORBIDDEN, CLOSE_KEY_LIMIT, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED};
use crate::api::auth::RouteClass;
use crate::api::{AppState, now_ns};
use crate::internal_events::{AuthRefused, InternalEvent};
use crate::stream::subscriber::wants;
use crate::stream::{Event, Full, Payload, Slot, Subscription};

/// How long the close frame may wait for the client to read.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub(super) struct Session {
    socket: WebSocket,
    state: AppState,
    /// Arrival times of the client's recent messages, for its rate limit.
    received: VecDeque<Instant>,
    filter: Option<Filter>,
    /// Set while subscribed: this client's inbox in the hub.
    sub: Option<Subscription>,
    /// The newest event id sent (replay and live may overlap).
    last_sent: u64,
    lags: VecDeque<Instant>,
    /// Sending retained events (their delivery time is not the stream's latency).
    replaying: bool,
    /// When each event fed to the socket but not yet flushed was published.
    unflushed: Vec<Instant>,
    /// Whose key: its scope is forced into every filter.
    principal: crate::auth::Principal,
}

/// Why a session ends.
enum End {
    Gone,
    Close(u16, &'static str),
}

impl Session {
    pub(super) fn new(socket: WebSocket, state: AppState) -> Self {
        Session {
            socket,
            state,
            received: VecDeque::new(),
            filter: None,
            sub: None,
            last_sent: 0,
            lags: VecDeque::new(),
            replaying: false,
            unflushed: Vec::new(),
            principal: crate::auth::Principal::open(),
        }
    }

    pub(super) async fn run(mut self, access: Access) {
        let end = match self.admit(access).await {
            Ok((_slot, first)) => self.serve(first).await,
            Err(end) => end,
        };
        if let End::Close(code, reason) = end {
            let label = match code {
                CLOSE_TOO_SLOW => "too_slow",
                CLOSE_UNAUTHORIZED => "unauthorized",
                CLOSE_FORBIDDEN => "forbidden",
                CLOSE_KEY_LIMIT => "key_subscriber_limit",
                1013 => "too_many_subscribers",
                1008 => "message_rate",
                _ => "shutdown",
            };
            self.state.metrics.stream_closed.with_label_values(&[label]).inc();
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            // The close frame queues behind what the client has not read yet; give a
            // client that reads again a moment to get it.
            let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Authenticates (reading the first message if the key must come in it) and takes a
    /// subscriber slot. Returns the slot, held for the session, and the first message when
    /// it was a `subscribe` carrying the key, still to be handled.
    async fn admit(&mut self, access: Access) -> Result<(Slot, Option<String>), End> {
        let (principal, first) = match access {
            Access::Open => (None, None),
            Access::Holder(p) => (Some(p), None),
            Access::AwaitingKey => {
                let (principal, first) = self.first_message_key().await?;
                (Some(principal), first)
            }
        };
        if let Some(p) = principal {
            if !p.may_read() {
                return Err(End::Close(CLOSE_FORBIDDEN, "this API key may not read the stream"));
            }
            self.principal = p;
        }
        let holder = self.state.api_keys.enabled().then(|| Arc::clone(&self.principal.name));
        match self.state.stream_slots.take(holder) {
            Ok(slot) => Ok((slot, first)),
            Err(Full::Process) => Err(End::Close(1013, "too many subscribers; retry later")),
            Err(Full::Key) => Err(End::Close(CLOSE_KEY_LIMIT, "this API key holds too many subscriptions")),
        }
    }

    async fn first_message_key(&mut self) -> Result<(crate::auth::Principal, Option<String>), End> {
        let refuse = |_| End::Close(CLOSE_UNAUTHORIZED, "an API key is required");
        let text = match tokio::time::timeout(secs(self.state.config.stream.auth_timeout_s), self.socket.recv())
            .await
            .map_err(refuse)?
        {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => return Err(End::Close(CLOSE_UNAUTHORIZED, "an API key is required")),
            Some(Err(e)) if too_big(&e) => return Err(End::Close(1009, "a message over 64 KiB")),
            None | Some(Err(_)) => return Err(End::Gone),
        };
        let (key, pass_on): (Option<ApiKey>, bool) = match parse(&text) {
            Ok(ClientMessage::Auth { api_key }) => (Some(api_key), false),
            Ok(ClientMessage::Subscribe { api_key, .. }) => (api_key, true),
            _ => (None, false),
        };
        let holder = key.and_then(|k| self.state.api_keys.holder(&k.0));
        match holder {
            Some(holder) => {
                if !pass_on {
                    self.send(json!({"type": "authenticated", "holder": &*holder.name}))
                        .await?;
                }
                Ok((holder, pass_on.then(|| text.to_string())))
            }
            None => {
                AuthRefused {
                    path: crate::api::STREAM_PATH,
                }
                .emit(&self.state.metrics);
                let _ = self
                    .error(
                        "unauthorized",
                        "send a valid API key first: {\"type\":\"auth\",\"api_key\":\"...\"}, or in the upgrade request's headers".into(),
                    )
                    .await;
                Err(End::Close(CLOSE_UNAUTHORIZED, "an API key is required"))
            }
        }
    }

    async fn serve(&mut self, first: Option<String>) -> End {
        if let Some(text) = first
            && let Err(end) = self.on_message(&text).await
        {
            return end;
        }
        let mut heartbeat = tokio::time::interval(secs(self.state.config.stream.heartbeat_s));
        heartbeat.tick().await;
        loop {
            let step = tokio::select! {
                msg = self.socket.recv() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_message(&text).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.error("malformed_message", "messages are JSON text".into()).await
                    }
                    Some(Err(e)) if too_big(&e) => Err(End::Close(1009, "a message over 64 KiB")),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(End::Gone),
                    Some(Ok(_)) => Ok(()),
                },
                () = ready(&self.sub) => self.on_events().await,
                _ = heartbeat.tick() => self.heartbeat().await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn heartbeat(&mut self) -> Result<(), End> {
        let next_id = self.state.hub.next_id();
        self.send(json!({"type": "heartbeat", "ts": format_rfc3339(now_ns()), "next_id": next_id}))
            .await
    }

    async fn on_message(&mut self, text: &str) -> Result<(), End> {
        let now = Instant::now();
        let limits = &self.state.config.stream;
        let window = secs(limits.client_window_s);
        self.received.push_back(now);
        while self.received.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.received.pop_front();
        }
        if self.received.len() > limits.max_client_messages {
            return Err(End::Close(1008, "too many messages from the client"));
        }
        let parsed = parse(text);
        // The key's stream budget (shared by its connections); heartbeats are free.
        if !matches!(parsed, Ok(ClientMessage::Heartbeat))
            && self.state.api_keys.enabled()
            && let Err(refused) = self.state.limits.check(&self.principal, RouteClass::Stream)
        {
            self.state.metrics.rate_limited.with_label_values(&["stream"]).inc();
            let retry_after_s = refused.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let body = json!({"type": "error", "code": "rate_limited", "limit": "stream_per_minute",
                "retry_after_s": retry_after_s,
                "message": format!("this key may send {} stream messages a minute; the message was not applied", refused.per_minute)});
            return self.send(body).await;
        }
        match parsed {
            Err((code, message)) => self.error(code, message).await,
            Ok(ClientMessage::Heartbeat) => self.heartbeat().await,
            // Already authenticated (by header, or by this very message): nothing to do.
            Ok(ClientMessage::Auth { .. }) => Ok(()),
            Ok(ClientMessage::Unsubscribe) => {
                self.sub = None;
                self.filter = None;
                self.send(json!({"type": "unsubscribed"})).await
            }
            Ok(ClientMessage::UpdateFilter { filter }) => {
                if self.sub.is_none() {
                    return self
                        .error("not_subscribed", "subscribe before update_filter".into())
                        .await;
                }
                self.update_filter(filter).await
            }
            Ok(ClientMessage::Subscribe {
                filter,
                resume_from,
                resume_from_offset,
                api_key: _,
            }) => {
                let Some(filter) = self.valid_filter(filter).await? else {
                    return Ok(());
                };
                // Registered before the retained events are read, atomically with the id
                // its inbox starts at: nothing falls in between, and what is both replayed
                // and received is sent once, by id.
                let (sub, next) = self.state.hub.subscribe(filter.clone());
                self.sub = Some(sub);
                self.last_sent = next - 1;
                self.filter = Some(filter);
                let connected = json!({"type": "connected", "filter": self.filter, "next_id": next});
                self.send(connected).await?;
                match (resume_from, resume_from_offset) {
                    (_, Some(offset)) => self.replay_offsets(offset, next).await,
                    (Some(last), None) => self.replay(last).await,
                    (None, None) => Ok(()),
                }
            }
        }
    }

    /// The filter, or None after telling the client what is wrong with it.
    async fn valid_filter(&mut self, spec: FilterSpec) -> Result<Option<Filter>, End> {
        match Filter::from_spec(spec) {
            Ok(mut f) => {
                f.scope = self.principal.scope.clone();
                Ok(Some(f))
            }
            Err(e) => {
                let body = json!({"type": "error", "code": "invalid_filter", "field": e.field, "message": e.message});
                self.send(body).await?;
                Ok(None)
            }
        }
    }

    async fn update_filter(&mut self, spec: FilterSpec) -> Result<(), End> {
        let Some(filter) = self.valid_filter(spec).await? else {
            return Ok(());
        };
        if let Some(sub) = &self.sub {
            sub.set_filter(filter.clone());
        }
        let body = json!({"type": "filter_updated", "filter": filter, "next_id": self.state.hub.next_id()});
        self.filter = Some(filter);
        self.send(body).await
    }

    async fn replay(&mut self, last: u64) -> Result<(), End> {
        let replay = self.state.hub.replay(last);
        for gone in &replay.gone {
            self.send(
                json!({"type": "gone", "kind": gone.kind, "from_id": gone.from, "to_id": gone.to,
                "message": format!("{}s with ids in this range are no longer retained", gone.kind)}),
            )
            .await?;
        }
        // An id from another run of the server counts from 0 (see `Hub::replay`).
        self.last_sent = replay.after;
        self.send_replayed(replay.events).await
    }

    /// Alerts after an `ai-logs.alerts` offset (from any replica); lines are not replayed
    /// by offset, the stream's lines continue from now.
    async fn replay_offsets(&mut self, offset: i64, live_from: u64) -> Result<(), End> {
        let (gone, events) = self.state.hub.replay_offsets(offset);
        if let Some((from, to)) = gone {
            self.send(
                json!({"type": "gone", "kind": "alert", "from_offset": from, "to_offset": to,
                "message": "alerts at these offsets are no longer retained"}),
            )
            .await?;
        }
        for e in events.iter().filter(|e| e.id < live_from) {
            self.replaying = true;
            let sent = self.send_event(e).await;
            self.replaying = false;
            sent?;
        }
        self.flush().await
    }

    async fn send_replayed(&mut self, events: Vec<Arc<Event>>) -> Result<(), End> {
        self.replaying = true;
        let mut sent = Ok(());
        for e in events {
            sent = self.deliver(&e).await;
            if sent.is_err() {
                break;
            }
        }
        self.replaying = false;
        sent?;
        self.flush().await
    }

    /// Sends what the inbox holds (after saying how many were lost, if any), written to the
    /// socket at once: one flush (one syscall) for a burst rather than one per message.
    async fn on_events(&mut self) -> Result<(), End> {
        let Some(sub) = &self.sub else { return Ok(()) };
        let taken = sub.take();
        if taken.lost > 0 {
            self.lost(taken.lost).await?;
        }
        for e in &taken.events {
            self.deliver(e).await?;
        }
        self.flush().await
    }

    async fn lost(&mut self, missed: u64) -> Result<(), End> {
        self.state.metrics.stream_dropped.inc_by(missed);
        let now = Instant::now();
        let lag_window = secs(self.state.config.stream.lag_window_s);
        self.lags.push_back(now);
        while self.lags.front().is_some_and(|t| now.duration_since(*t) > lag_window) {
            self.lags.pop_front();
        }
        self.send(json!({"type": "dropped", "count": missed,
            "message": "this client read too slowly; the oldest messages were dropped"}))
            .await?;
        if self.lags.len() >= self.state.config.stream.max_lags {
            return Err(End::Close(CLOSE_TOO_SLOW, "too slow: messages dropped repeatedly"));
        }
        Ok(())
    }

    /// Sends an event the filter wants and this client has not had yet.
    async fn deliver(&mut self, e: &Event) -> Result<(), End> {
        if e.id <= self.last_sent {
            return Ok(());
        }
        self.send_event(e).await
    }

    async fn send_event(&mut self, e: &Event) -> Result<(), End> {
        // Checked again: replayed events were not filtered, and the filter may have changed
        // since an event was queued.
        if !self.filter.as_ref().is_some_and(|f| wants(f, &e.payload)) {
            return Ok(());
        }
        self.last_sent = self.last_sent.max(e.id);
        let text = e
            .rendered
            .get_or_init(|| {
                let body = match &e.payload {
                    Payload::Log(r) => log_message(e.id, r),
                    Payload::Line(l) => line_message(e.id, l),
                    Payload::Alert { alert, offset } => alert_message(e.id, *offset, alert),
                };
                Utf8Bytes::from(body.to_string())
            })
            .clone();
        self.write(text, false).await?;
        if !self.replaying {
            self.unflushed.push(e.at);
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
        self.write(text, true).await
    }

    async fn flush(&mut self) -> Result<(), End> {
        self.io(None).await
    }

    /// Queues a message on the socket, and with `flush` writes out everything queued.
    async fn write(&mut self, text: Utf8Bytes, flush: bool) -> Result<(), End> {
        self.io(Some(text)).await?;
        if flush { self.flush().await } else { Ok(()) }
    }

    /// Feeds `text` (queued, written when the buffer fills), or flushes with `None`; bounded
    /// by `stream.send_timeout_ms`. A flush records the delivery time of the events it sent.
    async fn io(&mut self, text: Option<Utf8Bytes>) -> Result<(), End> {
        let limit = Duration::from_millis(self.state.config.stream.send_timeout_ms);
        let flushing = text.is_none();
        let io = async {
            match text {
                Some(text) => self.socket.feed(Message::Text(text)).await,
                None => self.socket.flush().await,
            }
        };
        match tokio::time::timeout(limit, io).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(End::Gone),
            Err(_) => return Err(End::Close(CLOSE_TOO_SLOW, "too slow: a send did not complete")),
        }
        if flushing {
            for at in self.unflushed.drain(..) {
                self.state.metrics.stream_delivery.observe(at.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }
}

/// Resolves when the subscription's inbox has events; never without a subscription.
async fn ready(sub: &Option<Subscription>) {
    match sub {
        Some(sub) => sub.ready().await,
        None => std::future::pending().await,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// True when a read failed because the client's message was over the size limit: the client
/// gets close code 1009 ("message too big") instead of a dropped connection.
fn too_big(e: &axum::Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Capacity(_)))
}
