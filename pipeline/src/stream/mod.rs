//! The real-time stream's rules: subscriber filters and the message protocol (the hub that
//! fans events out lives in the `ailogs` crate).

pub mod filter;
pub mod line;
pub mod protocol;

pub use filter::{Filter, FilterError, FilterSpec};
pub use line::StreamLine;
pub use protocol::{ClientMessage, parse};
