//! The MCP server (rmcp): eight tools over the REST API's own handlers, each answering with
//! a compact `ToolAnswer`. Served over streamable HTTP at `/mcp` on `serve`, and over stdio
//! by `ailogs mcp --api-url URL` as a bridge to a running ailogs.

mod answer;
pub mod api;
mod inputs;
mod tools;

use std::sync::Arc;

use axum::Router;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::service::RoleServer;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{Json, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

pub use answer::ToolAnswer;
use api::Api;
use inputs::{
    ExplainTemplate, GetConversation, GetRequest, ListPatterns, QueryLogs, RecentAlerts, ServiceHealth, WorkspaceUsage,
};

const INSTRUCTIONS: &str = "ailogs answers questions about an AI application's logs from materialized views. \
Start broad (service_health for a service, query_logs with mode=errors), then drill down with the ids in the answers: \
get_request for a correlation_id, get_conversation for a conversation_id, explain_template for a template_id. \
Every answer says where it came from, how fresh it is, how many items matched and whether some were left out; \
`next` says the narrower call to make. max_bytes bounds the answer's size.";

#[derive(Clone)]
pub struct AilogsMcp {
    api: Arc<Api>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl AilogsMcp {
    pub fn new(api: Api) -> Self {
        AilogsMcp {
            api: Arc::new(api),
            tool_router: Self::tool_router(),
        }
    }

    /// The caller's key: fixed for the stdio bridge, else the MCP request's own header.
    fn key(&self, ctx: &RequestContext<RoleServer>) -> Option<String> {
        if let Some(key) = self.api.fixed_key() {
            return Some(key.to_owned());
        }
        let parts = ctx.extensions.get::<axum::http::request::Parts>()?;
        crate::api::auth::presented(&parts.headers).map(str::to_owned)
    }

    /// The caller of `tool`: its key, and the tool's name for the audit log.
    fn caller(&self, ctx: &RequestContext<RoleServer>, tool: &'static str) -> api::Caller {
        api::Caller {
            key: self.key(ctx),
            tool,
        }
    }

    #[tool(
        description = "Search log lines: errors, slow requests, one request's or conversation's lines, a template's lines. \
Summary first, then the most useful lines (id fields drill down)."
    )]
    async fn query_logs(
        &self,
        Parameters(p): Parameters<QueryLogs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::query_logs(&self.api, &self.caller(&ctx, "query_logs"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "One request by correlation id: the services it crossed in order, where the time went, \
the root cause with evidence lines, and recommendations."
    )]
    async fn get_request(
        &self,
        Parameters(p): Parameters<GetRequest>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::get_request(&self.api, &self.caller(&ctx, "get_request"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "How a service is doing: ranked insights, known-pattern hits, anomalies, new and top \
message templates, and failure cascades across its dependencies."
    )]
    async fn service_health(
        &self,
        Parameters(p): Parameters<ServiceHealth>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::service_health(&self.api, &self.caller(&ctx, "service_health"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "One conversation: its requests, models, tokens, cost and errors, with its related log lines."
    )]
    async fn get_conversation(
        &self,
        Parameters(p): Parameters<GetConversation>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::get_conversation(&self.api, &self.caller(&ctx, "get_conversation"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "A workspace's AI usage: requests, tokens and cost by model and by day, errors, and peak times."
    )]
    async fn workspace_usage(
        &self,
        Parameters(p): Parameters<WorkspaceUsage>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::workspace_usage(&self.api, &self.caller(&ctx, "workspace_usage"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "The known-pattern catalog (rate limits, timeouts, context overflow, ...) with how often each \
matched, most matched first."
    )]
    async fn list_patterns(
        &self,
        Parameters(p): Parameters<ListPatterns>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::list_patterns(&self.api, &self.caller(&ctx, "list_patterns"), p)
            .await
            .map(Json)
    }

    #[tool(description = "A mined message template: its text, service, counts and first sighting, with sample lines.")]
    async fn explain_template(
        &self,
        Parameters(p): Parameters<ExplainTemplate>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::explain_template(&self.api, &self.caller(&ctx, "explain_template"), p)
            .await
            .map(Json)
    }

    #[tool(
        description = "Alerts (anomalies against each service's baseline), newest first. Pass the previous \
answer's cursor to get only newer ones."
    )]
    async fn recent_alerts(
        &self,
        Parameters(p): Parameters<RecentAlerts>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ToolAnswer>, String> {
        tools::recent_alerts(&self.api, &self.caller(&ctx, "recent_alerts"), p)
            .await
            .map(Json)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AilogsMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("ailogs", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// `/mcp` on `serve`: stateless streamable HTTP (JSON answers), tools calling `api` in-process.
/// With API keys the key guards it, so any Host is accepted; without, only loopback hosts
/// (DNS-rebinding protection for an open local server).
pub fn http_service(api: Router, keys_enabled: bool) -> StreamableHttpService<AilogsMcp, NeverSessionManager> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    if keys_enabled {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(
        move || Ok(AilogsMcp::new(Api::InProcess(api.clone()))),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// `ailogs mcp`: serves the tools over stdin/stdout until the client closes them.
pub async fn run_stdio(api_url: String, key: Option<String>) -> anyhow::Result<()> {
    let api = Api::Remote {
        client: reqwest::Client::new(),
        base: api_url,
        key,
    };
    let service = AilogsMcp::new(api).serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
