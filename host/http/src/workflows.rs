//! Deploying wasm workflows over HTTP (our addition to the v0.5 API).

use super::body::RawBody;
use super::error::ApiResult;
use super::params::{self, QueryMap};
use super::path::Path;
use crate::engine::limits;
use crate::engine::{DeployLimits, Engine};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;

/// Largest component accepted by the deploy endpoint.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// `POST /workflows/:name` with the component bytes as the body;
/// `?memoryMb=&cpuMs=` set sandbox limits, `?allow=a,b` the resources the
/// version may call, `?egressTimeoutMs=&egressMaxBytes=` its egress limits.
pub async fn deploy(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    Query(q): Query<QueryMap>,
    RawBody(body): RawBody<MAX_COMPONENT_BYTES>,
) -> ApiResult {
    let limits = DeployLimits {
        allow: params::names(&q, "allow")?,
        egress_timeout_ms: params::int(&q, "egressTimeoutMs", limits::EGRESS_TIMEOUT_MS)?,
        egress_max_bytes: params::int(&q, "egressMaxBytes", limits::EGRESS_MAX_BYTES)?,
        ..DeployLimits::from_flags(
            params::int(&q, "memoryMb", limits::MEMORY_MB)?,
            params::int(&q, "cpuMs", limits::CPU_MS)?,
        )
    };
    Ok(Json(
        json!({"deployment": engine.deploy(&name, &body, limits).await?}),
    ))
}

/// `GET /workflows`: every deployment, newest version first per workflow.
pub async fn list(State(engine): State<Engine>) -> ApiResult {
    Ok(Json(
        json!({"deployments": engine.deployments(None).await?}),
    ))
}
