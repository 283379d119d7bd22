//! Ingest: the push endpoints' bodies are decoded by the pipeline's codecs
//! (`ailogs_pipeline::loki`, `ailogs_pipeline::ndjson`) into `PushBatch`es; here they are
//! produced to Kafka (with the spool) or handed to the embedded queue.

pub mod kafka;
pub mod spool;

pub use ailogs_pipeline::loki::{PushBatch, PushEntry, PushStream, labels, proto as loki_proto, push};
pub use ailogs_pipeline::ndjson;
