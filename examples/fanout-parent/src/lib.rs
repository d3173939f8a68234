//! `fanout-parent`: runs one `child-echo` child per input value, sleeps, and sums
//! the children's results; also exercises the durable clock and randomness,
//! usage recording and state snapshots.
//!
//! Input (optional): `{"values": [1, 2], "sleepMs": 10}`; children get the edge
//! names `c1`, `c2`, …. Output:
//! `{"sum": Σ 2v, "children": [{"value", "doubled"}…], "startedAt", "finishedAt", "nonce"}`
//! where `startedAt` and `nonce` come from the host's recorded clock and random
//! source, so a resumed run returns the same values.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tidebase_guest::{Error, Importance, Replay, Run, StateOptions, StepOptions, Usage};

/// The deployed workflow name the children run.
const CHILD_WORKFLOW: &str = "child-echo";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct Input {
    values: Vec<i64>,
    sleep_ms: u64,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            values: vec![1, 2],
            sleep_ms: 10,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Echo {
    value: i64,
    doubled: i64,
}

fn fanout_parent(run: &Run, input: Option<Input>) -> Result<Value, Error> {
    let input = input.unwrap_or_default();
    let started_at = run.now();
    let nonce = format!("{:016x}", run.random());
    run.state()
        .set(&json!({ "phase": "fanning-out", "children": input.values.len() }))?;

    let edges: Vec<String> = (1..=input.values.len()).map(|i| format!("c{i}")).collect();
    let mut children = Vec::with_capacity(input.values.len());
    for (edge, value) in edges.iter().zip(&input.values) {
        let echo: Echo = run.child(edge, CHILD_WORKFLOW, &json!({ "value": value }))?;
        run.debug(format!("child {edge} returned {}", echo.doubled));
        children.push(echo);
    }

    if input.sleep_ms > 0 {
        run.sleep(Duration::from_millis(input.sleep_ms));
    }

    // The join checkpoint the Python SDK's `fanout` records.
    let sum: i64 = run.step_with(
        "join:children",
        StepOptions::new()
            .input(&json!({ "fanout": "children", "join": "all", "children": edges }))
            .replay(Replay::Auto)
            .checkpoint_invariant("all child run results were collected"),
        || Ok::<_, Error>(children.iter().map(|c| c.doubled).sum()),
    )?;

    run.usage().record(Usage {
        kind: Some("compute".into()),
        label: Some("children".into()),
        quantity: Some(children.len() as f64),
        unit: Some("child-runs".into()),
        metadata: Some(json!({ "workflow": CHILD_WORKFLOW })),
        ..Usage::default()
    })?;
    run.state().patch(&json!({ "phase": "done", "sum": sum }))?;
    run.state().save_with(
        "done",
        StateOptions::new().importance(Importance::Milestone),
    )?;

    Ok(json!({
        "sum": sum,
        "children": children,
        "startedAt": started_at,
        "finishedAt": run.now(),
        "nonce": nonce,
    }))
}

tidebase_guest::workflow!(fanout_parent);
