//! Test environment: a fresh Postgres database per test, a mock Kafka cluster, a workload
//! with known totals.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ailogs::store::postgres::Postgres;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sqlx::{Connection, PgConnection};

/// Where tests may create databases; override with AILOGS_TEST_ADMIN_URL.
fn admin_url() -> String {
    std::env::var("AILOGS_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("Postgres is required for this test and is not reachable at {admin}: {e} (run scripts/services)")
        });
        let name = format!("ailogs_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
        TestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn pg(&self) -> Postgres {
        Postgres::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    pub async fn drop_db(self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

pub struct Kafka {
    /// Kept alive for the test: dropping it stops the brokers.
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    pub brokers: String,
}

impl Kafka {
    pub fn start(raw_partitions: i32) -> Kafka {
        let cluster = MockCluster::new(1).expect("mock kafka cluster");
        cluster
            .create_topic(ailogs::kafka::RAW_TOPIC, raw_partitions, 1)
            .expect("raw topic");
        cluster.create_topic(ailogs::kafka::DLQ_TOPIC, 1, 1).expect("dlq topic");
        cluster
            .create_topic(ailogs::kafka::LINES_TOPIC, 3, 1)
            .expect("lines topic");
        let brokers = cluster.bootstrap_servers();
        Kafka { cluster, brokers }
    }

    /// Messages in every partition of `topic` (high watermarks).
    pub fn message_count(&self, topic: &str, partitions: i32) -> i64 {
        let consumer: BaseConsumer = ailogs::kafka::client_config(&self.brokers)
            .set("group.id", "probe")
            .create()
            .expect("probe");
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .expect("watermarks")
                    .1
            })
            .sum()
    }
}

/// Per (workspace, model): requests, input, output, cached tokens, cost in nano-USD.
pub type Totals = BTreeMap<(String, String), [i64; 5]>;

/// A workload of JSON lines with known usage totals, plus noise and undecodable lines.
pub struct Workload {
    pub lines: Vec<String>,
    pub expected: Totals,
    pub undecodable: usize,
}

/// USD per million tokens (input, cached input, output), from model_prices.toml. Kept
/// here, not read from the pipeline, so the test is an independent oracle.
fn price(model: &str) -> Option<(i64, i64, i64)> {
    match model {
        "gpt-4o" => Some((2_500_000_000, 1_250_000_000, 10_000_000_000)),
        "gpt-4o-mini" => Some((150_000_000, 75_000_000, 600_000_000)),
        _ => None,
    }
}

pub fn workload(requests: usize, seed: u64) -> Workload {
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let w = ailogs_pipeline::synth::usage_workload(requests, seed, now);
    let mut expected = Totals::new();
    for r in &w.requests {
        let cost = price(r.model).map_or(0, |(pi, pc, po)| {
            let micro = i128::from(r.input - r.cached) * i128::from(pi)
                + i128::from(r.cached) * i128::from(pc)
                + i128::from(r.output) * i128::from(po);
            ((micro + 500_000) / 1_000_000) as i64
        });
        let t = expected.entry((r.workspace.clone(), r.model.to_owned())).or_default();
        t[0] += 1;
        t[1] += r.input;
        t[2] += r.output;
        t[3] += r.cached;
        t[4] += cost;
    }
    Workload {
        lines: w.lines,
        expected,
        undecodable: w.undecodable,
    }
}

/// Usage totals as the database has them.
pub async fn usage_totals(pg: &Postgres) -> Totals {
    let rows: Vec<(String, String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT workspace_id, model, SUM(requests)::int8, SUM(input_tokens)::int8, SUM(output_tokens)::int8, \
         SUM(cached_tokens)::int8, SUM(cost_nanousd)::int8 FROM ai_workspace_usage GROUP BY 1, 2",
    )
    .fetch_all(pg.pool())
    .await
    .expect("usage query");
    rows.into_iter()
        .map(|(w, m, r, i, o, c, cost)| ((w, m), [r, i, o, c, cost]))
        .collect()
}

/// Sum of stored next offsets: how many messages the group has committed.
pub async fn committed(pg: &Postgres) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT SUM(next_offset)::int8 FROM consumer_offsets")
        .fetch_one(pg.pool())
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every payload on `topic`, read from the beginning of each partition.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Vec<u8>> {
    use rdkafka::message::Message;
    let consumer: BaseConsumer = ailogs::kafka::client_config(brokers)
        .set("group.id", "reader")
        .create()
        .expect("reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut want = 0;
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
        want += consumer
            .fetch_watermarks(topic, p, Duration::from_secs(5))
            .expect("watermarks")
            .1;
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (out.len() as i64) < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.payload().unwrap_or_default().to_vec());
        }
    }
    out
}

/// A serve process that produces what it is pushed to Kafka, spooling to `spool`.
pub fn kafka_ingest_config(brokers: &str, spool: std::path::PathBuf) -> ailogs::config::Config {
    let mut config = ailogs::config::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kafka_brokers: Some(brokers.to_owned()),
        ..Default::default()
    };
    config.kafka.spool_dir = spool;
    config
}

/// A scratch directory for a spool.
pub fn spool_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ailogs-test-spool-{}", uuid::Uuid::new_v4().simple()))
}

/// A port free now, for a child process to listen on (another process could take it first;
/// the child then fails to bind and the test says so).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
