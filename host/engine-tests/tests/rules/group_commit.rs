//! The bounds of a wasm activation's group of pure checkpoints: it is
//! written once it holds `max_steps` steps or `max_bytes` of inputs and
//! outputs, and not before.

use crate::egress::claimed;
use crate::rig::Rig;
use serde_json::{Value, json};
use tidebase_engine::config::Settings;
use tidebase_engine::{Activation, Begun, DeployLimits, GroupCommit, StepOutcome};

async fn rig(group: GroupCommit) -> Rig {
    let settings = Settings {
        wasm_group_commit: group,
        ..Settings::default()
    };
    Rig::with_settings(None, settings).await
}

/// Begin and complete the pure step `name` with `output`.
async fn pure_step(act: &mut Activation, name: &str, output: Value) {
    let Begun::Execute(id) = act.begin_step(name.into(), json!({}), None).await.unwrap() else {
        panic!("{name} should execute");
    };
    let attempt = act.take_attempt(&id).unwrap();
    let outcome = StepOutcome::Completed(output);
    act.end_attempt(attempt, outcome).await.unwrap();
}

async fn written(rig: &Rig, run_id: &str) -> usize {
    rig.engine.steps_of(run_id).await.unwrap().len()
}

#[tokio::test]
async fn a_group_is_written_when_it_holds_max_steps() {
    let rig = rig(GroupCommit {
        max_steps: 3,
        ..GroupCommit::default()
    })
    .await;
    let (run, mut act) = claimed(&rig, DeployLimits::default()).await;
    for (i, expected) in [0, 0, 3, 3, 3, 6].into_iter().enumerate() {
        pure_step(&mut act, &format!("s{i}"), json!(i)).await;
        assert_eq!(written(&rig, &run.id).await, expected, "after s{i}");
    }
    // A buffered step replays from the group, without a write.
    pure_step(&mut act, "s6", json!(6)).await;
    let Begun::Replay(output) = act.begin_step("s6".into(), json!({}), None).await.unwrap() else {
        panic!("s6 should replay from the group");
    };
    assert_eq!((output, written(&rig, &run.id).await), (json!(6), 6));
}

#[tokio::test]
async fn a_group_is_written_when_it_holds_max_bytes() {
    let rig = rig(GroupCommit {
        max_steps: 100,
        max_bytes: 1000,
    })
    .await;
    let (run, mut act) = claimed(&rig, DeployLimits::default()).await;
    pure_step(&mut act, "small", json!("x")).await;
    assert_eq!(written(&rig, &run.id).await, 0);
    pure_step(&mut act, "big", json!("x".repeat(1000))).await;
    assert_eq!(written(&rig, &run.id).await, 2);
}

#[tokio::test]
async fn off_writes_each_checkpoint_at_once() {
    let rig = rig(GroupCommit::OFF).await;
    let (run, mut act) = claimed(&rig, DeployLimits::default()).await;
    pure_step(&mut act, "only", json!(1)).await;
    assert_eq!(written(&rig, &run.id).await, 1);
}
