//! Agent queries over recent lines: parameters, selection and ranking per mode, and the
//! rendered answer. Pure: the caller hands in candidate records (or a view answers from its
//! indexes) and the clock.

mod digest;
mod engine;
mod render;
mod selection;
pub mod spec;
mod summary;
mod values;
mod window;

pub use digest::{ConversationTotals, Digest, DigestBuilder, GroupDigest, LatencyRow, operation, sort_latency};
pub use engine::{RankKey, duration_bits, error_shape, group_key, matches, rank_key, run, scan, selected_by_mode};
pub use render::{QueryOutcome, line_json as render_line, render};
pub use selection::{Context, ContextSource, Entry, Neighbours, Selected, SliceContext, Window, matches_filters};
pub use spec::{Aggregation, Format, Mode, ParamError, QuerySpec, Verbosity};
