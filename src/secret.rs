//! Connection URLs that may carry a password: usable where a client connects, shown
//! redacted everywhere else (`Debug`, `Display`), so a logged config or error never prints it.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, for the client that connects with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its user info (and so any password) replaced by `***`.
    pub fn redacted(&self) -> String {
        match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => self.0.clone(),
            },
            None => "***".to_owned(),
        }
    }
}

impl From<String> for SecretUrl {
    fn from(s: String) -> Self {
        SecretUrl(s)
    }
}

impl From<&str> for SecretUrl {
    fn from(s: &str) -> Self {
        SecretUrl(s.to_owned())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A password or token from the configuration: sent where it is needed, printed as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let url = SecretUrl::from("postgres://app:hunter2@db:5432/ailogs");
        assert_eq!(url.to_string(), "postgres://***@db:5432/ailogs");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "postgres://app:hunter2@db:5432/ailogs");
        assert_eq!(
            SecretUrl::from("redis://127.0.0.1:6379").to_string(),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(SecretUrl::from("not a url:pw").to_string(), "***");
        assert_eq!(format!("{:?}", Secret::from("tok")), "\"***\"");
    }
}
