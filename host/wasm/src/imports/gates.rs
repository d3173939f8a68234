//! Gates: begin a gate and wait for its decision.

use super::super::bindings::{Decision, GateOutcome, GateRequest, GuestError};
use super::super::ctx::RunCtx;
use super::super::interrupt::Interrupt;
use super::errors::{answer, guest_error, parse};
use crate::clock::Micros;
use crate::engine::GateBegin;
use crate::model::TIMED_OUT;
use serde_json::{Value, json};
use wasmtime::Result as Wt;

pub async fn gate(cx: &mut RunCtx, request: GateRequest) -> Wt<Result<GateOutcome, GuestError>> {
    cx.live()?;
    let json_field = |what, text: Option<&str>| {
        text.map(|t| parse(what, t))
            .transpose()
            .map(|v| v.unwrap_or(Value::Null))
    };
    let data = match json_field("gate data", request.data.as_deref()) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let capability = match json_field("gate capability", request.capability.as_deref()) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let req = GateBegin {
        name: request.name.clone(),
        prompt: request.prompt,
        data,
        channels: json!([]),
        capability,
        // Out of range either way: the engine names the allowed range.
        timeout_ms: request
            .timeout_ms
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
    };
    let gate = match answer("gate", cx.run.begin_gate(req).await)? {
        Ok(gate) => gate,
        Err(e) => return Ok(Err(e)),
    };
    if gate.status == TIMED_OUT {
        cx.say(format!("gate {}: timed out", gate.name));
        return Ok(Err(guest_error(
            "TimeoutError",
            format!("gate {} timed out", gate.name),
        )));
    }
    if gate.is_pending() {
        // Parked until the deadline at the latest; the next activation
        // finds the gate decided or records its timeout.
        cx.say(format!(
            "gate {}: waiting for a decision (resolve token {}, gate id {})",
            gate.name, gate.resolve_token, gate.id
        ));
        return Err(Interrupt::Suspend {
            until: gate.deadline().unwrap_or(Micros::MAX),
            reason: format!("gate {}", gate.name),
        }
        .trap());
    }
    let decision = match gate.status.as_str() {
        "approved" => Decision::Approved,
        "rejected" => Decision::Rejected,
        _ => Decision::Canceled,
    };
    cx.say(format!("gate {}: {}", gate.name, gate.status));
    Ok(Ok(GateOutcome {
        gate_id: gate.id,
        decision,
        actor: gate.actor,
        payload: gate
            .decision_payload
            .unwrap_or_else(|| json!({}))
            .to_string(),
    }))
}
