//! `GET /egress/receipts`: the receipts of the wasm door's brokered
//! egress calls (our addition). `GET /audit` is the v0.7 grant ledger.

use super::error::ApiResult;
use super::params::{self, QueryMap};
use crate::engine::limits;
use crate::engine::{AuditQuery, Engine};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;

/// The decisions a receipt records.
const DECISIONS: [&str; 2] = ["allowed", "denied"];

/// `?runId=&resource=&decision=&limit=&before=`: newest first; `before` is
/// the previous page's `nextCursor`.
pub async fn list(State(engine): State<Engine>, Query(q): Query<QueryMap>) -> ApiResult {
    let query = AuditQuery {
        run_id: params::name(&q, "runId")?,
        resource: params::name(&q, "resource")?,
        decision: params::one_of(&q, "decision", &DECISIONS)?,
        limit: params::int(&q, "limit", limits::AUDIT_LIMIT)?
            .unwrap_or(limits::AUDIT_LIMIT_DEFAULT),
        before: params::name(&q, "before")?,
    };
    Ok(Json(json!(engine.audit(query).await?)))
}
