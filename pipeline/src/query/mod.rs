//! Agent queries over recent lines: parameters, selection and ranking per mode, and the
//! rendered answer. Pure: the caller hands in candidate records and the clock.

mod engine;
mod render;
pub mod spec;

pub use engine::{ContextSource, SliceContext, Window, matches, run};
pub use render::{QueryOutcome, line_json as render_line};
pub use spec::{Aggregation, Format, Mode, ParamError, QuerySpec, Verbosity};
