//! `GET /loki/api/v1/query_range` and the label endpoints (LOKI.md §3) with the tenant and
//! credentials configured, retries of 429/5xx/transport failures with backoff, the server's
//! entry limit learned from its 400, and a circuit breaker so that a dead Loki costs a query
//! nothing but a `missing: ["loki"]`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ailogs_pipeline::loki::query_range::{LokiEntry, max_entries_limit, parse_streams};
use anyhow::Context;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::breaker::{Breaker, BreakerState};
use crate::backoff::Backoff;
use crate::config::LokiConfig;

/// Loki's default `max_entries_limit_per_query` (LOKI.md §3.7), until a 400 says otherwise.
const DEFAULT_MAX_ENTRIES: usize = 5_000;
/// Calls whose latency /health summarises.
const RECENT_CALLS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    #[error("the circuit breaker is open after repeated failures; next probe in {0:?}")]
    BreakerOpen(Duration),
    #[error("Loki refused the query ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("Loki is unavailable: {0}")]
    Unavailable(String),
    #[error("Loki's answer could not be read: {0}")]
    Malformed(String),
    #[error("the query's time budget ran out while waiting for Loki")]
    OutOfTime,
}

pub struct LokiClient {
    http: reqwest::Client,
    base: String,
    config: LokiConfig,
    max_entries: AtomicUsize,
    breaker: Mutex<Breaker>,
    calls: Mutex<CallLog>,
}

#[derive(Default)]
struct CallLog {
    recent_ms: VecDeque<f64>,
    last_error: Option<(Instant, String)>,
    last_success: Option<Instant>,
}

impl LokiClient {
    pub fn new(base: &str, config: &LokiConfig) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(3_000)));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).with_context(|| format!("loki.ca_file {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("loki.ca_file {}: not PEM certificates", path.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "loki.ca_file {}: no certificate in it",
                path.display()
            );
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build()?;
        Ok(LokiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            config: config.clone(),
            max_entries: AtomicUsize::new(DEFAULT_MAX_ENTRIES),
            breaker: Mutex::new(Breaker::new(
                config.breaker_failures,
                Duration::from_secs(config.breaker_open_s),
            )),
            calls: Mutex::new(CallLog::default()),
        })
    }

    pub fn config(&self) -> &LokiConfig {
        &self.config
    }

    /// The most entries one request may ask for: Loki's limit as learned.
    pub fn max_entries(&self) -> usize {
        self.max_entries.load(Ordering::Relaxed)
    }

    /// One backward page of `[start, end)`: at most `limit` entries, newest first, and the
    /// limit it was asked with (lower than `limit` when Loki's cap turned out lower).
    pub async fn query_range(
        &self,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
        deadline: Instant,
    ) -> Result<(Vec<LokiEntry>, usize), LokiError> {
        let mut limit = limit.clamp(1, self.max_entries());
        loop {
            let params = [
                ("query", query.to_owned()),
                ("start", start_ns.to_string()),
                ("end", end_ns.to_string()),
                ("limit", limit.to_string()),
                ("direction", "backward".to_owned()),
            ];
            let body = self.get("/loki/api/v1/query_range", &params, deadline).await;
            match body {
                Ok(bytes) => {
                    let entries = parse_streams(&bytes).map_err(|e| LokiError::Malformed(e.to_string()))?;
                    return Ok((entries, limit));
                }
                Err(LokiError::Refused { status: 400, message }) => match max_entries_limit(&message) {
                    // The server's cap is lower than we thought: learn it and ask again.
                    Some(max) if (max as usize) < limit && max > 0 => {
                        self.max_entries.store(max as usize, Ordering::Relaxed);
                        limit = max as usize;
                    }
                    _ => return Err(LokiError::Refused { status: 400, message }),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// `GET /loki/api/v1/labels`: the label names Loki holds (the health probe).
    pub async fn labels(&self, deadline: Instant) -> Result<Vec<String>, LokiError> {
        let bytes = self.get("/loki/api/v1/labels", &[], deadline).await?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| LokiError::Malformed(e.to_string()))?;
        Ok(v["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// One call through the breaker, retried on 429, 5xx and transport errors with backoff
    /// within `deadline`. Any other status is the query's fault, not Loki's: not retried,
    /// not counted against Loki.
    async fn get(&self, path: &str, params: &[(&str, String)], deadline: Instant) -> Result<bytes::Bytes, LokiError> {
        self.breaker
            .lock()
            .allow(Instant::now())
            .map_err(LokiError::BreakerOpen)?;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = self.attempt(path, params, deadline).await;
            let failure = match outcome {
                Ok(bytes) => {
                    self.record_success(started.elapsed());
                    return Ok(bytes);
                }
                Err(Attempt::Refused(status, message)) => {
                    // Loki answered: it is up.
                    self.record_success(started.elapsed());
                    return Err(LokiError::Refused { status, message });
                }
                Err(Attempt::Retryable(message)) => message,
            };
            let delay = backoff.next_delay();
            if attempt >= self.config.attempts || Instant::now() + delay >= deadline {
                self.record_failure(&failure);
                return Err(if Instant::now() >= deadline {
                    LokiError::OutOfTime
                } else {
                    LokiError::Unavailable(failure)
                });
            }
            tracing::debug!(attempt, error = %failure, "loki call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, path: &str, params: &[(&str, String)], deadline: Instant) -> Result<bytes::Bytes, Attempt> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Attempt::Retryable("the query's time budget ran out".into()));
        }
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .query(params)
            .timeout(remaining.min(Duration::from_millis(self.config.timeout_ms)))
            // Structured metadata apart from stream labels, so streams are not split by it.
            .header("X-Loki-Response-Encoding-Flags", "categorize-labels");
        if let Some(tenant) = &self.config.tenant {
            req = req.header("X-Scope-OrgID", tenant);
        }
        if let Some(token) = &self.config.bearer_token {
            req = req.bearer_auth(token.expose());
        } else if let Some(user) = &self.config.username {
            req = req.basic_auth(user, self.config.password.as_ref().map(|p| p.expose()));
        }
        let resp = req.send().await.map_err(|e| Attempt::Retryable(transport_error(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Attempt::Retryable(transport_error(&e)))?;
        match status {
            200..=299 => Ok(body),
            429 | 500..=599 => Err(Attempt::Retryable(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
            _ => Err(Attempt::Refused(
                status,
                String::from_utf8_lossy(&body).trim().to_owned(),
            )),
        }
    }

    fn record_success(&self, took: Duration) {
        self.breaker.lock().success();
        let mut calls = self.calls.lock();
        if calls.recent_ms.len() == RECENT_CALLS {
            calls.recent_ms.pop_front();
        }
        calls.recent_ms.push_back(took.as_secs_f64() * 1000.0);
        calls.last_success = Some(Instant::now());
    }

    fn record_failure(&self, error: &str) {
        let now = Instant::now();
        self.breaker.lock().failure(now);
        self.calls.lock().last_error = Some((now, error.to_owned()));
        tracing::warn!(error, "loki call failed");
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.lock().state(Instant::now())
    }

    /// What /health shows: breaker state, last error, p50 of recent calls.
    pub fn status(&self) -> Value {
        let calls = self.calls.lock();
        let mut recent: Vec<f64> = calls.recent_ms.iter().copied().collect();
        recent.sort_by(f64::total_cmp);
        let p50 = recent.get(recent.len() / 2).map(|ms| (ms * 100.0).round() / 100.0);
        json!({
            "breaker": self.breaker_state().as_str(),
            "max_entries_per_request": self.max_entries(),
            "recent_calls": recent.len(),
            "p50_ms": p50,
            "last_success_s_ago": calls.last_success.map(|t| t.elapsed().as_secs()),
            "last_error": calls.last_error.as_ref().map(|(at, e)| json!({ "error": e, "s_ago": at.elapsed().as_secs() })),
        })
    }
}

enum Attempt {
    Retryable(String),
    Refused(u16, String),
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}
