//! The message envelope on `ai-logs.raw`: one accepted line with its stream labels, as JSON.
//! Ingest writes it, consumers read it back through `Lane::ingest_message`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rejection::{RejectReason, Rejection};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawMessage {
    pub ts_ns: i64,
    pub labels: BTreeMap<String, String>,
    pub line: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<(String, String)>,
}

impl RawMessage {
    /// Reads an envelope from a Kafka payload.
    pub fn from_payload(payload: Option<&[u8]>) -> Result<RawMessage, Rejection> {
        let payload = payload.ok_or_else(|| Rejection::new(RejectReason::EmptyMessage, "message has no payload"))?;
        serde_json::from_slice(payload)
            .map_err(|e| Rejection::new(RejectReason::InvalidEnvelope, format!("not an ailogs raw message: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_and_foreign_payloads() {
        let r = |p: Option<&[u8]>| RawMessage::from_payload(p).map_err(|e| e.reason);
        assert_eq!(r(None), Err(RejectReason::EmptyMessage));
        assert_eq!(r(Some(b"{\"line\":1}")), Err(RejectReason::InvalidEnvelope));
        let ok = r(Some(b"{\"ts_ns\":5,\"labels\":{\"app\":\"a\"},\"line\":\"x\"}"));
        assert!(ok.is_ok());
    }
}
