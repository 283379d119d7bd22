//! API keys. A request presents its key in `Authorization: Bearer <key>` or `X-API-Key`;
//! the server keeps only each key's SHA-256 and the name of its holder. With no keys
//! configured the API is open (the embedded default).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::ApiKeyEntry;
use crate::internal_events::{AuthRefused, InternalEvent};

/// The configured keys, by hash.
#[derive(Debug, Default)]
pub struct ApiKeys {
    holders: HashMap<[u8; 32], Arc<str>>,
}

impl ApiKeys {
    /// `entries` are validated by `Config::validate` (64 hex digits each).
    pub fn new(entries: &[ApiKeyEntry]) -> Self {
        let holders = entries
            .iter()
            .filter_map(|e| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&e.sha256, &mut digest).ok()?;
                Some((digest, Arc::from(e.name.as_str())))
            })
            .collect();
        ApiKeys { holders }
    }

    pub fn enabled(&self) -> bool {
        !self.holders.is_empty()
    }

    /// The holder's name for a valid key.
    pub fn holder(&self, key: &str) -> Option<Arc<str>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.holders.get(&digest).cloned()
    }
}

/// The key a request presents in its headers, if any.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// A new random key and its configuration entry.
pub fn generate(name: &str) -> (String, ApiKeyEntry) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("ailk_{}", hex::encode(bytes));
    let entry = ApiKeyEntry {
        name: name.to_owned(),
        sha256: hex::encode(Sha256::digest(key.as_bytes())),
    };
    (key, entry)
}

/// Paths that stay open with keys configured: probes and scrapes carry no key.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/" | "/metrics" | "/api/v1/ai_logs/health" | "/api/v1/ai_logs/openapi.json"
    )
}

pub fn unauthorized(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message.to_owned(),
        "send the key in `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    )
}

/// Refuses requests without a valid key when keys are configured. The stream checks its
/// own (the key may come in its first message), so it passes through here.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !state.api_keys.enabled() || is_open(path) || path == super::STREAM_PATH {
        return next.run(req).await;
    }
    match presented(req.headers()) {
        None => unauthorized("this server requires an API key").into_response(),
        Some(key) if state.api_keys.holder(key).is_none() => {
            AuthRefused { path }.emit(&state.metrics);
            unauthorized("the API key is not valid").into_response()
        }
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_check_and_others_do_not() {
        let (key, entry) = generate("ops");
        assert_eq!(entry.sha256.len(), 64);
        assert!(!entry.sha256.contains(&key), "only the hash is kept");
        let keys = ApiKeys::new(&[entry]);
        assert!(keys.enabled());
        assert_eq!(keys.holder(&key).as_deref(), Some("ops"));
        assert_eq!(keys.holder("ailk_guess"), None);
        assert!(!ApiKeys::new(&[]).enabled());
    }

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("x-api-key", "k1".parse().expect("header"));
        assert_eq!(presented(&h), Some("k1"));
        h.insert(header::AUTHORIZATION, "Bearer k2".parse().expect("header"));
        assert_eq!(presented(&h), Some("k2"), "Authorization wins");
    }
}
