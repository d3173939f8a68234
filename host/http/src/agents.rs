//! Agent identity (broker.md §3.1–3.4): register, read, challenge, prove.
//! Admin key only (the auth layer sees to that).

use super::body::RawBody;
use super::error::ApiResult;
use super::path::Path;
use crate::engine::Engine;
use crate::engine::broker::{IDENTITY_KINDS, NewAgent, Proof};
use axum::Json;
use axum::extract::State;
use serde_json::json;

pub async fn register(State(engine): State<Engine>, body: RawBody) -> ApiResult {
    let mut f = body.fields()?;
    let agent = NewAgent {
        name: f.name("name"),
        principal: f.opt_name("principal"),
        identity_kind: f
            .opt_enum("identityKind", &IDENTITY_KINDS)
            .unwrap_or_else(|| "dev_token".into()),
        public_key: f.opt_str("publicKey"),
        metadata: f.opt_record("metadata").unwrap_or_else(|| json!({})),
    };
    f.finish()?;
    Ok(Json(json!(engine.register_agent(agent).await?)))
}

pub async fn get(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(json!(engine.agent(&id).await?)))
}

/// The body is ignored.
pub async fn challenge(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(json!(engine.issue_challenge(&id).await?)))
}

/// A missing or unparsable body is `{}`; a parsed one is checked.
pub async fn prove(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = super::body::Fields::new(body.json_or_empty())?;
    let proof = Proof {
        token: f.opt_str("token"),
        challenge: f.opt_str("challenge"),
        signature: f.opt_str("signature"),
    };
    f.finish()?;
    Ok(Json(json!(engine.prove(&id, proof).await?)))
}
