//! Usage: append a record to the run's ledger.

use super::super::bindings::GuestError;
use super::super::ctx::RunCtx;
use super::errors::{answer, guest_error, parse};
use crate::engine::{NewUsage, limits};
use serde_json::Value;
use wasmtime::Result as Wt;

pub async fn record(cx: &mut RunCtx, usage: String) -> Wt<Result<(), GuestError>> {
    cx.live()?;
    let req = match usage_json(&usage) {
        Ok(req) => req,
        Err(e) => return Ok(Err(e)),
    };
    answer("usage-record", cx.run.record_usage(req).await)
}

/// A usage record from the guest's JSON object. Each field has the type
/// the protocol gives it, as over HTTP: one of another type is refused, not
/// dropped. The engine checks the values ([`NewUsage::check`]).
fn usage_json(text: &str) -> Result<NewUsage, GuestError> {
    let wrong = |key: &str, expected: &str| {
        let message = format!("usage-record: {key}: expected {expected}");
        guest_error("HostError", message)
    };
    let Value::Object(m) = parse("usage", text)? else {
        return Err(wrong("usage", "a JSON object"));
    };
    let s = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(key, "a string")),
    };
    let i = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => limits::json_int(n)
            .map(Some)
            .ok_or_else(|| wrong(key, "an integer")),
        Some(_) => Err(wrong(key, "an integer")),
    };
    let f = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(wrong(key, "a number")),
    };
    let metadata = match m.get("metadata") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(wrong("metadata", "an object")),
    };
    Ok(NewUsage {
        step_id: s("stepId")?,
        kind: s("kind")?,
        provider: s("provider")?,
        model: s("model")?,
        label: s("label")?,
        quantity: f("quantity")?,
        unit: s("unit")?,
        input_tokens: i("inputTokens")?,
        output_tokens: i("outputTokens")?,
        total_tokens: i("totalTokens")?,
        cost_usd: f("costUsd")?,
        metadata,
    })
}
