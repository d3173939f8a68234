//! Step endpoints: begin (replay decision), complete and fail (fenced).

use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use super::path::Path;
use crate::engine::{Engine, StepAction, StepBegin, StepFail};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn begin(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> Result<Json<StepAction>, ApiError> {
    let mut f = body.fields()?;
    let req = StepBegin {
        id: None,
        name: f.string("name"),
        input_hash: f.string("inputHash"),
        input: f.any("input").unwrap_or(Value::Null),
        options: f.opt_record("options").unwrap_or_else(|| json!({})),
        lease_owner: f.opt_str("leaseOwner"),
    };
    f.finish()?;
    Ok(Json(engine.begin_step(&id, req).await?))
}

pub async fn complete(
    State(engine): State<Engine>,
    Path((id, step)): Path<(String, String)>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let owner = f.opt_str("leaseOwner");
    let output = f.any("output").unwrap_or(Value::Null);
    let owner = required(f, owner, "leaseOwner")?;
    Ok(Json(
        json!({"step": engine.complete_step(&id, &step, &owner, output).await?}),
    ))
}

pub async fn fail(
    State(engine): State<Engine>,
    Path((id, step)): Path<(String, String)>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let owner = f.opt_str("leaseOwner");
    let error = f.any("error");
    let retryable = f.opt_bool("retryable").unwrap_or(false);
    let decisions = ["auto_retry", "safe_replay", "manual_review", "fail_hard"];
    let resume_decision = f.opt_enum("resumeDecision", &decisions);
    let lease_owner = required(f, owner, "leaseOwner")?;
    let req = StepFail {
        lease_owner,
        error,
        retryable,
        resume_decision,
    };
    Ok(Json(
        json!({"step": engine.fail_step(&id, &step, req).await?}),
    ))
}

/// A required string field that may be empty (lease owners are opaque).
fn required(
    mut f: super::body::Fields,
    value: Option<String>,
    key: &str,
) -> Result<String, ApiError> {
    if value.is_none() && !f.has(key) {
        // Records the "expected string, received undefined" issue.
        f.name(key);
    }
    f.finish()?;
    Ok(value.unwrap_or_default())
}
