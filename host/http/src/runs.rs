//! Run endpoints: create, list, detail, begin, heartbeat, complete, fail,
//! cancel, children.

use super::body::RawBody;
use super::error::{ApiError, ApiResult};
use super::params::{self, QueryMap};
use super::path::Path;
use crate::engine::limits;
use crate::engine::model::RunStatus;
use crate::engine::{Engine, NewChild, NewRun, RunQuery};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

pub async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// The filters and page parameters of `GET /runs`.
const LIST_PARAMS: [&str; 8] = [
    "status", "workflow", "queue", "q", "since", "until", "limit", "before",
];

/// `GET /runs`: without parameters, v0.5's `{"runs": [100 newest]}`
/// exactly; with any, a page of the filtered list with its `nextCursor`.
pub async fn list(State(engine): State<Engine>, Query(raw): Query<QueryMap>) -> ApiResult {
    // v0.5 takes no parameters and ignores any it is sent: without one of
    // ours the answer is v0.5's. Once a filter is used, a misspelt one is
    // refused rather than silently ignored.
    let q = params::given(raw);
    if !q.keys().any(|k| LIST_PARAMS.contains(&k.as_str())) {
        return Ok(Json(json!({"runs": engine.list_runs().await?})));
    }
    params::only(&q, &LIST_PARAMS)?;
    let statuses = RunStatus::ALL.map(RunStatus::as_str);
    let query = RunQuery {
        statuses: params::list_of(&q, "status", &statuses)?
            .iter()
            .filter_map(|s| RunStatus::named(s))
            .collect(),
        workflow: params::name(&q, "workflow")?,
        queue: params::name(&q, "queue")?,
        search: params::name(&q, "q")?,
        since: params::instant(&q, "since")?,
        until: params::instant(&q, "until")?,
        limit: params::int(&q, "limit", limits::LIST_LIMIT)?.unwrap_or(limits::LIST_LIMIT_DEFAULT),
        before: params::name(&q, "before")?,
    };
    Ok(Json(json!(engine.find_runs(query).await?)))
}

pub async fn detail(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(engine.run_detail(&id).await?))
}

/// Fields shared by run creation and child creation.
fn new_run(f: &mut super::body::Fields, workflow_name: String) -> NewRun {
    NewRun {
        workflow_name,
        input: f.any("input").unwrap_or(Value::Null),
        metadata: f.opt_record("metadata").unwrap_or_else(|| json!({})),
        recovery_webhook: f.opt_url("recoveryWebhook"),
        channels: f.opt_channels("channels"),
    }
}

pub async fn create(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let new = new_run(&mut f, name);
    f.finish()?;
    Ok(Json(json!({"run": engine.create_run(new).await?})))
}

pub async fn begin(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let owner = headers
        .get("x-tidebase-worker")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(String::from);
    let (run, owner) = engine.begin_run(&id, owner).await?;
    Ok(Json(json!({"run": run, "leaseOwner": owner})))
}

/// `POST /runs/:id/heartbeat`: the body is not schema-checked; a falsy
/// `leaseOwner` is missing, any other is compared by its text form.
pub async fn heartbeat(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let owner = match unvalidated(&body)?.get("leaseOwner") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
        Some(other) => Some(other.to_string()),
    };
    let owner = owner.ok_or_else(|| ApiError::bad_request("leaseOwner is required"))?;
    Ok(Json(json!({"run": engine.heartbeat(&id, &owner).await?})))
}

/// Complete and fail bodies are not schema-checked: a non-object counts as
/// an object without fields, but the body must be JSON.
fn unvalidated(body: &RawBody) -> Result<Value, ApiError> {
    match body.json()? {
        Value::Null => Err(ApiError::bad_request(
            "request body must be a JSON object, got null",
        )),
        v => Ok(v),
    }
}

pub async fn complete(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let b = unvalidated(&body)?;
    let result = b.get("result").cloned().unwrap_or(Value::Null);
    Ok(Json(
        json!({"run": engine.complete_run(&id, result).await?}),
    ))
}

pub async fn fail(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let b = unvalidated(&body)?;
    let error = b.get("error").cloned().unwrap_or_else(|| json!({}));
    let class = b
        .get("failureClass")
        .filter(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    if let Some(c) = &class {
        limits::check_text("failureClass", c)
            .map_err(|v| ApiError::violation("request body", &v))?;
    }
    let (run, requeued) = engine.fail_run(&id, error, class).await?;
    Ok(Json(json!({"run": run, "requeued": requeued})))
}

pub async fn cancel(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = super::body::Fields::new(body.json_or_empty())?;
    let reason = f.opt_str("reason");
    let actor = f.opt_str("actor");
    f.finish()?;
    Ok(Json(
        json!({"run": engine.cancel_run(&id, reason, actor).await?}),
    ))
}

pub async fn child(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let edge_name = f.string("name");
    let workflow = f.string("workflowName");
    let run = new_run(&mut f, workflow);
    let edge_type = f.opt_str("edgeType").unwrap_or_else(|| "child".into());
    let edge_metadata = f.opt_record("edgeMetadata").unwrap_or_else(|| json!({}));
    f.finish()?;
    let req = NewChild {
        edge_name,
        run,
        edge_type,
        edge_metadata,
    };
    let (run, edge, created) = engine.create_child(&id, req).await?;
    Ok(Json(json!({"run": run, "edge": edge, "created": created})))
}
