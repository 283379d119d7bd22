//! Incidents the synthetic traffic can play.

/// A failure mode that lasts for a number of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    /// The model provider stops answering; the gateway times out and the API returns 504.
    ModelTimeout,
    /// The provider answers 429.
    ProviderRateLimit,
    /// Prompts over the model's context window.
    ContextLengthExceeded,
    /// The API's database pool is exhausted; the worker's ORM times out too.
    DbPoolExhausted,
    /// A burst of failed logins.
    AuthFailureBurst,
}

impl Incident {
    pub const ALL: [Incident; 5] = [
        Incident::ModelTimeout,
        Incident::ProviderRateLimit,
        Incident::ContextLengthExceeded,
        Incident::DbPoolExhausted,
        Incident::AuthFailureBurst,
    ];
}
