//! API keys and who holds them. A key is kept only as its SHA-256, with its holder's name, role,
//! workspace scope and rate limits. Keys come from the config file and from Postgres
//! (`api_keys`, managed with `ailogs api-key new|list|revoke`); Postgres keys are reloaded every
//! `auth.reload_s`, so a new or revoked key takes effect in every process within seconds.

pub mod commands;
pub mod pg;

use std::collections::HashMap;
use std::sync::Arc;

use ailogs_pipeline::scope::Scope;
use arc_swap::ArcSwap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{ApiKeyEntry, AuthConfig, KeyLimits, Role};

/// The caller of a request, as its key says.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: Arc<str>,
    /// The `api_keys` row, for keys kept in Postgres.
    pub key_id: Option<i64>,
    pub role: Role,
    pub scope: Scope,
    pub limits: KeyLimits,
}

impl Principal {
    /// The caller when no keys exist at all (the embedded default): everything is open.
    pub fn open() -> Principal {
        Principal {
            name: Arc::from("anonymous"),
            key_id: None,
            role: Role::Admin,
            scope: Scope::All,
            limits: KeyLimits::default(),
        }
    }

    /// A caller without a key on a route that needs none (probes, scrapes, the stream before
    /// its first message): it may read nothing.
    pub fn open_route() -> Principal {
        Principal {
            name: Arc::from("anonymous"),
            key_id: None,
            role: Role::Ingest,
            scope: Scope::none(),
            limits: KeyLimits::default(),
        }
    }

    pub fn may_read(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Reader)
    }

    pub fn may_push(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Ingest)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A key as stored: its hash and holder.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub sha256: [u8; 32],
    pub principal: Principal,
}

/// Every valid key, by hash: the config's and Postgres' (reloaded).
pub struct KeyStore {
    configured: HashMap<[u8; 32], Principal>,
    stored: ArcSwap<HashMap<[u8; 32], Principal>>,
    /// Whether scoped keys see lines without a workspace id.
    unscoped: bool,
}

impl KeyStore {
    /// `auth.api_keys` are validated by `Config::validate` (64 hex digits each).
    pub fn new(auth: &AuthConfig) -> Self {
        let configured = auth
            .api_keys
            .iter()
            .filter_map(|e| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&e.sha256, &mut digest).ok()?;
                Some((digest, principal_of(e, auth.scoped_keys_see_unscoped)))
            })
            .collect();
        KeyStore {
            configured,
            stored: ArcSwap::from_pointee(HashMap::new()),
            unscoped: auth.scoped_keys_see_unscoped,
        }
    }

    /// Whether any key exists; with none, the API is open.
    pub fn enabled(&self) -> bool {
        !self.configured.is_empty() || !self.stored.load().is_empty()
    }

    /// The holder of a valid, unrevoked key.
    pub fn holder(&self, key: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.configured
            .get(&digest)
            .cloned()
            .or_else(|| self.stored.load().get(&digest).cloned())
    }

    /// Replaces the Postgres keys with the active ones just read.
    pub fn replace_stored(&self, keys: Vec<StoredKey>) {
        let map = keys.into_iter().map(|k| (k.sha256, k.principal)).collect();
        self.stored.store(Arc::new(map));
    }

    pub fn scoped_keys_see_unscoped(&self) -> bool {
        self.unscoped
    }
}

fn principal_of(e: &ApiKeyEntry, unscoped: bool) -> Principal {
    Principal {
        name: Arc::from(e.name.as_str()),
        key_id: None,
        role: e.role,
        scope: Scope::of(e.workspaces.as_deref().unwrap_or_default(), unscoped),
        limits: e.limits.clone(),
    }
}

/// A new random key (`ailk_` and 64 hex digits) and its hex SHA-256.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("ailk_{}", hex::encode(bytes));
    let sha = hex::encode(Sha256::digest(key.as_bytes()));
    (key, sha)
}

/// A new key and its config-file entry, for a key kept in the config file.
pub fn generate_entry(name: &str, role: Role, workspaces: Option<Vec<String>>) -> (String, ApiKeyEntry) {
    let (key, sha256) = generate();
    let entry = ApiKeyEntry {
        name: name.to_owned(),
        sha256,
        role,
        workspaces,
        limits: KeyLimits::default(),
    };
    (key, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_check_and_others_do_not() {
        let (key, entry) = generate_entry("ops", Role::Reader, Some(vec!["ws-a".into()]));
        assert_eq!(entry.sha256.len(), 64);
        assert!(!entry.sha256.contains(&key), "only the hash is kept");
        let auth = AuthConfig {
            api_keys: vec![entry],
            ..AuthConfig::default()
        };
        let keys = KeyStore::new(&auth);
        assert!(keys.enabled());
        let p = keys.holder(&key).expect("valid key");
        assert_eq!((&*p.name, p.role), ("ops", Role::Reader));
        assert!(p.scope.allows(Some("ws-a")) && !p.scope.allows(Some("ws-b")));
        assert_eq!(keys.holder("ailk_guess"), None);
        assert!(!KeyStore::new(&AuthConfig::default()).enabled());
    }

    #[test]
    fn stored_keys_are_replaced_whole_so_a_revoked_key_stops() {
        let keys = KeyStore::new(&AuthConfig::default());
        let (key, sha) = generate();
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&sha, &mut digest).expect("hex");
        let stored = StoredKey {
            sha256: digest,
            principal: Principal {
                key_id: Some(7),
                ..Principal::open()
            },
        };
        keys.replace_stored(vec![stored]);
        assert!(keys.enabled());
        assert_eq!(keys.holder(&key).and_then(|p| p.key_id), Some(7));
        keys.replace_stored(Vec::new());
        assert_eq!(keys.holder(&key), None);
        assert!(!keys.enabled());
    }
}
