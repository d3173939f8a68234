//! Decoding result rows into model types. JSON columns are TEXT, timestamps
//! are BIGINT microseconds.

use crate::model::{
    Channel, Event, Gate, LiveState, ResumeContract, Run, RunEdge, RunStatus, StateStream,
    StateVersion, Step, UsageRecord,
};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

pub type R<T> = Result<T, sqlx::Error>;

pub fn json_col(row: &AnyRow, col: &str) -> R<Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json_opt(row: &AnyRow, col: &str) -> R<Option<Value>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// JSON text for binding; `Value` serialisation cannot fail.
pub fn to_text(v: &Value) -> String {
    v.to_string()
}

pub fn opt_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(to_text)
}

pub const RUN_COLS: &str = "id, workflow_name, input_json, metadata_json, status, result_json, \
    error_json, recovery_webhook, lease_owner, lease_expires_at, attempt, queue_name, dedupe_key, \
    priority, run_at, max_attempts, deadline_at, cancel_requested_at, cancelled_at, cancel_reason, \
    cancel_actor, failure_class, claimed_at, component_digest, created_at, updated_at, completed_at, \
    parked_until";

pub fn run(row: &AnyRow) -> R<Run> {
    Ok(Run {
        id: row.try_get("id")?,
        workflow_name: row.try_get("workflow_name")?,
        input: json_col(row, "input_json")?,
        metadata: json_col(row, "metadata_json")?,
        status: RunStatus::parse(&row.try_get::<String, _>("status")?),
        result: json_opt(row, "result_json")?,
        error: json_opt(row, "error_json")?,
        recovery_webhook: row.try_get("recovery_webhook")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        attempt: row.try_get("attempt")?,
        queue: row.try_get("queue_name")?,
        dedupe_key: row.try_get("dedupe_key")?,
        priority: row.try_get("priority")?,
        run_at: row.try_get("run_at")?,
        max_attempts: row.try_get("max_attempts")?,
        deadline_at: row.try_get("deadline_at")?,
        cancel_requested_at: row.try_get("cancel_requested_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
        cancel_reason: row.try_get("cancel_reason")?,
        cancel_actor: row.try_get("cancel_actor")?,
        failure_class: row.try_get("failure_class")?,
        claimed_at: row.try_get("claimed_at")?,
        component_digest: row.try_get("component_digest")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
        parked_until: row.try_get("parked_until")?,
    })
}

pub const STEP_COLS: &str = "id, run_id, name, input_hash, input_json, options_json, status, \
    output_json, error_json, lease_owner, lease_expires_at, attempt, started_at, completed_at, \
    created_at, updated_at";

pub fn step(row: &AnyRow) -> R<Step> {
    let options = json_col(row, "options_json")?;
    Ok(Step {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        name: row.try_get("name")?,
        input_hash: row.try_get("input_hash")?,
        input: json_col(row, "input_json")?,
        resume_contract: ResumeContract::from_options(&options),
        options,
        status: row.try_get("status")?,
        output: json_opt(row, "output_json")?,
        error: json_opt(row, "error_json")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        attempt: row.try_get("attempt")?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub const EVENT_COLS: &str = "id, run_id, seq, type, payload_json, created_at";

pub fn event(row: &AnyRow) -> R<Event> {
    Ok(Event {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        seq: row.try_get("seq")?,
        kind: row.try_get("type")?,
        payload: json_col(row, "payload_json")?,
        created_at: row.try_get("created_at")?,
    })
}

pub const GATE_COLS: &str = "id, run_id, name, prompt, data_json, status, decision, actor, \
    decision_json, capability_json, channels_json, resolve_token, timeout_ms, created_at, \
    updated_at, resolved_at";

pub fn gate(row: &AnyRow) -> R<Gate> {
    Ok(Gate {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        name: row.try_get("name")?,
        prompt: row.try_get("prompt")?,
        data: json_col(row, "data_json")?,
        status: row.try_get("status")?,
        decision: row.try_get("decision")?,
        actor: row.try_get("actor")?,
        decision_payload: json_opt(row, "decision_json")?,
        capability: json_col(row, "capability_json")?,
        channels: json_col(row, "channels_json")?,
        resolve_token: row.try_get("resolve_token")?,
        timeout_ms: row.try_get("timeout_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

pub const EDGE_COLS: &str =
    "id, parent_run_id, child_run_id, name, edge_type, metadata_json, created_at";

pub fn edge(row: &AnyRow) -> R<RunEdge> {
    Ok(RunEdge {
        id: row.try_get("id")?,
        parent_run_id: row.try_get("parent_run_id")?,
        child_run_id: row.try_get("child_run_id")?,
        name: row.try_get("name")?,
        edge_type: row.try_get("edge_type")?,
        metadata: json_col(row, "metadata_json")?,
        created_at: row.try_get("created_at")?,
    })
}

pub const CHANNEL_COLS: &str = "id, run_id, type, config_json, events_json, created_at";

pub fn channel(row: &AnyRow) -> R<Channel> {
    Ok(Channel {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        kind: row.try_get("type")?,
        config: json_col(row, "config_json")?,
        events: json_col(row, "events_json")?,
        created_at: row.try_get("created_at")?,
    })
}

pub fn live_state(row: &AnyRow) -> R<LiveState> {
    Ok(LiveState {
        run_id: row.try_get("run_id")?,
        value: json_col(row, "value_json")?,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub const STREAM_COLS: &str = "id, run_id, name, target_type, target_id, current_version, \
    current_value_json, metadata_json, created_at, updated_at";

pub fn stream(row: &AnyRow) -> R<StateStream> {
    Ok(StateStream {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        name: row.try_get("name")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        current_version: row.try_get("current_version")?,
        current_value: json_col(row, "current_value_json")?,
        metadata: json_col(row, "metadata_json")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub const VERSION_COLS: &str = "v.id, v.stream_id, v.run_id, v.step_id, v.version, v.value_json, \
    v.patch_json, v.label, v.reason, v.importance, v.metadata_json, v.created_by, v.created_at";

pub fn version(row: &AnyRow) -> R<StateVersion> {
    Ok(StateVersion {
        id: row.try_get("id")?,
        stream_id: row.try_get("stream_id")?,
        run_id: row.try_get("run_id")?,
        step_id: row.try_get("step_id")?,
        version: row.try_get("version")?,
        value: json_col(row, "value_json")?,
        patch: json_opt(row, "patch_json")?,
        label: row.try_get("label")?,
        reason: row.try_get("reason")?,
        importance: row.try_get("importance")?,
        metadata: json_col(row, "metadata_json")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

pub const USAGE_COLS: &str = "id, run_id, step_id, kind, provider, model, label, quantity, unit, \
    input_tokens, output_tokens, total_tokens, cost_usd, metadata_json, created_at";

pub fn usage(row: &AnyRow) -> R<UsageRecord> {
    Ok(UsageRecord {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        step_id: row.try_get("step_id")?,
        kind: row.try_get("kind")?,
        provider: row.try_get("provider")?,
        model: row.try_get("model")?,
        label: row.try_get("label")?,
        quantity: row.try_get("quantity")?,
        unit: row.try_get("unit")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        total_tokens: row.try_get("total_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        metadata: json_col(row, "metadata_json")?,
        created_at: row.try_get("created_at")?,
    })
}

fn iso_col(row: &AnyRow, col: &str) -> R<Value> {
    Ok(row
        .try_get::<Option<i64>, _>(col)?
        .map_or(Value::Null, |t| crate::clock::iso(t).into()))
}

pub fn recovery_attempt(row: &AnyRow) -> R<Value> {
    let ts = |c: &str| iso_col(row, c);
    Ok(json!({
        "id": row.try_get::<String, _>("id")?,
        "runId": row.try_get::<String, _>("run_id")?,
        "reason": row.try_get::<String, _>("reason")?,
        "webhookUrl": row.try_get::<String, _>("webhook_url")?,
        "status": row.try_get::<String, _>("status")?,
        "httpStatus": row.try_get::<Option<i32>, _>("http_status")?,
        "responseBody": row.try_get::<Option<String>, _>("response_body")?,
        "errorText": row.try_get::<Option<String>, _>("error_text")?,
        "createdAt": ts("created_at")?,
        "completedAt": ts("completed_at")?,
    }))
}

pub fn delivery(row: &AnyRow) -> R<Value> {
    let ts = |c: &str| iso_col(row, c);
    Ok(json!({
        "id": row.try_get::<String, _>("id")?,
        "runId": row.try_get::<Option<String>, _>("run_id")?,
        "channelId": row.try_get::<Option<String>, _>("channel_id")?,
        "gateId": row.try_get::<Option<String>, _>("gate_id")?,
        "eventType": row.try_get::<String, _>("event_type")?,
        "payload": json_col(row, "payload_json")?,
        "status": row.try_get::<String, _>("status")?,
        "httpStatus": row.try_get::<Option<i32>, _>("http_status")?,
        "responseBody": row.try_get::<Option<String>, _>("response_body")?,
        "errorText": row.try_get::<Option<String>, _>("error_text")?,
        "createdAt": ts("created_at")?,
        "completedAt": ts("completed_at")?,
    }))
}
