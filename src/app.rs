//! Building and running ailogs: `Application::build` binds and wires everything;
//! `run_until_stopped` serves until the shutdown future resolves, then drains the queue.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ailogs_pipeline::Core;
use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::{self, AppState, State};
use crate::commands::RunningConsumer;
use crate::config::Config;
use crate::consume::embedded::{IngestQueue, Sinks, spawn_workers};
use crate::consume::kafka::RecordSink;
use crate::ingest::kafka::KafkaIngest;
use crate::ingest::spool::Spool;
use crate::metrics::Metrics;
use crate::patterns::PatternService;
pub use crate::signal::shutdown_signal;
use crate::store::dead_letters::DeadLetters;
use crate::store::memory::{MemoryViews, ViewLimits};
use crate::store::redis::RedisViews;
use crate::stream::tail::TailSettings;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    workers: Vec<JoinHandle<()>>,
    consumer: Option<RunningConsumer>,
    /// The stream's tail of the Kafka topics, and its stop flag.
    tail: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port), starts the pipeline workers, and with
    /// Kafka configured the producer (and with Postgres too, a consumer).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics = Arc::new(Metrics::new());
        let views = Arc::new(MemoryViews::new(
            ViewLimits {
                max_lines: config.views.max_lines,
                max_age: Duration::from_secs(config.views.max_age_s),
            },
            Arc::clone(&metrics),
        ));
        let dead_letters = Arc::new(DeadLetters::new(config.views.dead_letters));
        let (queue, rx) = IngestQueue::new(
            config.queue.capacity_lines,
            Duration::from_millis(config.queue.max_wait_ms),
            Arc::clone(&metrics),
        );
        let workers = config.worker_count();
        let limits = config.decode_limits();
        let redis = match &config.redis_url {
            Some(url) => Some(
                RedisViews::new(url.expose(), &config.redis_prefix, config.redis.clone())
                    .context("AILOGS_REDIS_URL")?,
            ),
            None => None,
        };
        let (pg, prices) = match &config.database_url {
            Some(_) => {
                let (pg, prices) = crate::commands::postgres_ready(&config).await?;
                (Some(pg), prices)
            }
            None => (None, ailogs_pipeline::usage::PriceBook::shipped()),
        };
        let patterns = PatternService::load(pg.clone()).await?;
        let masking = config
            .masking
            .redactor()
            .map_err(anyhow::Error::msg)?
            .map(|r| Arc::new(crate::masking::Masking::new(r, &metrics)));
        let api_keys = Arc::new(crate::auth::KeyStore::new(&config.auth));
        if let Some(pg) = &pg {
            // Before serving: a server with keys only in Postgres must not start open.
            let keys = crate::auth::pg::active(pg.pool(), config.auth.scoped_keys_see_unscoped)
                .await
                .context("reading api_keys")?;
            api_keys.replace_stored(keys);
        }
        // Durable when a consumer in this process writes Postgres: its batches then carry
        // usage and insight deltas.
        let durable = config.kafka_brokers.is_some() && pg.is_some() && config.consume_in_serve;
        let core = Arc::new(parking_lot::Mutex::new(Core::new(
            config.core_config(durable),
            prices.clone(),
        )));
        let core_reader = core.lock().reader();
        let hub = crate::stream::Hub::new(crate::stream::HubConfig::from(&config.stream));
        patterns.spawn_reload();
        let sinks = Sinks {
            views: Arc::clone(&views),
            dead_letters: Arc::clone(&dead_letters),
            metrics: Arc::clone(&metrics),
            redis: redis.clone().map(|r| (r, tokio::runtime::Handle::current())),
            patterns: patterns.matcher(),
            core: Arc::clone(&core),
            hub: Arc::clone(&hub),
        };
        let handles = spawn_workers(workers, rx, sinks, limits, Arc::clone(&queue));
        let loki = match &config.loki_url {
            Some(url) => {
                tracing::info!(url, "windows and ids the views do not hold are read from loki");
                Some(Arc::new(
                    crate::loki::LokiFallback::new(
                        url,
                        &config.loki,
                        redis.clone(),
                        Arc::clone(&core),
                        patterns.matcher(),
                        limits,
                        masking.clone(),
                    )
                    .context("AILOGS_LOKI_URL")?,
                ))
            }
            None => None,
        };
        let kafka = match &config.kafka_brokers {
            Some(brokers) => {
                tracing::info!(topic = %config.kafka.raw_topic, "ingest produces to kafka (acks=all, idempotent)");
                let spool = Spool::open(&config.kafka.spool_dir, config.kafka.spool_max_bytes)
                    .with_context(|| format!("opening the spool at {}", config.kafka.spool_dir.display()))?;
                let ingest = KafkaIngest::new(
                    brokers,
                    &config.kafka.raw_topic,
                    limits,
                    Some(Arc::new(spool)),
                    Arc::clone(&metrics),
                    config.kafka.delivery_timeout_ms,
                )
                .context("creating the kafka producer")?;
                Some(Arc::new(ingest))
            }
            None => {
                tracing::warn!(
                    "embedded mode: in-process queue and in-memory views, nothing is durable; lines are lost on restart"
                );
                None
            }
        };
        let consumer = match (&kafka, &pg) {
            (Some(_), Some(pg)) if config.consume_in_serve => {
                let sink = RecordSink {
                    memory: Some(Arc::clone(&views)),
                    redis: redis.clone(),
                    patterns: patterns.matcher(),
                    core: Arc::clone(&core),
                };
                Some(RunningConsumer::start(&config, pg.clone(), Arc::clone(&metrics), sink).await?)
            }
            (Some(_), _) => {
                tracing::warn!("this process only ingests and serves: run `ailogs consume` to process");
                None
            }
            _ => None,
        };
        // With Kafka the stream is fed from the topics, so every replica sees every alert.
        let tail_stop = Arc::new(AtomicBool::new(false));
        let tail_reading = Arc::new(AtomicBool::new(false));
        let tail = config.kafka_brokers.as_ref().map(|brokers| {
            let settings = TailSettings {
                brokers: brokers.clone(),
                alerts_topic: config.kafka.alerts_topic.clone(),
                lines_topic: config.kafka.lines_topic.clone(),
                retain_alerts: config.stream.retain_alerts,
            };
            crate::stream::tail::spawn(
                settings,
                Arc::clone(&hub),
                Arc::clone(&tail_stop),
                Arc::clone(&tail_reading),
            )
        });
        let state = Arc::new(State {
            api_keys,
            limits: Arc::new(crate::api::limits::Limiters::new(config.rate_limits.clone())),
            audit: Arc::new(crate::audit::AuditLog::new(pg.as_ref(), Arc::clone(&metrics))),
            masking,
            scans: Arc::new(tokio::sync::Semaphore::new(
                config.views.max_concurrent_scans.unwrap_or(2 * workers.max(1)),
            )),
            stream_tail: tail.is_some().then_some(tail_reading),
            stream_slots: crate::stream::Slots::new(
                config.stream.max_subscribers,
                config.stream.max_subscribers_per_key,
            ),
            config,
            queue,
            views,
            dead_letters,
            metrics,
            started: Instant::now(),
            workers,
            kafka,
            consumer_running: consumer.is_some(),
            pg,
            redis,
            prices: Arc::new(prices),
            patterns,
            core: core_reader,
            hub,
            loki,
        });
        Ok(Application {
            listener,
            state,
            workers: handles,
            consumer,
            tail: tail.map(|t| (tail_stop, t)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> AppState {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` resolves, then stops accepting pushes, flushes the producer,
    /// stops the consumer, lets the workers drain the queue (bounded by `shutdown_grace_s`)
    /// and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            workers,
            consumer,
            tail,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, workers = state.workers, "ailogs listening");
        let expiry = tokio::spawn(expire_views(Arc::clone(&state)));
        let key_reload = state.pg.as_ref().map(|pg| {
            let every = Duration::from_secs(state.config.auth.reload_s.max(1));
            tokio::spawn(crate::auth::pg::reload_forever(
                pg.pool().clone(),
                Arc::clone(&state.api_keys),
                every,
            ))
        });
        let replicas = state
            .redis
            .clone()
            .map(|r| tokio::spawn(crate::api::limits::announce_replicas(r, Arc::clone(&state.limits))));
        let replay = state.kafka.clone().map(|k| tokio::spawn(k.replay_spool()));
        axum::serve(listener, api::router(Arc::clone(&state)))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        expiry.abort();
        for task in key_reload.into_iter().chain(replicas) {
            task.abort();
        }
        if let Some(replay) = replay {
            replay.abort();
        }
        let grace = Duration::from_secs(state.config.shutdown_grace_s);
        if let Some(kafka) = &state.kafka {
            // Flushing blocks: off the async threads.
            let kafka = Arc::clone(kafka);
            match tokio::task::spawn_blocking(move || kafka.flush(grace)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "kafka producer did not flush before the grace period ended"),
                Err(e) => tracing::warn!(error = %e, "kafka producer flush failed"),
            }
        }
        if let Some((stop, thread)) = tail {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(consumer) = consumer
            && let Err(e) = consumer.stop().await
        {
            tracing::warn!(error = %e, "consumer stopped with an error; uncommitted lines will be re-read");
        }
        let queued = state.queue.depth();
        tracing::info!(queued_lines = queued, "shutting down: draining the ingest queue");
        state.queue.close();
        let joined = tokio::time::timeout(
            grace,
            tokio::task::spawn_blocking(move || workers.into_iter().for_each(|w| drop(w.join()))),
        )
        .await;
        match joined {
            Ok(_) => tracing::info!(lines = state.views.stats().held.lines, "queue drained; stopped"),
            Err(_) => tracing::warn!(left = state.queue.depth(), "grace period over before the queue drained"),
        }
        Ok(())
    }
}

async fn expire_views(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        state.views.expire(Instant::now());
    }
}
