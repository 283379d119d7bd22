//! Seeded synthetic traffic from an AI application: an API, an AnythingLLM-style gateway, an
//! admin UI, browsers and a worker, with requests that cross services under one correlation
//! id and occasional incidents. Pure: the caller supplies the clock. Used by `ailogs demo`,
//! tests and benches.

mod incident;
mod usage_workload;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

pub use incident::Incident;
pub use usage_workload::{UsageRequest, UsageWorkload, usage_workload};

use crate::normalize::time::format_rfc3339;

/// One generated line and the service whose stream it belongs to.
#[derive(Debug, Clone)]
pub struct SynthLine {
    pub service: &'static str,
    pub ts_ns: i64,
    pub line: String,
}

pub const SERVICES: [&str; 5] = ["api", "anythingllm", "admin-ui", "browser", "worker"];

const MS: i64 = 1_000_000;

struct Model {
    name: &'static str,
    provider: &'static str,
    /// Median latency in ms.
    latency_ms: f64,
    max_context: u64,
}

const MODELS: [Model; 4] = [
    Model {
        name: "gpt-4o",
        provider: "openai",
        latency_ms: 1800.0,
        max_context: 128_000,
    },
    Model {
        name: "gpt-4o-mini",
        provider: "openai",
        latency_ms: 700.0,
        max_context: 128_000,
    },
    Model {
        name: "claude-3-5-sonnet",
        provider: "anthropic",
        latency_ms: 2200.0,
        max_context: 200_000,
    },
    Model {
        name: "llama3.1:8b",
        provider: "ollama",
        latency_ms: 1200.0,
        max_context: 8_192,
    },
];

const WORKSPACES: [&str; 4] = ["acme-support", "globex-research", "initech-legal", "umbrella-hr"];

/// The generator. Same seed, same clock: same lines.
pub struct Traffic {
    rng: SmallRng,
    incident: Option<(Incident, u32)>,
    request_seq: u64,
    conversations: Vec<(String, &'static str, String)>,
    /// Incidents start on their own now and then (the demo); off for ground-truth runs.
    spontaneous: bool,
}

impl Traffic {
    pub fn new(seed: u64) -> Self {
        Traffic {
            rng: SmallRng::seed_from_u64(seed),
            incident: None,
            request_seq: 0,
            conversations: Vec::new(),
            spontaneous: true,
        }
    }

    /// Traffic with incidents only when `start_incident` starts one: a baseline with a known
    /// truth.
    pub fn without_spontaneous_incidents(mut self) -> Self {
        self.spontaneous = false;
        self
    }

    /// The incident in progress, if any.
    pub fn incident(&self) -> Option<Incident> {
        self.incident.map(|(i, _)| i)
    }

    /// Starts an incident now, lasting `requests` requests.
    pub fn start_incident(&mut self, incident: Incident, requests: u32) {
        self.incident = Some((incident, requests));
    }

    /// One user action and every line it causes, starting at `now_ns`.
    pub fn request(&mut self, now_ns: i64) -> Vec<SynthLine> {
        self.request_seq += 1;
        self.tick_incident();
        let roll = self.rng.random_range(0..100);
        let mut out = Vec::new();
        match (self.incident(), roll) {
            (Some(Incident::AuthFailureBurst), r) if r < 40 => self.auth_failure(now_ns, &mut out),
            (Some(Incident::DbPoolExhausted), r) if r < 25 => self.db_pool(now_ns, &mut out),
            (_, 0..=64) => self.chat(now_ns, &mut out),
            (_, 65..=76) => self.document(now_ns, &mut out),
            (_, 77..=82) => self.admin(now_ns, &mut out),
            _ => self.noise(now_ns, &mut out),
        }
        out
    }

    fn tick_incident(&mut self) {
        match &mut self.incident {
            Some((_, left)) if *left > 1 => *left -= 1,
            Some(_) => self.incident = None,
            None => {
                if self.spontaneous && self.rng.random_bool(0.01) {
                    let incident = Incident::ALL[self.rng.random_range(0..Incident::ALL.len())];
                    let len = self.rng.random_range(30..120);
                    self.incident = Some((incident, len));
                }
            }
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}-{:012x}", self.rng.random::<u64>() & 0xffff_ffff_ffff)
    }

    fn user(&mut self) -> String {
        format!("u-{}", self.rng.random_range(100..160))
    }

    /// Mostly continues a recent conversation; sometimes starts one.
    fn conversation(&mut self) -> (String, &'static str, String) {
        if self.conversations.is_empty() || self.rng.random_bool(0.3) {
            let conv = (
                self.id("conv"),
                WORKSPACES[self.rng.random_range(0..WORKSPACES.len())],
                self.user(),
            );
            self.conversations.push(conv);
            if self.conversations.len() > 40 {
                self.conversations.remove(0);
            }
        }
        let i = self.rng.random_range(0..self.conversations.len());
        self.conversations[i].clone()
    }

    fn chat(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        let corr = self.id("req");
        let (conv, workspace, user) = self.conversation();
        let session = format!("sess-{}", &user[2..]);
        let model = &MODELS[self.rng.random_range(0..MODELS.len())];
        let input = self.rng.random_range(200..6000u64);
        let output = self.rng.random_range(20..1200u64);
        let jitter: f64 = self.rng.random_range(0.5..1.8);
        let mut llm_ms = model.latency_ms * jitter + output as f64 * 0.8;
        let prompt_hash = format!("sha256:{:016x}", self.rng.random::<u64>());
        let path = format!("/api/v1/workspace/{workspace}/chat");

        push(
            out,
            "browser",
            t0,
            json!({
                "timestamp": format_rfc3339(t0), "level": "info", "service": "browser",
                "message": "chat message sent", "page": format!("/workspace/{workspace}"),
                "correlation_id": corr, "session_id": session, "user_id": user, "workspace_id": workspace,
                "conversation_id": conv,
            }),
        );
        push(
            out,
            "api",
            t0 + 3 * MS,
            json!({
                "timestamp": format_rfc3339(t0 + 3 * MS), "level": "info", "service": "api",
                "message": format!("POST {path} received"), "correlation_id": corr,
                "user_id": user, "workspace_id": workspace, "session_id": session,
            }),
        );

        let failure = match self.incident() {
            Some(Incident::ModelTimeout) if self.rng.random_bool(0.6) => Some(Incident::ModelTimeout),
            Some(Incident::ProviderRateLimit) if self.rng.random_bool(0.5) => Some(Incident::ProviderRateLimit),
            Some(Incident::ContextLengthExceeded) if self.rng.random_bool(0.4) => Some(Incident::ContextLengthExceeded),
            _ => None,
        };
        let t_llm = t0 + 8 * MS;
        let base = json!({
            "level": "info", "service": "anythingllm", "logger": "AIOperationLogger",
            "correlation_id": corr, "conversation_id": conv, "workspace_id": workspace, "user_id": user,
            "session_id": session, "request_type": "ai_completion", "model": model.name,
            "provider": model.provider, "prompt_hash": prompt_hash,
        });
        let (api_status, api_level, api_msg) = match failure {
            None => {
                // Half of the gateway lines use the OpenTelemetry GenAI names, half the legacy ones.
                let mut v = base;
                if self.rng.random_bool(0.5) {
                    v["input_tokens"] = json!(input);
                    v["output_tokens"] = json!(output);
                    v["tokens_used"] = json!(input + output);
                    v["duration"] = json!((llm_ms / 10.0).round() / 100.0);
                } else {
                    strip(&mut v, &["model", "request_type", "conversation_id"]);
                    v["gen_ai.operation.name"] = json!("chat");
                    v["gen_ai.request.model"] = json!(model.name);
                    v["gen_ai.conversation.id"] = json!(conv);
                    v["gen_ai.usage.input_tokens"] = json!(input);
                    v["gen_ai.usage.output_tokens"] = json!(output);
                    v["duration_ms"] = json!(llm_ms.round());
                }
                v["success"] = json!(true);
                v["message"] = json!("AI operation completed");
                finish(out, t_llm + (llm_ms as i64) * MS, v);
                (200, "info", format!("POST {path} 200"))
            }
            Some(Incident::ModelTimeout) => {
                llm_ms = 60_000.0;
                let mut v = base;
                v["level"] = json!("error");
                v["success"] = json!(false);
                v["duration"] = json!(60.0);
                v["error"] = json!(format!("Model request timed out after 60s ({})", model.provider));
                v["message"] = json!(format!("AI operation failed: model {} timed out", model.name));
                finish(out, t_llm + 60_000 * MS, v);
                (504, "error", format!("POST {path} 504 upstream anythingllm timed out"))
            }
            Some(Incident::ProviderRateLimit) => {
                llm_ms = self.rng.random_range(80.0..300.0);
                let error = format!(
                    "429 Too Many Requests: rate limit exceeded for {} (retry after 20s)",
                    model.provider
                );
                let v = failed_call(base, "warn", llm_ms, &error, "AI provider rate limit hit");
                finish(out, t_llm + (llm_ms as i64) * MS, v);
                (429, "warn", format!("POST {path} 429 rate limited by provider"))
            }
            Some(_) => {
                llm_ms = self.rng.random_range(40.0..120.0);
                let error = format!(
                    "context_length_exceeded: this model's maximum context length is {} tokens",
                    model.max_context
                );
                let mut v = failed_call(
                    base,
                    "error",
                    llm_ms,
                    &error,
                    "AI operation failed: context window overflow",
                );
                v["input_tokens"] = json!(model.max_context + self.rng.random_range(100..5000));
                v["output_tokens"] = json!(0);
                finish(out, t_llm + (llm_ms as i64) * MS, v);
                (400, "error", format!("POST {path} 400 context too long"))
            }
        };
        let t_end = t_llm + (llm_ms as i64 + 4) * MS;
        push(
            out,
            "api",
            t_end,
            json!({
                "timestamp": format_rfc3339(t_end), "level": api_level, "service": "api",
                "message": api_msg, "status": api_status, "correlation_id": corr, "user_id": user,
                "workspace_id": workspace, "duration_ms": ((t_end - t0) / MS) as f64,
            }),
        );
        if api_status >= 500 {
            push(
                out,
                "browser",
                t_end + 5 * MS,
                json!({
                    "timestamp": format_rfc3339(t_end + 5 * MS), "level": "error", "service": "browser",
                    "message": "Chat request failed: 504 Gateway Timeout", "correlation_id": corr,
                    "session_id": session, "conversation_id": conv, "workspace_id": workspace,
                }),
            );
        }
    }

    fn document(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        let corr = self.id("req");
        let workspace = WORKSPACES[self.rng.random_range(0..WORKSPACES.len())];
        let chunks = self.rng.random_range(3..80);
        let ms = self.rng.random_range(150..2500);
        let tokens = chunks * 512;
        push(
            out,
            "api",
            t0,
            json!({
                "timestamp": format_rfc3339(t0), "level": "info", "service": "api",
                "message": format!("POST /api/v1/workspace/{workspace}/upload accepted"),
                "correlation_id": corr, "workspace_id": workspace,
            }),
        );
        // The worker writes logfmt.
        let t1 = t0 + (ms as i64) * MS;
        let line = format!(
            "ts={} level=info msg=\"document embedded\" correlation_id={corr} workspace_id={workspace} chunks={chunks} model=text-embedding-3-small input_tokens={tokens} request_type=embedding duration_ms={ms}",
            format_rfc3339(t1)
        );
        out.push(SynthLine {
            service: "worker",
            ts_ns: t1,
            line,
        });
    }

    fn admin(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        let admin = format!("admin-{}", self.rng.random_range(1..4));
        let workspace = WORKSPACES[self.rng.random_range(0..WORKSPACES.len())];
        let target = self.user();
        let (message, action) = match self.rng.random_range(0..5) {
            0 => (format!("User {admin} logged in"), "login"),
            1 => (
                format!(
                    "Workspace settings updated: temperature=0.{}",
                    self.rng.random_range(1..9)
                ),
                "settings_update",
            ),
            2 => (format!("Role changed to manager for {target}"), "role_change"),
            3 => (format!("API key created for workspace {workspace}"), "api_key_create"),
            _ => (format!("User {target} invited to workspace {workspace}"), "user_invite"),
        };
        push(
            out,
            "admin-ui",
            t0,
            json!({
                "timestamp": format_rfc3339(t0), "level": "info", "service": "admin-ui",
                "message": message, "action": action, "user_id": admin, "workspace_id": workspace,
                "correlation_id": self.id("req"),
            }),
        );
    }

    fn noise(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        if self.rng.random_bool(0.5) {
            let ms = self.rng.random_range(1..8);
            push(
                out,
                "api",
                t0,
                json!({
                    "timestamp": format_rfc3339(t0), "level": "info", "service": "api",
                    "message": "GET /api/health 200", "duration_ms": ms,
                }),
            );
        } else {
            let page = ["/", "/workspace", "/settings", "/docs"][self.rng.random_range(0..4)];
            push(
                out,
                "browser",
                t0,
                json!({
                    "timestamp": format_rfc3339(t0), "level": "debug", "service": "browser",
                    "message": format!("page view {page}"), "session_id": format!("sess-{}", self.rng.random_range(100..160)),
                }),
            );
        }
    }

    fn auth_failure(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        let user = self.user();
        let ip = format!("203.0.113.{}", self.rng.random_range(1..255));
        push(
            out,
            "api",
            t0,
            json!({
                "timestamp": format_rfc3339(t0), "level": "warn", "service": "api",
                "message": format!("Authentication failed for user {user}: invalid credentials from {ip}"),
                "correlation_id": self.id("req"), "user_id": user, "status": 401,
            }),
        );
    }

    fn db_pool(&mut self, t0: i64, out: &mut Vec<SynthLine>) {
        let corr = self.id("req");
        let waited = self.rng.random_range(5000..10_000);
        push(
            out,
            "api",
            t0,
            json!({
                "timestamp": format_rfc3339(t0), "level": "error", "service": "api",
                "message": format!("DB connection pool exhausted (20/20 in use), waited {waited}ms"),
                "correlation_id": corr, "duration_ms": waited,
            }),
        );
        // The worker's ORM writes plain text.
        let t1 = t0 + 2 * MS;
        let line = format!(
            "{} ERROR sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 0 reached, connection timed out, timeout 30.00",
            chrono::DateTime::from_timestamp_nanos(t1).format("%Y-%m-%d %H:%M:%S,%3f")
        );
        out.push(SynthLine {
            service: "worker",
            ts_ns: t1,
            line,
        });
    }
}

/// A gateway record for a model call that failed after `ms`.
fn failed_call(mut v: Value, level: &str, ms: f64, error: &str, message: &str) -> Value {
    v["level"] = json!(level);
    v["success"] = json!(false);
    v["duration_ms"] = json!(ms.round());
    v["error"] = json!(error);
    v["message"] = json!(message);
    v
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(obj) = v.as_object_mut() {
        for k in keys {
            obj.remove(*k);
        }
    }
}

fn push(out: &mut Vec<SynthLine>, service: &'static str, ts_ns: i64, v: Value) {
    out.push(SynthLine {
        service,
        ts_ns,
        line: v.to_string(),
    });
}

fn finish(out: &mut Vec<SynthLine>, ts_ns: i64, mut v: Value) {
    v["timestamp"] = json!(format_rfc3339(ts_ns));
    out.push(SynthLine {
        service: "anythingllm",
        ts_ns,
        line: v.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoder, RawEntry};
    use crate::normalize::fields::{DecodeLimits, labels_from};
    use crate::record::Level;

    #[test]
    fn same_seed_same_lines() {
        let a: Vec<String> = (0..50)
            .flat_map(|i| Traffic::new(7).request(i))
            .map(|l| l.line)
            .collect();
        let b: Vec<String> = (0..50)
            .flat_map(|i| Traffic::new(7).request(i))
            .map(|l| l.line)
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn every_line_decodes_with_its_service_and_incidents_show() {
        let mut t = Traffic::new(1);
        t.start_incident(Incident::ModelTimeout, 200);
        let mut d = Decoder::new(DecodeLimits::default());
        let mut errors = 0;
        for i in 0..200 {
            for l in t.request(1_700_000_000_000_000_000 + i * 1_000_000_000) {
                // Shippers label each stream with its service, as the demo does.
                let labels = labels_from([("app", l.service)]);
                let rec = d
                    .decode(&RawEntry {
                        ts_ns: l.ts_ns,
                        line: &l.line,
                        labels: &labels,
                        metadata: &[],
                    })
                    .expect("decodes");
                assert_eq!(rec.service.as_ref(), l.service, "{}", l.line);
                assert_eq!(rec.ts_ns, l.ts_ns, "{}", l.line);
                errors += usize::from(rec.level >= Level::Error);
            }
        }
        assert!(errors > 20, "a model-timeout incident produces errors, got {errors}");
    }
}
