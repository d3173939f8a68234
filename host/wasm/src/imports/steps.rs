//! Steps: begin (replay or execute), complete and fail a step attempt.

use super::super::bindings::{GuestError, ReplayPolicy, StepOptions, StepStart};
use super::super::ctx::RunCtx;
use super::errors::{answer, guest_error, parse};
use crate::engine::{Begun, StepOutcome};
use serde_json::{Value, json};
use wasmtime::Result as Wt;

pub async fn begin(
    cx: &mut RunCtx,
    name: String,
    options: StepOptions,
) -> Wt<Result<StepStart, GuestError>> {
    cx.live()?;
    let opts = match options_json(&options) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let begun = cx
        .run
        .begin_step(name.clone(), opts, options.input_hash)
        .await;
    let begun = match answer("step-begin", begun)? {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    Ok(match begun {
        Begun::Replay(output) => {
            cx.say(format!("step {name}: replayed from checkpoint"));
            Ok(StepStart::Replay(output.to_string()))
        }
        Begun::InputMismatch { expected, actual } => Err(guest_error(
            "InputMismatch",
            format!(
                "step {name}: input changed since its checkpoint (expected hash {expected}, got {actual})"
            ),
        )),
        Begun::Execute(id) => {
            cx.say(format!("step {name}: executing"));
            Ok(StepStart::Execute(id))
        }
    })
}

pub async fn complete(
    cx: &mut RunCtx,
    step_id: String,
    output: String,
) -> Wt<Result<(), GuestError>> {
    cx.check_size("step output", &output)?;
    let Some(attempt) = cx.run.take_attempt(&step_id) else {
        return Ok(Err(unknown(&step_id)));
    };
    let output = match parse("step output", &output) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let name = attempt.name().to_string();
    let r = cx
        .run
        .end_attempt(attempt, StepOutcome::Completed(output))
        .await;
    let done = answer("step-complete", r.map(|_| ()))?;
    cx.say(format!("step {name}: checkpointed"));
    Ok(done)
}

pub async fn fail(
    cx: &mut RunCtx,
    step_id: String,
    err: GuestError,
    retryable: bool,
) -> Wt<Result<(), GuestError>> {
    let Some(attempt) = cx.run.take_attempt(&step_id) else {
        return Ok(Err(unknown(&step_id)));
    };
    let name = attempt.name().to_string();
    let error = json!({"name": err.name, "message": err.message});
    let outcome = StepOutcome::Failed { error, retryable };
    let r = cx.run.end_attempt(attempt, outcome).await;
    let retry = if retryable { " (will retry)" } else { "" };
    cx.say(format!("step {name}: failed: {}{retry}", err.message));
    answer("step-fail", r.map(|_| ()))
}

fn unknown(step_id: &str) -> GuestError {
    guest_error(
        "UnknownStep",
        format!("no step attempt {step_id} is in progress"),
    )
}

/// The protocol's step options from the WIT record.
fn options_json(o: &StepOptions) -> Result<Value, GuestError> {
    let mut m = serde_json::Map::new();
    if let Some(input) = &o.input {
        m.insert("input".into(), parse("step input", input)?);
    }
    if o.retries > 0 {
        m.insert("retries".into(), json!(o.retries));
    }
    if let Some(t) = o.timeout_ms {
        m.insert("timeoutMs".into(), json!(t));
    }
    if !o.side_effects.is_empty() {
        m.insert("sideEffects".into(), json!(o.side_effects));
    }
    if let Some(k) = &o.idempotency_key {
        m.insert("idempotencyKey".into(), json!(k));
    }
    if let Some(r) = o.replay {
        let r = match r {
            ReplayPolicy::Auto => "auto",
            ReplayPolicy::Manual => "manual",
            ReplayPolicy::Never => "never",
        };
        m.insert("replay".into(), json!(r));
    }
    for (key, v) in [
        ("checkpointInvariant", &o.checkpoint_invariant),
        ("verifiedBy", &o.verified_by),
        ("credentials", &o.credentials),
    ] {
        if let Some(v) = v {
            m.insert(key.into(), parse(key, v)?);
        }
    }
    Ok(Value::Object(m))
}
