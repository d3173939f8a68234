//! The last group of an activation's pure checkpoints is written in the
//! transaction that records how the activation ended: the steps and the
//! ending land together, steps first; a fenced-out ending writes neither;
//! a step recorded meanwhile keeps its checkpoint. Driven through the
//! server's engine, as the worker loop drives it, on both backends.

use crate::claims::{deployed_runs, types};
use crate::harness::{TestServer, assert_gap_free};
use serde_json::{Value, json};
use tidebase_host::engine::{Activation, ActivationOutcome, Begun, Engine, StepOutcome};

/// Begin and complete the pure step `name` with `output`; its checkpoint
/// is buffered (fewer steps than a group holds).
async fn pure_step(act: &mut Activation, name: &str, output: Value) {
    let begun = act.begin_step(name.into(), json!({}), None).await.unwrap();
    let Begun::Execute(id) = begun else {
        panic!("{name} should execute");
    };
    let attempt = act.take_attempt(&id).unwrap();
    act.end_attempt(attempt, StepOutcome::Completed(output))
        .await
        .unwrap();
}

/// Run `id` claimed by `owner`, with an activation that completed the pure
/// steps `names` (their outputs are their names).
async fn stepped(engine: &Engine, id: &str, owner: &str, names: &[&str]) -> Activation {
    let claimed = engine.claim_wasm_runs(owner, 1, Some(id)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let mut act = engine.claimed_activation(&claimed[0], owner).await.unwrap();
    for name in names {
        pure_step(&mut act, name, json!(name)).await;
    }
    act
}

fn steps(d: &Value) -> Vec<(String, Value)> {
    let mut steps: Vec<(String, Value)> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["output"].clone()))
        .collect();
    steps.sort_by(|a, b| a.0.cmp(&b.0));
    steps
}

/// Nothing of a completed activation's buffered steps is in the store until
/// its ending is recorded; then all of them are, with their events before
/// `run.completed`, gap-free. Printed output instead writes them at once,
/// so its `log` lines (written next) follow them.
async fn the_ending_writes_the_last_group_first(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 2).await;
    let act = stepped(&engine, &ids[0], "a", &["s1", "s2", "s3"]).await;
    let ended = act
        .close(ActivationOutcome::Completed(json!("done")), false)
        .await;
    assert!(
        steps(&srv.detail(&ids[0]).await).is_empty(),
        "written early"
    );
    engine.record_outcome(&ids[0], "a", ended).await.unwrap();
    let d = srv.detail(&ids[0]).await;
    assert_eq!(
        (&d["run"]["status"], &d["run"]["result"]),
        (&json!("completed"), &json!("done"))
    );
    let want: Vec<(String, Value)> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| (n.to_string(), json!(n)))
        .collect();
    assert_eq!(steps(&d), want);
    let events = d["events"].as_array().unwrap();
    assert_gap_free(events);
    let mut expected = vec!["run.created", "run.started"];
    expected.extend(["step.started", "step.completed"].repeat(3));
    expected.push("run.completed");
    assert_eq!(types(events), expected);

    let act = stepped(&engine, &ids[1], "a", &["s1"]).await;
    let ended = act
        .close(ActivationOutcome::Completed(json!("done")), true)
        .await;
    let d = srv.detail(&ids[1]).await;
    assert_eq!(
        steps(&d).len(),
        1,
        "output follows: the group is written now"
    );
    assert_eq!(d["run"]["status"], "running");
    engine.record_outcome(&ids[1], "a", ended).await.unwrap();
    assert_eq!(srv.detail(&ids[1]).await["run"]["status"], "completed");
}

/// The run is taken over while an activation holds buffered steps: its
/// ending (completed, or parked) is fenced out, and not one of its steps
/// nor any event is written.
async fn a_fenced_out_ending_writes_none_of_its_group(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 2).await;
    let outcomes = [
        ActivationOutcome::Completed(json!("stale")),
        ActivationOutcome::Suspended {
            until: engine.now(),
            reason: "sleep".into(),
        },
    ];
    for (id, outcome) in ids.iter().zip(outcomes) {
        let act = stepped(&engine, id, "zombie", &["s1", "s2"]).await;
        engine.release_lease(id).await.unwrap();
        assert_eq!(
            engine
                .claim_wasm_runs("thief", 1, Some(id))
                .await
                .unwrap()
                .len(),
            1
        );
        let before = srv.detail(id).await;
        let ended = act.close(outcome, false).await;
        engine.record_outcome(id, "zombie", ended).await.unwrap();
        let d = srv.detail(id).await;
        assert!(steps(&d).is_empty(), "the zombie wrote steps: {d:#}");
        assert_eq!(d["events"], before["events"]);
        assert_eq!(
            (&d["run"]["status"], &d["run"]["leaseOwner"]),
            (&json!("running"), &json!("thief"))
        );
    }
}

/// A step of a buffered name was recorded by another activation meanwhile:
/// the ending still lands, that step keeps the checkpoint it has, the
/// others are written, and each step is started once, gap-free.
async fn a_step_recorded_meanwhile_keeps_its_checkpoint(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 1).await;
    let id = &ids[0];
    let act = stepped(&engine, id, "a", &["x", "y"]).await;
    let mut other = engine.activation(id, "a").await.unwrap();
    pure_step(&mut other, "x", json!("first")).await;
    let parked = ActivationOutcome::Suspended {
        until: engine.now(),
        reason: "sleep".into(),
    };
    drop(other.close(parked, true).await);
    assert_eq!(steps(&srv.detail(id).await).len(), 1);

    let ended = act
        .close(ActivationOutcome::Completed(json!("done")), false)
        .await;
    engine.record_outcome(id, "a", ended).await.unwrap();
    let d = srv.detail(id).await;
    assert_eq!(d["run"]["status"], "completed");
    assert_eq!(
        steps(&d),
        [("x".into(), json!("first")), ("y".into(), json!("y"))]
    );
    let events = d["events"].as_array().unwrap();
    assert_gap_free(events);
    let started = types(events)
        .iter()
        .filter(|t| **t == "step.started")
        .count();
    assert_eq!(started, 2, "each step started once");
    assert_eq!(types(events).last(), Some(&"run.completed"));
}

backend_tests!(
    the_ending_writes_the_last_group_first,
    a_fenced_out_ending_writes_none_of_its_group,
    a_step_recorded_meanwhile_keeps_its_checkpoint,
);
