//! One typed configuration: defaults, then a TOML file, then `AILOGS_*` environment variables
//! (nested keys with `__`, e.g. `AILOGS_VIEWS__MAX_LINES`), then command-line flags.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address (`AILOGS_LISTEN`).
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `ailogs=debug,tower_http=info`.
    pub log_level: String,
    /// Pipeline worker threads; 0 means one per core.
    pub workers: usize,
    pub queue: QueueConfig,
    pub ingest: IngestConfig,
    pub views: ViewsConfig,
    /// Seconds to drain the queue after a shutdown signal.
    pub shutdown_grace_s: u64,
    /// Kafka bootstrap servers (`AILOGS_KAFKA_BROKERS`): ingest produces to `ai-logs.raw`.
    pub kafka_brokers: Option<String>,
    /// Postgres URL (`AILOGS_DATABASE_URL`): usage, conversations and offsets.
    pub database_url: Option<crate::secret::SecretUrl>,
    pub kafka: KafkaConfig,
    /// Redis URL (`AILOGS_REDIS_URL`): hot views of recent lines the API reads.
    pub redis_url: Option<crate::secret::SecretUrl>,
    /// Prefix of every Redis key ailogs writes.
    pub redis_prefix: String,
    /// Loki base URL for fallback queries (`AILOGS_LOKI_URL`). Not used by this build yet.
    pub loki_url: Option<String>,
    pub stream: StreamConfig,
    pub auth: AuthConfig,
    pub core: CoreSection,
    pub redis: RedisConfig,
}

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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys are stored as their SHA-256 (`ailogs api-key new` prints one and its entry).
    pub api_keys: Vec<ApiKeyEntry>,
    /// Accept `?api_key=` on the stream URL, for browsers, which cannot set headers on a
    /// WebSocket. Off by default: URLs end up in proxy and access logs.
    pub allow_url_key: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Who holds the key: shown in logs and metrics instead of the key.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            workers: 0,
            queue: QueueConfig::default(),
            ingest: IngestConfig::default(),
            views: ViewsConfig::default(),
            shutdown_grace_s: 10,
            kafka_brokers: None,
            database_url: None,
            kafka: KafkaConfig::default(),
            redis_url: None,
            redis_prefix: "ailogs".into(),
            loki_url: None,
            stream: StreamConfig::default(),
            auth: AuthConfig::default(),
            core: CoreSection::default(),
            redis: RedisConfig::default(),
        }
    }
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
        }
    }
}

impl Default for ViewsConfig {
    fn default() -> Self {
        ViewsConfig {
            max_lines: 500_000,
            max_age_s: 6 * 3600,
            dead_letters: 1_000,
        }
    }
}

impl Config {
    /// Loads the configuration. `env` is passed in (not read here) so tests stay hermetic.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    file.display()
                ))));
            }
            fig = fig.merge(Toml::file(file));
        }
        let mut env_pairs: Vec<(String, String)> = env
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("AILOGS_").map(|rest| (rest.to_owned(), v.clone())))
            .filter(|(k, _)| k != "CONFIG")
            .collect();
        env_pairs.sort();
        for (key, value) in env_pairs {
            let path = key.to_ascii_lowercase().replace("__", ".");
            fig = fig.merge(Serialized::default(&path, parse_env_value(&value)));
        }
        let config: Config = fig.extract().map_err(Box::new)?;
        config.validate().map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.queue.capacity_lines == 0 {
            return Err("queue.capacity_lines must be at least 1".into());
        }
        if self.views.max_lines == 0 {
            return Err("views.max_lines must be at least 1".into());
        }
        if self.ingest.max_line_bytes == 0 || self.ingest.max_body_bytes == 0 {
            return Err("ingest limits must be at least 1 byte".into());
        }
        if self.stream.queue == 0 || self.stream.max_subscribers == 0 || self.stream.max_subscribers_per_key == 0 {
            return Err("stream.queue and the stream subscriber limits must be at least 1".into());
        }
        for key in &self.auth.api_keys {
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "auth.api_keys: the entry named {:?} needs sha256 = 64 hex digits (`ailogs api-key new` prints one)",
                    key.name
                ));
            }
        }
        Ok(())
    }

    /// The core's settings; `durable` when a Kafka consumer in the process writes Postgres.
    pub fn core_config(&self, durable: bool) -> ailogs_pipeline::CoreConfig {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 1_000_000_000) * 1_000_000_000;
        ailogs_pipeline::CoreConfig {
            durable,
            max_template_services: self.core.max_template_services,
            max_alerts: self.core.max_alerts,
            alert_fold_window_ns: secs(self.core.alert_fold_window_s),
            publish_interval_ns: i64::try_from(self.core.publish_interval_ms).unwrap_or(i64::MAX / 1_000_000)
                * 1_000_000,
        }
    }

    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Backends this build cannot use yet, named for the start-up warning and /health.
    pub fn unsupported_backends(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (name, set) in [("loki", self.loki_url.is_some())] {
            if set {
                v.push(name);
            }
        }
        v
    }
}

/// Environment values are strings; numbers and booleans are recognised as such.
fn parse_env_value(v: &str) -> figment::value::Value {
    use figment::value::{Num, Value};
    let tag = figment::value::Tag::Default;
    if let Ok(n) = v.parse::<u64>() {
        return Value::Num(tag, Num::U64(n));
    }
    match v {
        "true" => Value::Bool(tag, true),
        "false" => Value::Bool(tag, false),
        _ => Value::String(tag, v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_embedded() {
        let c = Config::load(None, &env(&[("PATH", "/bin")])).expect("defaults load");
        assert_eq!(c, Config::default());
        assert!(c.unsupported_backends().is_empty());
    }

    #[test]
    fn env_overrides_file() {
        let dir = std::env::temp_dir().join(format!("ailogs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let file = dir.join("ailogs.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[views]\nmax_lines = 10\n").expect("write");
        let c = Config::load(
            Some(&file),
            &env(&[
                ("AILOGS_LISTEN", "0.0.0.0:7000"),
                ("AILOGS_VIEWS__MAX_AGE_S", "60"),
                ("AILOGS_KAFKA_BROKERS", "k:9092"),
                ("AILOGS_LOKI_URL", "http://loki:3100"),
                ("AILOGS_KAFKA__BATCH_MAX_LINES", "77"),
                ("AILOGS_CONFIG", "ignored"),
            ]),
        )
        .expect("loads");
        assert_eq!(c.listen.to_string(), "0.0.0.0:7000");
        assert_eq!((c.views.max_lines, c.views.max_age_s), (10, 60));
        assert_eq!(c.kafka_brokers.as_deref(), Some("k:9092"));
        assert_eq!(c.kafka.batch_max_lines, 77);
        assert_eq!(c.unsupported_backends(), vec!["loki"]);
    }

    #[test]
    fn the_readme_configuration_block_loads() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```toml\nlisten =")
            .expect("the README's configuration block")
            + 8;
        let block = &readme[start..start + readme[start..].find("```").expect("block end")];
        let dir = std::env::temp_dir().join(format!("ailogs-readme-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let file = dir.join("readme.toml");
        std::fs::write(&file, block).expect("write");
        let c = Config::load(Some(&file), &env(&[])).expect("the documented keys load");
        assert_eq!(c.kafka.alerts_topic, "ai-logs.alerts");
        assert_eq!(
            c.stream,
            StreamConfig::default(),
            "the documented stream values are the defaults"
        );
        assert_eq!(c.redis_prefix, "ailogs");
    }

    #[test]
    fn bad_values_are_reported() {
        let err = Config::load(None, &env(&[("AILOGS_QUEUE__CAPACITY_LINES", "lots")])).expect_err("invalid");
        assert!(err.to_string().contains("capacity_lines"), "{err}");
        let err = Config::load(None, &env(&[("AILOGS_NOPE", "1")])).expect_err("unknown key");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
