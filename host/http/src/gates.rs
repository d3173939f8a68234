//! Gate endpoints: begin (idempotent), poll, resolve (exactly once), and
//! the list across runs.

use super::body::RawBody;
use super::error::ApiResult;
use super::params::{self, QueryMap};
use super::path::Path;
use crate::engine::limits;
use crate::engine::{Engine, GateBegin, GateFilter, GateQuery, GateResolve};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

pub async fn begin(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let name = f.string("name");
    let prompt = f.string("prompt");
    // Channels are validated like run channels but stored verbatim.
    f.opt_channels("channels");
    let req = GateBegin {
        name,
        prompt,
        data: f.any("data").unwrap_or(Value::Null),
        channels: f.any("channels").unwrap_or_else(|| json!([])),
        capability: f.any("capability").unwrap_or(Value::Null),
        // v0.5's schema (a positive integer); the engine owns the range.
        timeout_ms: f.opt_int("timeoutMs", 1, false),
    };
    f.finish()?;
    let gate = engine.begin_gate(&id, req).await?;
    let action = if gate.is_pending() { "wait" } else { "return" };
    Ok(Json(json!({"action": action, "gate": gate})))
}

pub async fn get(
    State(engine): State<Engine>,
    Path((id, gate)): Path<(String, String)>,
) -> ApiResult {
    let (gate, run_status) = engine.get_gate(&id, &gate).await?;
    Ok(Json(json!({"gate": gate, "runStatus": run_status})))
}

pub async fn resolve(
    State(engine): State<Engine>,
    Path((id, gate)): Path<(String, String)>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let token = f.name("token");
    let decision = if f.has("decision") {
        f.opt_enum("decision", &["approved", "rejected", "canceled"])
    } else {
        f.name("decision");
        None
    };
    let req = GateResolve {
        token,
        decision: decision.unwrap_or_default(),
        actor: f.opt_str("actor"),
        payload: f
            .any("payload")
            .filter(|p| !p.is_null())
            .unwrap_or_else(|| json!({})),
    };
    f.finish()?;
    Ok(Json(
        json!({"gate": engine.resolve_gate(&id, &gate, req).await?}),
    ))
}

/// `GET /gates?status=pending|resolved|all&limit=&before=` (our addition):
/// gates of every run without their resolve tokens; by default the pending
/// ones, oldest first.
pub async fn list(State(engine): State<Engine>, Query(q): Query<QueryMap>) -> ApiResult {
    let q = params::given(q);
    params::only(&q, &["status", "limit", "before"])?;
    let query = GateQuery {
        filter: params::one_of(&q, "status", &GateFilter::NAMES)?
            .and_then(|s| GateFilter::named(&s))
            .unwrap_or_default(),
        limit: params::int(&q, "limit", limits::LIST_LIMIT)?.unwrap_or(limits::LIST_LIMIT_DEFAULT),
        before: params::name(&q, "before")?,
    };
    Ok(Json(json!(engine.list_gates(query).await?)))
}
