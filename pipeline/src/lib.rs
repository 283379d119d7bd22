//! ailogs-pipeline: the streaming core of ailogs, sans-IO.
//!
//! Records in; enrichments, view queries and alerts out. No tokio, no sockets, no database:
//! every rule about logs lives here, unit-tested and benchmarked without a server. The
//! `ailogs` crate carries bytes to and from it.
//!
//! Start at [`Core`] (see the `core` module for a line's whole path): every driver (the
//! embedded workers, the Kafka consumer, the benches) runs lines through a [`Lane`] (decode,
//! normalize, match) and a `Core` (template mining, usage and insight deltas, correlation,
//! anomalies and alerts), and API readers read its [`CoreReader`].

pub mod analyze;
pub mod anomaly;
pub mod callee_name;
pub mod classify;
pub mod core;
pub mod correlate;
pub mod decode;
pub mod enrich;
pub mod envelope;
pub mod export;
pub mod insight_delta;
pub mod logfmt;
pub mod loki;
pub mod ndjson;
pub mod normalize;
pub mod partition_key;
pub mod patterns;
pub mod query;
pub mod record;
mod record_fields;
pub mod redact;
pub mod rejection;
pub mod scope;
pub mod shape;
pub mod stream;
#[cfg(feature = "synth")]
pub mod synth;
pub mod templates;
pub mod usage;
pub mod views;

pub use core::{Core, CoreConfig, CoreReader, CoreStats, Lane, Outputs, Prepared};
pub use decode::{Decoder, RawEntry};
pub use enrich::Enriched;
pub use normalize::fields::{DecodeLimits, labels_from};
pub use record::{Labels, Level, LineFormat, LogRecord};
pub use rejection::{RejectReason, Rejection};
