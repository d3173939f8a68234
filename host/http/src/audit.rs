//! `GET /audit` (broker.md §3.10): the grant ledger, a bare JSON array,
//! scoped to the caller. Admin key or agent session (the auth layer).

use super::error::ApiResult;
use super::params::{self, QueryMap};
use crate::engine::Engine;
use crate::engine::broker::{AuditFilters, Caller};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde_json::json;

pub async fn ledger(
    State(engine): State<Engine>,
    Extension(caller): Extension<Caller>,
    Query(mut q): Query<QueryMap>,
) -> ApiResult {
    // An empty filter filters nothing, as upstream's falsy check.
    q.retain(|key, value| key == "limit" || !value.is_empty());
    let filters = AuditFilters {
        run_id: params::name(&q, "runId")?,
        agent_id: params::name(&q, "agentId")?,
        resource: params::name(&q, "resource")?,
        types: params::names(&q, "types")?,
        limit: q.get("limit").cloned(),
    };
    Ok(Json(json!(engine.audit_ledger(&caller, filters).await?)))
}
