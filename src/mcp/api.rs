//! How MCP tools reach the REST API: in-process through the router itself (`/mcp` on
//! `serve`), or over HTTP to a running ailogs (`ailogs mcp --api-url`). Either way a tool runs
//! the same handler, auth and parameter checks as a REST call with the same key.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use serde_json::Value;
use tower::ServiceExt;

/// The header a tool sets on the REST calls it makes, so the audit row names the tool.
pub const MCP_TOOL_HEADER: &str = "x-ailogs-mcp-tool";

/// Where the REST API is.
#[derive(Clone)]
pub enum Api {
    /// This process's router (with its auth layer): `/mcp` on `serve`.
    InProcess(Router),
    /// A running ailogs, for the stdio bridge; the key comes from `AILOGS_API_KEY`.
    Remote {
        client: reqwest::Client,
        base: String,
        key: Option<String>,
    },
}

/// Who calls: the key to present, and the tool, which the audit log records.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: Option<String>,
    pub tool: &'static str,
}

/// A REST answer that was not 2xx, worded for the agent.
#[derive(Debug)]
pub struct ApiFailure(pub String);

impl From<ApiFailure> for String {
    fn from(f: ApiFailure) -> String {
        f.0
    }
}

impl Api {
    /// `GET path?query` as the key's holder; the JSON body of a 2xx answer.
    pub async fn get(&self, path: &str, query: &[(&str, String)], caller: &Caller) -> Result<Value, ApiFailure> {
        let key = caller.key.as_deref();
        let tool = MCP_TOOL_HEADER;
        let mut url = String::from(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish(),
            );
        }
        let (status, body) = match self {
            Api::InProcess(router) => {
                let mut req = Request::get(&url).header(tool, caller.tool);
                if let Some(key) = key {
                    req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
                }
                let req = req
                    .body(Body::empty())
                    .map_err(|e| ApiFailure(format!("bad request {url}: {e}")))?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| ApiFailure(format!("{url}: {e}")))?;
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
                    .await
                    .map_err(|e| ApiFailure(format!("{url}: reading the answer: {e}")))?;
                (status, bytes.to_vec())
            }
            Api::Remote { client, base, .. } => {
                let mut req = client
                    .get(format!("{}{url}", base.trim_end_matches('/')))
                    .header(tool, caller.tool);
                if let Some(key) = key {
                    req = req.bearer_auth(key);
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| ApiFailure(format!("ailogs at {base} did not answer: {e}")))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| ApiFailure(format!("{url}: reading the answer: {e}")))?;
                (status, bytes.to_vec())
            }
        };
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(ApiFailure(describe_error(status, &body)))
    }

    /// The stdio bridge's key, fixed for the process; None in process (`/mcp`), where each
    /// call presents the MCP request's own key.
    pub fn fixed_key(&self) -> Option<&str> {
        match self {
            Api::InProcess(_) => None,
            Api::Remote { key, .. } => key.as_deref(),
        }
    }
}

/// `{error, field, message, suggestion}` as one sentence an agent can act on.
fn describe_error(status: u16, body: &Value) -> String {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut out = format!("HTTP {status}");
    if !text("error").is_empty() {
        out.push_str(&format!(" {}", text("error")));
    }
    if !text("field").is_empty() {
        out.push_str(&format!(" (field `{}`)", text("field")));
    }
    if !text("message").is_empty() {
        out.push_str(&format!(": {}", text("message")));
    }
    if !text("suggestion").is_empty() {
        out.push_str(&format!(". Suggestion: {}", text("suggestion")));
    }
    out
}
