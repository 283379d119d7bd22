//! The stream's messages. Client: `auth` (the API key, when the upgrade request carried
//! none), `subscribe` (filter, optional `resume_from` or `resume_from_offset`),
//! `update_filter`, `unsubscribe`, `heartbeat`. Server: `connected`, `log`, `alert`,
//! `heartbeat`, `dropped`, `gone`, `error`. Every `log` and `alert` carries the event id,
//! increasing, which a client resumes from; alerts that came through Kafka also carry
//! their `offset` in `ai-logs.alerts`, the same on every replica.

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
        /// The last alert `offset` the client received (from any replica); it is sent the
        /// alerts that came after.
        #[serde(default)]
        resume_from_offset: Option<i64>,
        /// The API key, for a client that could not send it in a header.
        #[serde(default)]
        api_key: Option<ApiKey>,
    },
    Auth {
        api_key: ApiKey,
    },
    UpdateFilter {
        filter: FilterSpec,
    },
    Unsubscribe,
    Heartbeat,
}

/// An API key as a client sent it. Its `Debug` hides it, so no log line can carry it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
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
        Some("subscribe" | "update_filter" | "unsubscribe" | "heartbeat" | "auth") => {
            ("invalid_message", format!("{e}"))
        }
        Some(other) => (
            "unknown_type",
            format!("unknown message type {other:?}: auth, subscribe, update_filter, unsubscribe or heartbeat"),
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
        assert!(matches!(
            parse(r#"{"type":"subscribe","resume_from_offset":41,"api_key":"k"}"#),
            Ok(ClientMessage::Subscribe {
                resume_from_offset: Some(41),
                api_key: Some(_),
                ..
            })
        ));
        let auth = parse(r#"{"type":"auth","api_key":"sekrit"}"#).expect("auth parses");
        assert!(matches!(&auth, ClientMessage::Auth { api_key } if api_key.0 == "sekrit"));
        assert!(!format!("{auth:?}").contains("sekrit"), "keys never reach a log");
        assert_eq!(
            parse(r#"{"type":"auth"}"#).map(|_| ()).map_err(|e| e.0),
            Err("invalid_message")
        );
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
