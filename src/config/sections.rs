//! The configuration's sections, each with its defaults.

use serde::{Deserialize, Serialize};

/// The Redis hot views' bounds (`[redis]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Lines kept per service stream (approximately: `MAXLEN ~`).
    pub service_stream_len: usize,
    /// Lines kept per request and per conversation.
    pub id_stream_len: usize,
    /// Requests and conversations expire this long after their last line.
    pub id_ttl_s: i64,
    /// Per-minute counters are kept this long.
    pub counter_ttl_s: i64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            service_stream_len: 20_000,
            id_stream_len: 2_000,
            id_ttl_s: 6 * 3600,
            counter_ttl_s: 2 * 86_400,
        }
    }
}

/// The pipeline core's state bounds (`[core]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreSection {
    /// Services with their own template miner; lines of further services share one.
    pub max_template_services: usize,
    /// Alerts kept for /analyze (folded repeats count once).
    pub max_alerts: usize,
    /// Repeats of an alert (same kind and key) within this many seconds fold into it.
    pub alert_fold_window_s: u64,
    /// The alerts /analyze reads are republished at most this often while they change.
    pub publish_interval_ms: u64,
}

impl Default for CoreSection {
    fn default() -> Self {
        let d = ailogs_pipeline::CoreConfig::default();
        CoreSection {
            max_template_services: d.max_template_services,
            max_alerts: d.max_alerts,
            alert_fold_window_s: (d.alert_fold_window_ns / 1_000_000_000) as u64,
            publish_interval_ms: (d.publish_interval_ns / 1_000_000) as u64,
        }
    }
}

/// The WebSocket stream (`/api/v1/ai_logs/stream`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Events a subscriber's inbox holds before it loses the oldest.
    pub queue: usize,
    /// Alerts kept for `resume_from`. Kept apart from lines, so a burst of lines does not
    /// push out the alerts a reconnecting client missed.
    pub retain_alerts: usize,
    /// Lines kept for `resume_from`.
    pub retain_lines: usize,
    /// Nothing older than this (since it was published) is replayed.
    pub retain_age_s: u64,
    /// Subscribers this process serves; more are closed with 1013 (try again later).
    pub max_subscribers: usize,
    /// Subscribers one API key may hold open (with keys configured); more are closed with 4029.
    pub max_subscribers_per_key: usize,
    /// A send to a client that takes longer means it stopped reading: closed with 4008.
    /// Generous on purpose: a client that pauses and reads again is sent `dropped` with
    /// the count it lost, which it learns nothing from once disconnected.
    pub send_timeout_ms: u64,
    /// A ping goes to each subscriber this often.
    pub heartbeat_s: u64,
    /// A client that must send its key in a message has this long to do it.
    pub auth_timeout_s: u64,
    /// More client messages than this within `client_window_s` close with 1008.
    pub max_client_messages: usize,
    pub client_window_s: u64,
    /// Inbox overflows tolerated within `lag_window_s` before a client is closed with 4008.
    pub max_lags: usize,
    pub lag_window_s: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            queue: 4096,
            retain_alerts: 10_000,
            retain_lines: 20_000,
            retain_age_s: 15 * 60,
            max_subscribers: 10_000,
            max_subscribers_per_key: 1_000,
            send_timeout_ms: 60_000,
            heartbeat_s: 30,
            auth_timeout_s: 10,
            max_client_messages: 100,
            client_window_s: 10,
            max_lags: 3,
            lag_window_s: 60,
        }
    }
}

/// API keys. With none configured the API is open (the embedded default); with any, every
/// request but `/`, health and metrics must present one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys are stored as their SHA-256 (`ailogs api-key new` prints one and its entry).
    pub api_keys: Vec<ApiKeyEntry>,
    /// Accept `?api_key=` on the stream URL, for browsers, which cannot set headers on a
    /// WebSocket. Off by default: URLs end up in proxy and access logs.
    pub allow_url_key: bool,
    /// Whether keys scoped to some workspaces also see lines that carry no workspace id.
    /// Off by default: such lines may belong to anyone, so only `all`-scoped keys see them.
    pub scoped_keys_see_unscoped: bool,
    /// Seconds between reloads of the keys kept in Postgres (new, revoked).
    pub reload_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            api_keys: Vec::new(),
            allow_url_key: false,
            scoped_keys_see_unscoped: false,
            reload_s: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Who holds the key: shown in logs and metrics instead of the key.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    #[serde(default)]
    pub role: super::Role,
    /// The workspaces the key reads; left out: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    /// Per-minute overrides of `[rate_limits]` for this key.
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: super::KeyLimits,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    pub raw_topic: String,
    pub dlq_topic: String,
    /// Alerts for the stream on every API replica (one partition: one order of alerts).
    pub alerts_topic: String,
    /// Enriched lines consumers publish for every API replica's live stream.
    pub lines_topic: String,
    pub group_id: String,
    /// A consumer that stops heartbeating for this long loses its partitions.
    pub session_timeout_ms: u32,
    /// Longest a consumer's fetch waits at the broker for data (librdkafka
    /// `fetch.wait.max.ms`): a broker that does not answer as data arrives (the mock, tansu)
    /// holds each fetch this long, and alerts wait on it.
    pub fetch_wait_ms: u32,
    /// How long the ingest producer keeps trying to deliver a line before spooling it
    /// (librdkafka `message.timeout.ms`); under Promtail's 10 s request timeout.
    pub delivery_timeout_ms: u32,
    /// Each consumer reports the partitions it owns (and their ends) this often.
    pub owner_report_ms: u64,
    /// A partition with lag whose owner has not reported for this long is `unowned`.
    pub owner_stale_ms: u64,
    /// A partition with lag whose stored offset has not moved for this long is `stalled`.
    pub stall_after_ms: u64,
    /// A consumer that sees partitions unowned this long (at least twice the session
    /// timeout) re-joins the group, then again after twice as long each time.
    pub rejoin_after_ms: u64,
    /// Lines Kafka does not acknowledge are kept here until it is back.
    pub spool_dir: std::path::PathBuf,
    /// Past this size pushes are answered 503 (Promtail retries them).
    pub spool_max_bytes: u64,
    /// A batch is written to Postgres at this many lines...
    pub batch_max_lines: usize,
    /// ...or when its oldest line has waited this long. Alerts are raised after their
    /// batch commits, so this bounds how late they reach stream subscribers.
    pub batch_max_wait_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            raw_topic: crate::kafka::RAW_TOPIC.into(),
            dlq_topic: crate::kafka::DLQ_TOPIC.into(),
            alerts_topic: crate::kafka::ALERTS_TOPIC.into(),
            lines_topic: crate::kafka::LINES_TOPIC.into(),
            group_id: crate::kafka::GROUP_ID.into(),
            session_timeout_ms: 10_000,
            fetch_wait_ms: 50,
            delivery_timeout_ms: 8_000,
            owner_report_ms: 2_000,
            owner_stale_ms: 20_000,
            stall_after_ms: 120_000,
            rejoin_after_ms: 60_000,
            spool_dir: "ailogs-spool".into(),
            spool_max_bytes: 1 << 30,
            batch_max_lines: 5_000,
            batch_max_wait_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Lines the in-process queue holds before pushes wait.
    pub capacity_lines: usize,
    /// How long a push waits for room before it is answered 503 (Promtail retries 5xx).
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest request body as sent (Loki: 100 MiB).
    pub max_body_bytes: usize,
    /// Largest body after decompression.
    pub max_decompressed_bytes: usize,
    /// Longest accepted line (Loki: 256 KiB).
    pub max_line_bytes: usize,
    /// Event times more than this past the receive time are dead-lettered
    /// (Loki's `creation_grace_period`: 10 minutes).
    pub max_future_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewsConfig {
    /// Most lines the in-memory views hold; the oldest are evicted first.
    pub max_lines: usize,
    /// Lines older than this (since arrival) are evicted.
    pub max_age_s: u64,
    /// Dead letters kept for inspection.
    pub dead_letters: usize,
    /// Queries that scan lines (filters the indexes do not keep, Redis reads) running at
    /// once; more are answered 503 `busy`. Unset: 2 × workers.
    pub max_concurrent_scans: Option<usize>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity_lines: 200_000,
            max_wait_ms: 5_000,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 100 << 20,
            max_decompressed_bytes: 512 << 20,
            max_line_bytes: 256 << 10,
            max_future_s: 600,
        }
    }
}

impl Default for ViewsConfig {
    fn default() -> Self {
        ViewsConfig {
            max_lines: 500_000,
            max_age_s: 6 * 3600,
            dead_letters: 1_000,
            max_concurrent_scans: None,
        }
    }
}

/// Where ids are looked for in Loki (`[loki] ids_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LokiIds {
    /// Anywhere in the line text (`|= "req-1"`): whatever the field is called.
    Text,
    /// Structured metadata (Promtail's `structured_metadata` stage).
    Metadata,
}

/// The Loki fallback (`[loki]`; the URL is `loki_url`, `AILOGS_LOKI_URL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiConfig {
    /// Sent as `X-Scope-OrgID` (multi-tenant Loki).
    pub tenant: Option<String>,
    /// Basic auth user; the password is `password`.
    pub username: Option<String>,
    pub password: Option<crate::secret::Secret>,
    /// Sent as `Authorization: Bearer` (instead of basic auth).
    pub bearer_token: Option<crate::secret::Secret>,
    /// For an https Loki signed by a private CA: a PEM file of CA certificates trusted besides
    /// the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// One request's timeout.
    pub timeout_ms: u64,
    /// Attempts per request when Loki answers 429 or 5xx or does not answer.
    pub attempts: u32,
    /// The stream label that holds the service name (`service_name`, `service`, `job`, `app`,
    /// `container`, ...).
    pub service_label: String,
    pub ids_in: LokiIds,
    /// Long ranges are asked in windows of this many hours.
    pub split_hours: u64,
    /// Most lines one query reads from Loki; past it the answer says `truncated`.
    pub max_lines: usize,
    /// Most time one query spends reading Loki; past it the answer says `truncated`.
    pub max_query_ms: u64,
    /// How far back an id lookup without `time_range` asks Loki.
    pub id_lookback_h: u64,
    /// Consecutive failures that open the circuit breaker...
    pub breaker_failures: u32,
    /// ...for this long, after which one probe is let through.
    pub breaker_open_s: u64,
    /// Lines of Loki answers cached in memory (without Redis).
    pub cache_lines: usize,
}

impl LokiConfig {
    /// `split_hours` in ns.
    pub fn split_ns(&self) -> i64 {
        hours_ns(self.split_hours)
    }

    /// `id_lookback_h` in ns.
    pub fn id_lookback_ns(&self) -> i64 {
        hours_ns(self.id_lookback_h)
    }
}

fn hours_ns(hours: u64) -> i64 {
    i64::try_from(hours)
        .unwrap_or(i64::MAX)
        .saturating_mul(3_600_000_000_000)
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            tenant: None,
            username: None,
            password: None,
            bearer_token: None,
            ca_file: None,
            timeout_ms: 10_000,
            attempts: 3,
            service_label: "service_name".into(),
            ids_in: LokiIds::Text,
            split_hours: 6,
            max_lines: 50_000,
            max_query_ms: 15_000,
            id_lookback_h: 24,
            breaker_failures: 5,
            breaker_open_s: 30,
            cache_lines: 200_000,
        }
    }
}
