//! Agent queries over recent lines: parameters, selection and ranking per mode, and the
//! rendered answer. Pure: the caller hands in candidate records and the clock.

mod engine;
mod render;
mod selection;
pub mod spec;

pub use engine::{matches, run};
pub use render::{QueryOutcome, line_json as render_line};
pub use selection::{ContextSource, SliceContext, Window};
pub use spec::{Aggregation, Format, Mode, ParamError, QuerySpec, Verbosity};
