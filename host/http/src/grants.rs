//! The broker API's grants (broker.md §3.7–3.9): request, use, revoke. The
//! body is validated first; then the caller must be an agent session (the
//! admin key gets 401 `session_required`).

use super::body::RawBody;
use super::error::ApiResult;
use super::path::Path;
use crate::engine::broker::{
    AgentSession, Caller, DEFAULT_TTL_S, GrantRefusal, GrantRequest, MAX_USES, MODES, ProxyCall,
    TTL_S,
};
use crate::engine::{Engine, EngineError};
use axum::extract::State;
use axum::{Extension, Json};
use serde_json::json;

fn session(caller: &Caller) -> Result<&AgentSession, EngineError> {
    match caller {
        Caller::Agent(session) => Ok(session),
        _ => Err(EngineError::Grant(GrantRefusal::SessionRequired)),
    }
}

pub async fn request(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let req = GrantRequest {
        resource: f.name("resource"),
        action: f.name("action"),
        reason: f.opt_str("reason"),
        scopes: f.opt_strings("scopes"),
        mode: f.opt_enum("mode", &MODES).unwrap_or_else(|| "proxy".into()),
        ttl_seconds: f.int_in("ttlSeconds", TTL_S).unwrap_or(DEFAULT_TTL_S),
        max_uses: f.int_in("maxUses", MAX_USES).unwrap_or(1),
    };
    f.finish()?;
    let grant = engine
        .request_grant(session(&caller)?, &run_id, req)
        .await?;
    Ok(Json(json!(grant.view())))
}

pub async fn use_grant(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    Path((run_id, grant_id)): Path<(String, String)>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let call = ProxyCall {
        method: f.name("method"),
        path: f.name("path"),
        body: f.any("body"),
    };
    f.finish()?;
    let (grant, response) = engine
        .use_grant(session(&caller)?, &run_id, &grant_id, call)
        .await?;
    Ok(Json(json!({"grant": grant.view(), "response": response})))
}

pub async fn revoke(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    Path((run_id, grant_id)): Path<(String, String)>,
) -> ApiResult {
    let grant = engine
        .revoke_grant(session(&caller)?, &run_id, &grant_id)
        .await?;
    Ok(Json(json!({"grant": grant.view()})))
}
