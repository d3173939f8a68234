//! Live state, versions, snapshots and usage endpoints.

use super::body::{Fields, RawBody};
use super::error::{ApiError, ApiResult};
use super::path::Path;
use crate::engine::limits;
use crate::engine::{Engine, NewUsage, StateWrite, WriteMode};
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use std::collections::HashMap;

const IMPORTANCE: [&str; 4] = ["transient", "normal", "checkpoint", "milestone"];

fn version_meta(f: &mut Fields) -> StateWrite {
    StateWrite {
        stream: f.opt_str("stream"),
        label: f.opt_str("label"),
        reason: f.opt_str("reason"),
        importance: f.opt_enum("importance", &IMPORTANCE),
        metadata: f.opt_record("metadata"),
        created_by: f.opt_str("createdBy"),
    }
}

async fn write(engine: Engine, id: String, body: RawBody, mode: WriteMode) -> ApiResult {
    let mut f = body.fields()?;
    let value = f.any("value");
    let meta = version_meta(&mut f);
    f.finish()?;
    Ok(Json(
        json!({"state": engine.write_state(&id, mode, value, meta).await?}),
    ))
}

pub async fn put(State(engine): State<Engine>, Path(id): Path<String>, body: RawBody) -> ApiResult {
    write(engine, id, body, WriteMode::Replace).await
}

pub async fn patch(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    write(engine, id, body, WriteMode::Merge).await
}

pub async fn save(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let label = f.string("label");
    let meta = version_meta(&mut f);
    f.finish()?;
    Ok(Json(
        json!({"stateVersion": engine.save_state(&id, label, meta).await?}),
    ))
}

pub async fn versions(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let labeled_only = q.get("labeled").is_some_and(|v| v == "true");
    if let Some(stream) = q.get("stream") {
        limits::check_text("stream", stream)
            .map_err(|v| ApiError::violation("query parameter", &v))?;
    }
    let versions = engine
        .state_versions(&id, q.get("stream").map(String::as_str), labeled_only)
        .await?;
    Ok(Json(json!({"stateVersions": versions})))
}

pub async fn snapshot(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let label = f.string("label");
    let state = f.any("state").unwrap_or(Value::Null);
    let target = match f.any("target") {
        None => None,
        Some(t) => {
            let mut t = Fields::new(t)?;
            // Only HTTP takes snapshots; the stream `<type>:<id>` they make
            // stays within a Postgres index entry.
            let (kind, id) = (t.key("type"), t.key("id"));
            t.finish()?;
            Some((kind, id))
        }
    };
    let meta = StateWrite {
        reason: f.opt_str("reason"),
        metadata: f.opt_record("metadata"),
        created_by: f.opt_str("createdBy"),
        ..StateWrite::default()
    };
    f.finish()?;
    Ok(Json(
        json!({"snapshot": engine.create_snapshot(&id, label, state, target, meta).await?}),
    ))
}

pub async fn snapshots(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(json!({"snapshots": engine.snapshots(&id).await?})))
}

pub async fn usage(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let req = NewUsage {
        step_id: f.opt_str("stepId"),
        kind: f.opt_str("kind"),
        provider: f.opt_str("provider"),
        model: f.opt_str("model"),
        label: f.opt_str("label"),
        quantity: f.opt_num("quantity"),
        unit: f.opt_str("unit"),
        input_tokens: f.int_in("inputTokens", limits::TOKENS),
        output_tokens: f.int_in("outputTokens", limits::TOKENS),
        total_tokens: f.int_in("totalTokens", limits::TOKENS),
        cost_usd: f.opt_num("costUsd"),
        metadata: f.opt_record("metadata"),
    };
    f.finish()?;
    Ok(Json(json!({"usage": engine.record_usage(&id, req).await?})))
}
