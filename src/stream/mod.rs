//! The real-time stream: the hub that numbers and fans out events (`hub`) into each
//! subscriber's inbox (`subscriber`), subscriber limits (`slots`) and, with Kafka, the tail of `ai-logs.alerts` and `ai-logs.lines` that
//! feeds a replica's hub (`tail`); the WebSocket endpoint is `api::stream`.

pub mod event;
pub mod hub;
pub mod slots;
pub mod subscriber;
pub mod tail;

pub use hub::{Event, Gone, Hub, HubConfig, Payload, Replay, Subscription};
pub use slots::{Full, Slot, Slots};
