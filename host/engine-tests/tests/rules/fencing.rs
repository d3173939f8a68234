//! Fencing: only the current lease owner writes. A step's old owner is
//! refused once the step was taken over; a wasm activation whose run lease
//! was taken over (or whose run was cancelled) can neither checkpoint nor
//! finish the run.

use crate::rig::{LEASE, Rig, begin, conflict};
use serde_json::json;
use tidebase_engine::model::RunStatus;
use tidebase_engine::{EngineError, LeaseLost, StepFail, StepOutcome};

fn fail_as(owner: &str) -> StepFail {
    StepFail {
        lease_owner: owner.into(),
        error: None,
        retryable: false,
        resume_decision: None,
    }
}

#[tokio::test]
async fn a_step_taken_over_refuses_its_old_owner() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let step = rig.execute(&run.id, "fetch", "a").await;
    rig.advance(LEASE);
    let taken = rig.execute(&run.id, "fetch", "b").await;
    assert_eq!(taken.attempt, 2);

    for refused in [
        rig.engine
            .complete_step(&run.id, &step.id, "a", json!("stale"))
            .await,
        rig.engine.fail_step(&run.id, &step.id, fail_as("a")).await,
    ] {
        assert_eq!(
            conflict(refused).to_string(),
            "step not found or lease lost"
        );
    }
    let done = rig
        .engine
        .complete_step(&run.id, &step.id, "b", json!("fresh"))
        .await
        .unwrap();
    assert_eq!(done.output, Some(json!("fresh")));
}

#[tokio::test]
async fn a_lapsed_step_lease_nobody_took_over_still_completes() {
    // Fencing compares owners, not clocks (semantics §3.2).
    let rig = Rig::new().await;
    let run = rig.run().await;
    let step = rig.execute(&run.id, "fetch", "a").await;
    rig.advance(10 * LEASE);
    let done = rig
        .engine
        .complete_step(&run.id, &step.id, "a", json!(1))
        .await
        .unwrap();
    assert_eq!(done.status, "completed");
}

#[tokio::test]
async fn a_settled_step_refuses_a_second_complete_or_fail() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let step = rig.execute(&run.id, "fetch", "a").await;
    rig.engine
        .complete_step(&run.id, &step.id, "a", json!(1))
        .await
        .unwrap();
    conflict(
        rig.engine
            .complete_step(&run.id, &step.id, "a", json!(2))
            .await,
    );
    conflict(rig.engine.fail_step(&run.id, &step.id, fail_as("a")).await);
    let stored = &rig.engine.steps_of(&run.id).await.unwrap()[0];
    assert_eq!(
        (stored.status.as_str(), &stored.output),
        ("completed", &Some(json!(1)))
    );
}

#[tokio::test]
async fn a_wasm_activation_whose_run_was_taken_over_cannot_write() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    assert_eq!(
        rig.engine
            .claim_wasm_runs("a", 10, None)
            .await
            .unwrap()
            .len(),
        1
    );
    rig.advance(LEASE);
    let taken = rig.engine.claim_wasm_runs("b", 10, None).await.unwrap();
    assert_eq!(taken[0].run.lease_owner.as_deref(), Some("b"));

    // Both checkpoint paths (the one-statement fast path for a completed
    // first attempt, and the full one) check the run lease.
    let completed = StepOutcome::Completed(json!("stale"));
    let failed = StepOutcome::Failed {
        error: json!({}),
        retryable: true,
    };
    for outcome in [completed, failed] {
        let refused = rig
            .engine
            .checkpoint_step(
                &run.id,
                "a",
                begin("s", "h", "a"),
                outcome,
                vec![],
                rig.now(),
            )
            .await;
        assert_eq!(conflict(refused).to_string(), "run lease lost");
    }
    assert!(rig.engine.steps_of(&run.id).await.unwrap().is_empty());
    conflict(
        rig.engine
            .finish_wasm_run(&run.id, "a", Ok(json!("stale")), &[])
            .await,
    );
    conflict(rig.engine.park(&run.id, "a", rig.now() + 1, &[]).await);
    let beat = conflict(rig.engine.heartbeat(&run.id, "a").await);
    assert!(
        matches!(beat, EngineError::LeaseLost(LeaseLost::Heartbeat(_))) && !beat.is_cancelled(),
        "{beat:?}"
    );

    let stored = rig.engine.get_run(&run.id).await.unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    assert_eq!(stored.lease_owner.as_deref(), Some("b"));
    let (done, _) = rig
        .engine
        .finish_wasm_run(&run.id, "b", Ok(json!("fresh")), &[])
        .await
        .unwrap();
    assert_eq!(done.result, Some(json!("fresh")));
}

#[tokio::test]
async fn a_cancelled_run_fences_out_its_activation() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    rig.engine.claim_wasm_runs("a", 10, None).await.unwrap();
    rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    let refused = rig
        .engine
        .checkpoint_step(
            &run.id,
            "a",
            begin("s", "h", "a"),
            StepOutcome::Completed(json!(1)),
            vec![],
            rig.now(),
        )
        .await;
    assert!(
        refused.as_ref().is_err_and(EngineError::is_cancelled),
        "{refused:?}"
    );
    assert!(rig.engine.steps_of(&run.id).await.unwrap().is_empty());
    let beat = conflict(rig.engine.heartbeat(&run.id, "a").await);
    assert!(beat.is_cancelled(), "{beat:?}");
    let after = rig
        .engine
        .finish_wasm_run(&run.id, "a", Ok(json!(1)), &[])
        .await;
    assert!(
        after.as_ref().is_err_and(EngineError::is_cancelled),
        "{after:?}"
    );
    assert_eq!(
        rig.engine.get_run(&run.id).await.unwrap().status,
        RunStatus::Cancelled
    );
}

#[tokio::test]
async fn a_lapsed_run_lease_nobody_took_over_is_revived_by_its_heartbeat() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    rig.engine.claim_wasm_runs("a", 10, None).await.unwrap();
    rig.advance(2 * LEASE);
    let revived = rig.engine.heartbeat(&run.id, "a").await.unwrap();
    assert_eq!(revived.lease_expires_at, Some(rig.now() + LEASE));
    assert!(
        rig.engine
            .claim_wasm_runs("b", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}
