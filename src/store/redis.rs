//! Redis hot views: capped streams of recent lines per service, per correlation id and per
//! conversation id, plus per-minute counters by service and level. Written after a batch's
//! Postgres commit (a crash may leave a line out of Redis, never in it twice); read by the
//! query API, which then sees every partition's lines whichever process consumed them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ailogs_pipeline::{Enriched, LogRecord};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;
use crate::store::memory::Selection;

#[derive(Clone)]
pub struct RedisViews {
    client: redis::Client,
    prefix: String,
    limits: RedisConfig,
    conn: Arc<tokio::sync::Mutex<Connection>>,
}

/// The connection, made on first use and again after Redis was unreachable.
enum Connection {
    Up(ConnectionManager),
    /// Connecting failed; no new attempt before this instant, so callers fail fast.
    Down(Instant),
}

/// How long to wait after a failed connection attempt before the next one.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

impl RedisViews {
    /// Does not connect: Redis may be down when ailogs starts; the first use connects.
    pub fn new(url: &str, prefix: &str, limits: RedisConfig) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let past = Instant::now().checked_sub(RECONNECT_AFTER).unwrap_or_else(Instant::now);
        Ok(RedisViews {
            client,
            prefix: prefix.to_owned(),
            limits,
            conn: Arc::new(tokio::sync::Mutex::new(Connection::Down(past))),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut conn = self.conn.lock().await;
        match &*conn {
            Connection::Up(c) => return Ok(c.clone()),
            Connection::Down(since) if since.elapsed() < RECONNECT_AFTER => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "redis unreachable; retrying shortly",
                )));
            }
            Connection::Down(_) => {}
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(c) => {
                *conn = Connection::Up(c.clone());
                Ok(c)
            }
            Err(e) => {
                *conn = Connection::Down(Instant::now());
                Err(e)
            }
        }
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    /// Appends a batch of records, one round trip.
    pub async fn write(&self, records: &[Enriched]) -> redis::RedisResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let services_key = self.key("meta", "services");
        for e in records {
            let r = &e.record;
            let payload = serde_json::to_string(r).expect("a record serializes");
            let mut add = |key: String, len: usize, ttl: Option<i64>| {
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(len)
                    .arg("*")
                    .arg("r")
                    .arg(&payload)
                    .ignore();
                if let Some(ttl) = ttl {
                    pipe.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
                }
            };
            add(self.key("svc", &r.service), self.limits.service_stream_len, None);
            if let Some(id) = &r.correlation_id {
                add(
                    self.key("corr", id),
                    self.limits.id_stream_len,
                    Some(self.limits.id_ttl_s),
                );
            }
            if let Some(id) = &r.conversation_id {
                add(
                    self.key("conv", id),
                    self.limits.id_stream_len,
                    Some(self.limits.id_ttl_s),
                );
            }
            let minute = r.ts_ns.div_euclid(60_000_000_000) * 60;
            let counter = self.key("count", &minute.to_string());
            pipe.cmd("HINCRBY")
                .arg(&counter)
                .arg(format!("{}:{}", r.service, r.level))
                .arg(1)
                .ignore();
            pipe.cmd("EXPIRE").arg(&counter).arg(self.limits.counter_ttl_s).ignore();
            pipe.cmd("SADD").arg(&services_key).arg(&*r.service).ignore();
        }
        let mut conn = self.connection().await?;
        pipe.query_async::<()>(&mut conn).await
    }

    /// Recent records that may match `sel` (a superset: the query engine filters again),
    /// newest first within each stream.
    pub async fn read(&self, sel: &Selection<'_>, per_stream: usize) -> redis::RedisResult<Vec<Enriched>> {
        let mut conn = self.connection().await?;
        let keys: Vec<String> = if let Some(id) = sel.correlation_id {
            vec![self.key("corr", id)]
        } else if let Some(id) = sel.conversation_id {
            vec![self.key("conv", id)]
        } else if !sel.services.is_empty() {
            sel.services.iter().map(|s| self.key("svc", s)).collect()
        } else {
            let services: Vec<String> = conn.smembers(self.key("meta", "services")).await?;
            services.iter().map(|s| self.key("svc", s)).collect()
        };
        let mut out = Vec::new();
        for key in keys {
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(per_stream)
                .query_async(&mut conn)
                .await?;
            for (_, fields) in entries {
                let Some(payload) = fields.chunks(2).find(|kv| kv[0] == "r").and_then(|kv| kv.get(1)) else {
                    continue;
                };
                match serde_json::from_str::<LogRecord>(payload) {
                    Ok(r)
                        if r.ts_ns >= sel.since_ns
                            && sel.min_level.is_none_or(|m| r.level >= m)
                            && sel.scope.allows(r.workspace_id.as_deref()) =>
                    {
                        out.push(Enriched::new(r))
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(%key, error = %e, "unreadable record in redis"),
                }
            }
        }
        Ok(out)
    }

    /// Per-minute line counts by `service:level` since `since_minute` (Unix seconds).
    pub async fn counts(&self, minute: i64) -> redis::RedisResult<Vec<(String, i64)>> {
        let mut conn = self.connection().await?;
        conn.hgetall(self.key("count", &minute.to_string())).await
    }

    /// A cached value (the Loki fallback's answers), if present.
    pub async fn cache_get(&self, id: &str) -> redis::RedisResult<Option<Vec<u8>>> {
        let mut conn = self.connection().await?;
        conn.get(self.key("loki", id)).await
    }

    pub async fn cache_put(&self, id: &str, value: Vec<u8>, ttl_s: u64) -> redis::RedisResult<()> {
        let mut conn = self.connection().await?;
        conn.set_ex(self.key("loki", id), value, ttl_s.max(1)).await
    }

    pub async fn ping(&self) -> bool {
        match self.connection().await {
            Ok(mut conn) => redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok(),
            Err(_) => false,
        }
    }
}

/// Writes to Redis from a pipeline thread, best effort: a failure is logged and counted, and
/// the lines stay in Postgres and the memory views.
pub fn write_blocking(
    redis: &RedisViews,
    handle: &tokio::runtime::Handle,
    records: &[Enriched],
    metrics: &crate::metrics::Metrics,
) {
    if let Err(e) = handle.block_on(redis.write(records)) {
        use crate::internal_events::{InternalEvent, RedisWriteFailed};
        RedisWriteFailed {
            error: &e,
            lines: records.len(),
        }
        .emit(metrics);
    }
}
