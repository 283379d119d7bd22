//! The key check in front of every route. A request presents its key in
//! `Authorization: Bearer <key>` or `X-API-Key`; the key store (`crate::auth`) names its
//! holder (role, workspaces, limits), which handlers read from the request's extensions. With
//! no keys at all the API is open (the embedded default) and every caller is `Principal::open`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;
use crate::internal_events::{AuthRefused, InternalEvent};

/// What a route does, for roles and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Probes, scrapes and the API description: no key.
    Open,
    /// Reads of logs, usage, insight: `reader` and `admin`, within the key's workspaces.
    Query,
    Export,
    /// Pushes: `ingest` and `admin`.
    Push,
    /// The WebSocket stream; it checks keys itself (the key may come in its first message).
    Stream,
    /// Pattern catalog changes and the audit log: `admin` only.
    Admin,
    /// MCP: each tool call is a `Query` through this same check, so `/mcp` itself only needs
    /// a reading key.
    Mcp,
}

impl RouteClass {
    pub fn of(method: &Method, path: &str) -> RouteClass {
        match path {
            "/" | "/metrics" | "/api/v1/ai_logs/health" | "/api/v1/ai_logs/openapi.json" => RouteClass::Open,
            "/loki/api/v1/push" | "/api/v1/ai_logs/ingest" => RouteClass::Push,
            "/api/v1/ai_logs/export" => RouteClass::Export,
            "/api/v1/ai_logs/audit" => RouteClass::Admin,
            super::STREAM_PATH => RouteClass::Stream,
            super::MCP_PATH => RouteClass::Mcp,
            p if p.starts_with("/api/v1/ai_logs/patterns") && method != Method::GET => RouteClass::Admin,
            _ => RouteClass::Query,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Open => "open",
            RouteClass::Query => "query",
            RouteClass::Export => "export",
            RouteClass::Push => "push",
            RouteClass::Stream => "stream",
            RouteClass::Admin => "admin",
            RouteClass::Mcp => "mcp",
        }
    }

    /// Whether `p`'s role may use this class of route.
    pub fn allows(self, p: &Principal) -> bool {
        match self {
            RouteClass::Open | RouteClass::Stream => true,
            RouteClass::Query | RouteClass::Export | RouteClass::Mcp => p.may_read(),
            RouteClass::Push => p.may_push(),
            RouteClass::Admin => p.is_admin(),
        }
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

pub fn unauthorized(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message.to_owned(),
        "send the key in `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    )
}

pub fn forbidden(message: String, suggestion: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message, suggestion)
}

/// 403 for a workspace outside the caller's scope. The answer is the same whether or not the
/// workspace exists, so it tells nothing about other tenants.
pub fn outside_scope(field: &str, workspace: &str) -> ApiError {
    forbidden(
        format!("workspace {workspace:?} is outside this API key's workspaces"),
        "ask for a workspace the key was issued for, or use a key scoped to it",
    )
    .field(field)
}

/// Puts the caller's scope into a query: a `workspace_id` outside it is a 403, and every
/// line the query reads is checked against the scope while it is read.
pub fn scope_query(caller: &Principal, spec: &mut ailogs_pipeline::query::QuerySpec) -> Result<(), ApiError> {
    if let Some(ws) = &spec.workspace_id
        && !caller.scope.allows(Some(ws))
    {
        return Err(outside_scope("workspace_id", ws));
    }
    spec.scope = caller.scope.clone();
    Ok(())
}

/// Names the caller: refuses a request without a valid key (when keys exist) and hands the
/// holder to the layers and handlers inside as an extension.
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let class = RouteClass::of(req.method(), req.uri().path());
    let principal = if !state.api_keys.enabled() {
        Principal::open()
    } else {
        match presented(req.headers()) {
            None if matches!(class, RouteClass::Open | RouteClass::Stream) => Principal::open_route(),
            None => return unauthorized("this server requires an API key").into_response(),
            Some(key) => match state.api_keys.holder(key) {
                Some(p) => p,
                None if class == RouteClass::Open => Principal::open_route(),
                None => {
                    AuthRefused { path: req.uri().path() }.emit(&state.metrics);
                    return unauthorized("the API key is not valid").into_response();
                }
            },
        }
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Refuses a caller whose role does not cover the route (inside the audit, so refusals are
/// recorded too).
pub async fn authorize(req: Request, next: Next) -> Response {
    let class = RouteClass::of(req.method(), req.uri().path());
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::open_route);
    if !class.allows(&principal) {
        return forbidden(
            format!(
                "the key {:?} has the role {}, which may not use {} routes",
                &*principal.name,
                principal.role.as_str(),
                class.as_str()
            ),
            "use a key with the role this route needs (reader: queries; ingest: pushes; admin: everything)",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("x-api-key", "k1".parse().expect("header"));
        assert_eq!(presented(&h), Some("k1"));
        h.insert(header::AUTHORIZATION, "Bearer k2".parse().expect("header"));
        assert_eq!(presented(&h), Some("k2"), "Authorization wins");
    }

    #[test]
    fn every_route_has_a_class_and_writes_need_admin() {
        assert_eq!(
            RouteClass::of(&Method::GET, "/api/v1/ai_logs/patterns"),
            RouteClass::Query
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/api/v1/ai_logs/patterns"),
            RouteClass::Admin
        );
        assert_eq!(
            RouteClass::of(&Method::DELETE, "/api/v1/ai_logs/patterns/x"),
            RouteClass::Admin
        );
        assert_eq!(RouteClass::of(&Method::POST, "/loki/api/v1/push"), RouteClass::Push);
        let reader = Principal {
            role: crate::config::Role::Reader,
            ..Principal::open()
        };
        assert!(RouteClass::Query.allows(&reader) && !RouteClass::Push.allows(&reader));
        assert!(!RouteClass::Admin.allows(&reader));
    }
}
