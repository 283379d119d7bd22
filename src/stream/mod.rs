//! The real-time stream: the hub that numbers and fans out events (`hub`); the WebSocket
//! endpoint is `api::stream`.

pub mod hub;

pub use hub::{Event, Hub, HubConfig, Payload, Replay};
