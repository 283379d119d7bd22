//! The commands besides `serve` and `demo`: glue between the CLI and the stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ailogs_pipeline::usage::PriceBook;
use anyhow::Context as _;

use crate::backoff::Backoff;
use crate::billing;
use crate::cli::ReportFormat;
use crate::config::Config;
use crate::consume::kafka::ownership::OwnerSettings;
use crate::consume::kafka::{ConsumerSettings, RecordSink};
use crate::metrics::Metrics;
use crate::secret::SecretUrl;
use crate::store::postgres::Postgres;
use crate::store::redis::RedisViews;

pub async fn postgres(config: &Config) -> anyhow::Result<Postgres> {
    let url = config
        .database_url
        .as_ref()
        .map(SecretUrl::expose)
        .context("AILOGS_DATABASE_URL (database_url) is not set")?;
    Postgres::connect(url).await.context("connecting to Postgres")
}

/// Migrations, then the shipped prices (rows already there are kept).
pub async fn migrate(pg: &Postgres) -> anyhow::Result<u64> {
    pg.migrate().await.context("running migrations")?;
    pg.seed_prices(&PriceBook::shipped())
        .await
        .context("loading model prices")
}

/// Postgres for a long-running process: migrated, with its prices, waiting (and saying so)
/// while Postgres is unreachable instead of exiting.
pub async fn postgres_ready(config: &Config) -> anyhow::Result<(Postgres, PriceBook)> {
    let url = config
        .database_url
        .as_ref()
        .map(SecretUrl::expose)
        .context("AILOGS_DATABASE_URL (database_url) is not set")?;
    let pg = Postgres::connect_lazy(url).context("AILOGS_DATABASE_URL")?;
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    loop {
        let ready = async {
            migrate(&pg).await?;
            pg.load_prices().await.context("reading model prices")
        };
        match ready.await {
            Ok(prices) => return Ok((pg, prices)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "postgres not ready; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

pub fn consumer_settings(config: &Config) -> anyhow::Result<ConsumerSettings> {
    let brokers = config
        .kafka_brokers
        .clone()
        .context("AILOGS_KAFKA_BROKERS (kafka_brokers) is not set")?;
    Ok(ConsumerSettings {
        brokers,
        group_id: config.kafka.group_id.clone(),
        topic: config.kafka.raw_topic.clone(),
        dlq_topic: config.kafka.dlq_topic.clone(),
        alerts_topic: config.kafka.alerts_topic.clone(),
        lines_topic: config.kafka.lines_topic.clone(),
        session_timeout_ms: config.kafka.session_timeout_ms,
        fetch_wait_ms: config.kafka.fetch_wait_ms,
        owners: OwnerSettings::from(&config.kafka),
        batch_max_lines: config.kafka.batch_max_lines.max(1),
        batch_max_wait: Duration::from_millis(config.kafka.batch_max_wait_ms),
        limits: config.decode_limits(),
    })
}

/// A consumer running on its own thread.
pub struct RunningConsumer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl RunningConsumer {
    /// `pg` as `postgres_ready` returns it (the caller has it already); `views.core` built
    /// durable with the prices it returned.
    pub async fn start(
        config: &Config,
        pg: Postgres,
        metrics: Arc<Metrics>,
        views: RecordSink,
    ) -> anyhow::Result<Self> {
        let settings = consumer_settings(config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::runtime::Handle::current();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ailogs-consumer".into())
            .spawn(move || crate::consume::kafka::run(settings, pg, handle, flag, metrics, views))?;
        Ok(RunningConsumer { stop, thread })
    }

    /// Asks the consumer to write what it holds and stop; waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || self.thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?
    }
}

/// `ailogs consume`: until ctrl-c / SIGTERM.
pub async fn consume(config: &Config) -> anyhow::Result<()> {
    let redis = match &config.redis_url {
        Some(url) => Some(
            RedisViews::new(url.expose(), &config.redis_prefix, config.redis.clone()).context("AILOGS_REDIS_URL")?,
        ),
        None => None,
    };
    let (pg, prices) = postgres_ready(config).await?;
    let patterns = crate::patterns::PatternService::load(Some(pg.clone())).await?;
    patterns.spawn_reload();
    let sink = RecordSink {
        memory: None,
        redis,
        patterns: patterns.matcher(),
        core: Arc::new(parking_lot::Mutex::new(ailogs_pipeline::Core::new(
            config.core_config(true),
            prices,
        ))),
    };
    let metrics = Arc::new(Metrics::new());
    let consumer = RunningConsumer::start(config, pg, Arc::clone(&metrics), sink).await?;
    let (stopped, stop) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(crate::consume::http::serve(config.listen, metrics, async move {
        let _ = stop.await;
    }));
    crate::signal::shutdown_signal().await;
    let stopped_consumer = consumer.stop().await;
    let _ = stopped.send(());
    http.await??;
    stopped_consumer
}

pub async fn create_topics(config: &Config, replication: Option<i32>) -> anyhow::Result<()> {
    let brokers = config
        .kafka_brokers
        .as_deref()
        .context("AILOGS_KAFKA_BROKERS (kafka_brokers) is not set")?;
    let (created, existing) = crate::kafka::create_topics(brokers, replication).await?;
    println!(
        "created: {}",
        if created.is_empty() {
            "none".to_owned()
        } else {
            created.join(", ")
        }
    );
    println!(
        "already there: {}",
        if existing.is_empty() {
            "none".to_owned()
        } else {
            existing.join(", ")
        }
    );
    Ok(())
}

pub async fn billing_report(
    config: &Config,
    month: &str,
    workspace: Option<&str>,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let pg = postgres(config).await?;
    let report = billing::report(&pg, month, workspace).await?;
    match format {
        ReportFormat::Csv => print!("{}", billing::to_csv(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    if report.mismatches.is_empty() {
        eprintln!(
            "reconciled: {} rows match ai_operations to the token",
            report.rows.len()
        );
        Ok(())
    } else {
        for m in &report.mismatches {
            eprintln!("MISMATCH {m}");
        }
        anyhow::bail!(
            "usage does not reconcile with ai_operations ({} mismatches)",
            report.mismatches.len()
        )
    }
}

pub async fn billing_reprice(config: &Config, from: &str, to: &str) -> anyhow::Result<()> {
    let from = billing::parse_instant(from).map_err(anyhow::Error::msg)?;
    let to = billing::parse_instant(to).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(from < to, "--from must be before --to");
    let pg = postgres(config).await?;
    let r = billing::reprice(&pg, from, to).await?;
    println!(
        "repriced {} requests ({} changed): cost {} -> {} USD",
        r.operations,
        r.changed,
        billing::usd(r.cost_before_nanousd),
        billing::usd(r.cost_after_nanousd)
    );
    Ok(())
}
