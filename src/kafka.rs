//! Kafka: topic definitions, client settings, the message envelope on `ai-logs.raw`, and
//! topic creation.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use serde::Deserialize;

pub const RAW_TOPIC: &str = "ai-logs.raw";
pub const DLQ_TOPIC: &str = "ai-logs.dlq";
pub const ALERTS_TOPIC: &str = "ai-logs.alerts";
pub const LINES_TOPIC: &str = "ai-logs.lines";
pub const GROUP_ID: &str = "ailogs-pipeline";

/// Most lines the ingest producer puts in one record batch (librdkafka `batch.num.messages`;
/// its default is 10000). Consumers start each fetch this many offsets before their stored
/// offset, so the fetch never starts inside a batch: some brokers (tansu 0.6) answer such a
/// fetch with the *next* batch, skipping the rest of the first one, or with nothing at the
/// tail of a partition.
pub const MAX_BATCH_MESSAGES: i64 = 1000;

/// One accepted line on `ai-logs.raw` (defined by the core, which reads it back).
pub use ailogs_pipeline::envelope::RawMessage;

#[derive(Debug, Clone, Deserialize)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct TopicsFile {
    topic: Vec<TopicSpec>,
}

/// The topics of `kafka/topics.toml`.
pub fn topic_specs() -> Vec<TopicSpec> {
    let file: TopicsFile = toml::from_str(include_str!("../kafka/topics.toml")).expect("kafka/topics.toml parses");
    file.topic
}

/// The partitions of `topic`, as the cluster's metadata lists them; an error while the
/// topic does not exist yet.
pub fn topic_partitions(client: &impl Consumer, topic: &str, timeout: Duration) -> anyhow::Result<Vec<i32>> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let parts: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(!parts.is_empty(), "topic {topic} has no partitions yet");
    Ok(parts)
}

/// Settings every client shares.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers).set("client.id", "ailogs");
    c
}

/// A topic's settings for a replication factor: `min.insync.replicas` above it would refuse
/// every write, so it is left out then.
pub fn topic_config(spec: &TopicSpec, replication: i32) -> Vec<(&str, &str)> {
    spec.config
        .iter()
        .filter(|(k, v)| !(k.as_str() == "min.insync.replicas" && v.parse::<i32>().is_ok_and(|m| m > replication)))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Creates the topics that do not exist yet. Returns (created, already there).
pub async fn create_topics(
    brokers: &str,
    replication_override: Option<i32>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
    let specs = topic_specs();
    let configs: Vec<(i32, Vec<(&str, &str)>)> = specs
        .iter()
        .map(|s| {
            let replication = replication_override.unwrap_or(s.replication_factor);
            (replication, topic_config(s, replication))
        })
        .collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&configs)
        .map(|(s, (replication, config))| {
            config.iter().fold(
                NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(*replication)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for result in admin.create_topics(&new_topics, &opts).await? {
        match result {
            Ok(name) => created.push(name),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => existing.push(name),
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok((created, existing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_file_defines_the_three_topics() {
        let specs = topic_specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [RAW_TOPIC, DLQ_TOPIC, ALERTS_TOPIC, LINES_TOPIC]);
        let raw = &specs[0];
        assert!(raw.partitions >= 4 && raw.replication_factor == 3);
        assert!(topic_config(raw, 3).contains(&("min.insync.replicas", "2")));
        assert!(
            !topic_config(raw, 1).iter().any(|(k, _)| *k == "min.insync.replicas"),
            "single broker: no min.insync"
        );
        assert!(topic_config(raw, 1).contains(&("retention.ms", "604800000")));
    }

    #[test]
    fn raw_messages_round_trip() {
        let m = RawMessage {
            ts_ns: 1,
            labels: [("app".to_owned(), "web".to_owned())].into(),
            line: "hello".into(),
            metadata: vec![("trace_id".into(), "abc".into())],
        };
        let bytes = serde_json::to_vec(&m).expect("serializes");
        assert_eq!(serde_json::from_slice::<RawMessage>(&bytes).expect("parses"), m);
    }
}
