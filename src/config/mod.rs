//! One typed configuration: defaults, then a TOML file, then `AILOGS_*` environment variables
//! (nested keys with `__`, e.g. `AILOGS_VIEWS__MAX_LINES`), then command-line flags. The
//! sections (`[kafka]`, `[stream]`, ...) with their documented defaults are in `sections`.

mod sections;
mod tenancy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use sections::*;
pub use tenancy::*;

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
    /// With Kafka and Postgres, `serve` also runs a consumer (`AILOGS_CONSUME_IN_SERVE`).
    /// A deployment with `ailogs consume` replicas sets it false, so API replicas only serve.
    pub consume_in_serve: bool,
    pub kafka: KafkaConfig,
    /// Redis URL (`AILOGS_REDIS_URL`): hot views of recent lines the API reads.
    pub redis_url: Option<crate::secret::SecretUrl>,
    /// Prefix of every Redis key ailogs writes.
    pub redis_prefix: String,
    /// Loki base URL (`AILOGS_LOKI_URL`): windows and ids the views do not hold are read
    /// from it. Settings in `[loki]`.
    pub loki_url: Option<String>,
    pub loki: LokiConfig,
    pub stream: StreamConfig,
    pub auth: AuthConfig,
    pub core: CoreSection,
    pub redis: RedisConfig,
    pub masking: MaskingConfig,
    pub rate_limits: RateLimitConfig,
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
            consume_in_serve: true,
            kafka: KafkaConfig::default(),
            redis_url: None,
            redis_prefix: "ailogs".into(),
            loki_url: None,
            loki: LokiConfig::default(),
            stream: StreamConfig::default(),
            auth: AuthConfig::default(),
            core: CoreSection::default(),
            redis: RedisConfig::default(),
            masking: MaskingConfig::default(),
            rate_limits: RateLimitConfig::default(),
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
            // Not server settings: the config file's path, and the MCP bridge's client settings.
            .filter(|(k, _)| !matches!(k.as_str(), "CONFIG" | "API_KEY" | "API_URL"))
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
        if let Some(url) = &self.loki_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("loki_url must be an http:// or https:// URL, not {url:?}"));
        }
        if self.loki.attempts == 0 || self.loki.split_hours == 0 || self.loki.max_lines == 0 {
            return Err("loki.attempts, loki.split_hours and loki.max_lines must be at least 1".into());
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
            if key.workspaces.as_ref().is_some_and(|w| w.is_empty()) {
                return Err(format!(
                    "auth.api_keys: the entry named {:?} lists no workspaces; leave `workspaces` out for all",
                    key.name
                ));
            }
        }
        self.masking.redactor()?;
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

    /// The decoder's limits this configuration sets.
    pub fn decode_limits(&self) -> ailogs_pipeline::DecodeLimits {
        ailogs_pipeline::DecodeLimits {
            max_line_bytes: self.ingest.max_line_bytes,
            max_future_ns: self
                .ingest
                .max_future_s
                .saturating_mul(1_000_000_000)
                .try_into()
                .unwrap_or(i64::MAX),
            ..ailogs_pipeline::DecodeLimits::default()
        }
    }

    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
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
        assert_eq!(c.loki_url.as_deref(), Some("http://loki:3100"));
    }

    #[test]
    fn the_readme_configuration_block_loads() {
        let readme = include_str!("../../README.md");
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
