//! `stages`: a request that passes a number of approval stages, recording
//! its progress in live state, its usage and log lines between them.
//!
//! Every state, usage and log call here is made outside step code, so the
//! host records each exactly once per run however often the run is
//! re-activated (after every gate, after a crash, after a takeover); the
//! result lists the state versions those calls answered, which a resumed
//! run gets replayed.
//!
//! Input (all optional):
//! `{"stages": 2, "timeoutMs": 1000, "holdMs": 0, "crashAfter": "estimate"}`
//! - `stages`: how many gates (`stage-1`, `stage-2`, …) to pass;
//! - `timeoutMs`: timeout of each gate. A stage whose gate times out is
//!   escalated (step `escalate-<i>`) instead of approved;
//! - `holdMs`: a step `hold` that waits this long in place (holding the run
//!   lease) before the estimate, e.g. to kill the process meanwhile;
//! - `crashAfter`: `estimate` or `escalate`: trap right after that step, but
//!   only in an execution in which the step's code ran. A resume replays the
//!   step's checkpoint and goes on.
//!
//! Result: `{"before", "versions", "outcomes", "after"}`: the state seen at
//! the start (`null`), the versions answered by the state writes, each
//! stage's outcome (`approved`, `rejected`, `canceled`, `timed_out`) and the
//! final state.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tidebase_guest::{Error, GateOptions, Run, Usage};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct Input {
    stages: u32,
    timeout_ms: Option<u64>,
    hold_ms: u64,
    crash_after: Option<String>,
}

fn usage(run: &Run, label: &str, input_tokens: u64, output_tokens: u64) -> Usage {
    Usage {
        kind: Some("llm".into()),
        model: Some("small-1".into()),
        label: Some(label.into()),
        input_tokens: Some(input_tokens),
        output_tokens: Some(output_tokens),
        step_id: run.current_step_id(),
        ..Usage::default()
    }
}

/// Traps if `step` is the `crashAfter` step and its code ran in this execution.
fn maybe_crash(input: &Input, step: &str, ran: bool) {
    if ran && input.crash_after.as_deref() == Some(step) {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        // Native builds exist only so that the workspace compiles.
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    }
}

fn stages(run: &Run, input: Option<Input>) -> Result<Value, Error> {
    let input = input.unwrap_or_default();
    let before: Option<Value> = run.state().get()?;
    let mut versions = vec![run.state().set(&json!({"phase": "received"}))?];
    run.usage().record(usage(run, "intake", 100, 20))?;
    run.info("request received");

    if input.hold_ms > 0 {
        run.step("hold", || {
            run.sleep(Duration::from_millis(input.hold_ms));
            Ok::<_, Error>(())
        })?;
    }
    let mut ran = false;
    let estimate: u64 = run.step("estimate", || {
        ran = true;
        run.usage().record(usage(run, "estimate", 300, 50))?;
        Ok::<_, Error>(42)
    })?;
    maybe_crash(&input, "estimate", ran);

    let mut outcomes = Vec::new();
    for i in 1..=input.stages {
        versions.push(run.state().patch(&json!({"phase": format!("stage {i}")}))?);
        run.usage()
            .record(usage(run, &format!("stage-{i}"), 10, 5))?;
        run.info(format!("waiting for stage {i}"));
        let mut options = GateOptions::new().data(&json!({"stage": i, "estimate": estimate}));
        if let Some(ms) = input.timeout_ms {
            options = options.timeout(Duration::from_millis(ms));
        }
        let outcome = match run.gate_with(
            &format!("stage-{i}"),
            &format!("Approve stage {i}?"),
            options,
        ) {
            Ok(decision) => format!("{:?}", decision.decision).to_lowercase(),
            Err(e) if e.name == "TimeoutError" => {
                let mut ran = false;
                run.step(&format!("escalate-{i}"), || {
                    ran = true;
                    Ok::<_, Error>(())
                })?;
                maybe_crash(&input, "escalate", ran);
                "timed_out".to_string()
            }
            Err(e) => return Err(e),
        };
        outcomes.push(outcome);
    }
    versions.push(run.state().save("done")?);
    let after: Option<Value> = run.state().get()?;
    run.info("all stages passed");
    Ok(json!({"before": before, "versions": versions, "outcomes": outcomes, "after": after}))
}

tidebase_guest::workflow!(stages);
