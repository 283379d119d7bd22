//! ailogs-pipeline: the streaming core of ailogs, sans-IO.
//!
//! Records in; enrichments, view queries and alerts out. No tokio, no sockets, no database:
//! every rule about logs lives here, unit-tested and benchmarked without a server. The
//! `ailogs` crate carries bytes to and from it.

pub mod analyze;
pub mod anomaly;
pub mod classify;
pub mod correlate;
pub mod decode;
pub mod enrich;
pub mod insight_delta;
pub mod live;
pub mod logfmt;
pub mod normalize;
pub mod patterns;
pub mod query;
pub mod record;
pub mod shape;
pub mod stream;
pub mod synth;
pub mod templates;
pub mod usage;

pub use decode::{Decoder, RawEntry, RejectReason, Rejected};
pub use enrich::Enriched;
pub use normalize::fields::{DecodeLimits, labels_from};
pub use record::{Labels, Level, LineFormat, LogRecord};
