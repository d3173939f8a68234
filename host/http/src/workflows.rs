//! Deploying wasm workflows over HTTP (our addition to the v0.5 API).

use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use super::path::Path;
use crate::engine::limits::{self, Range};
use crate::engine::{DeployLimits, Engine};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;
use std::collections::HashMap;

/// Largest component accepted by the deploy endpoint.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// An optional query parameter within `range`.
fn param(q: &HashMap<String, String>, key: &str, range: Range) -> Result<Option<i64>, ApiError> {
    q.get(key)
        .map(|v| {
            range
                .parse(key, v)
                .map_err(|e| ApiError::violation("query parameter", &e))
        })
        .transpose()
}

/// `POST /workflows/:name` with the component bytes as the body;
/// `?memoryMb=&cpuMs=` set sandbox limits.
pub async fn deploy(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    RawBody(body): RawBody<MAX_COMPONENT_BYTES>,
) -> ApiResult {
    let limits = DeployLimits::from_flags(
        param(&q, "memoryMb", limits::MEMORY_MB)?,
        param(&q, "cpuMs", limits::CPU_MS)?,
    );
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
