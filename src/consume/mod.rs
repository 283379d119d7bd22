//! Consumers: carry queued lines through the pipeline core into the views.

pub mod embedded;
pub mod http;
pub mod kafka;
