//! The stream's messages. Client: `subscribe` (filter, optional `resume_from`),
//! `update_filter`, `unsubscribe`, `heartbeat`. Server: `connected`, `log`, `alert`,
//! `heartbeat`, `dropped`, `gone`, `error`. Every `log` and `alert` carries the event id,
//! increasing, which a client resumes from.

use serde::Deserialize;

use super::filter::FilterSpec;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        #[serde(default)]
        filter: FilterSpec,
        /// The last event id the client received; it is sent what came after.
        #[serde(default)]
        resume_from: Option<u64>,
    },
    UpdateFilter {
        filter: FilterSpec,
    },
    Unsubscribe,
    Heartbeat,
}

/// Why a client message was refused: (code, message), sent as an `error` message.
pub fn parse(text: &str) -> Result<ClientMessage, (&'static str, String)> {
    if text.len() > 64 * 1024 {
        return Err(("message_too_large", "messages are at most 64 KiB".into()));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ("malformed_message", format!("not JSON: {e}")))?;
    let kind = value.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    serde_json::from_value(value).map_err(|e| match kind.as_deref() {
        None => ("malformed_message", "a message needs a string `type`".into()),
        Some("subscribe" | "update_filter" | "unsubscribe" | "heartbeat") => ("invalid_message", format!("{e}")),
        Some(other) => (
            "unknown_type",
            format!("unknown message type {other:?}: subscribe, update_filter, unsubscribe or heartbeat"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_and_bad_ones_say_why() {
        assert!(matches!(
            parse(r#"{"type":"subscribe","filter":{"services":["api"]},"resume_from":7}"#),
            Ok(ClientMessage::Subscribe {
                resume_from: Some(7),
                ..
            })
        ));
        assert!(matches!(parse(r#"{"type":"heartbeat"}"#), Ok(ClientMessage::Heartbeat)));
        assert_eq!(parse("{oops").map(|_| ()).map_err(|e| e.0), Err("malformed_message"));
        assert_eq!(
            parse(r#"{"type":"dance"}"#).map(|_| ()).map_err(|e| e.0),
            Err("unknown_type")
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","filter":{"severity":"error"}}"#)
                .map(|_| ())
                .map_err(|e| e.0),
            Err("invalid_message")
        );
        assert_eq!(parse(r#"[1]"#).map(|_| ()).map_err(|e| e.0), Err("malformed_message"));
    }
}
