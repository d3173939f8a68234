//! The step-begin decision procedure (semantics §5): execute, return,
//! input_mismatch, locked, cancelled, in that order of precedence.

use crate::rig::{LEASE, Rig, begin};
use serde_json::json;
use tidebase_engine::{StepAction, StepFail};

#[tokio::test]
async fn a_completed_step_replays_its_output_and_writes_nothing() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let step = rig.execute(&run.id, "fetch", "a").await;
    assert_eq!(step.attempt, 1);
    assert_eq!(step.status, "running");
    rig.engine
        .complete_step(&run.id, &step.id, "a", json!({"n": 1}))
        .await
        .unwrap();
    let events = rig.events(&run.id).await;

    // Any caller, even one that never held the lease, gets the checkpoint.
    match rig.step_begin(&run.id, "fetch", "h", "b").await {
        StepAction::Return { step: replayed } => {
            assert_eq!(replayed.id, step.id);
            assert_eq!(replayed.output, Some(json!({"n": 1})));
            assert_eq!(replayed.attempt, 1);
        }
        other => panic!("expected return, got {other:?}"),
    }
    assert_eq!(
        rig.events(&run.id).await,
        events,
        "a replay appends no event"
    );
}

#[tokio::test]
async fn a_changed_input_is_a_mismatch_before_anything_else() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let step = rig.execute(&run.id, "fetch", "a").await;

    // While another owner holds the lease: mismatch, not locked.
    match rig.step_begin(&run.id, "fetch", "other", "b").await {
        StepAction::InputMismatch {
            expected, actual, ..
        } => assert_eq!((expected.as_str(), actual.as_str()), ("h", "other")),
        other => panic!("expected input_mismatch, got {other:?}"),
    }
    // Once completed: still a mismatch, not a return.
    rig.engine
        .complete_step(&run.id, &step.id, "a", json!(1))
        .await
        .unwrap();
    assert!(matches!(
        rig.step_begin(&run.id, "fetch", "other", "a").await,
        StepAction::InputMismatch { .. }
    ));
}

#[tokio::test]
async fn a_failed_step_is_executed_again_as_the_next_attempt() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let first = rig.execute(&run.id, "charge", "a").await;
    rig.advance(1_000);
    let failed = rig
        .engine
        .fail_step(
            &run.id,
            &first.id,
            StepFail {
                lease_owner: "a".into(),
                error: Some(json!({"message": "boom"})),
                retryable: true,
                resume_decision: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, "failed_retryable");
    assert_eq!(failed.lease_owner, None, "a failure releases the lease");

    // Another owner may retry at once: the failed attempt holds no lease.
    rig.advance(1_000);
    let retry = rig.execute(&run.id, "charge", "b").await;
    assert_eq!(retry.id, first.id, "the same step row");
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.started_at, first.started_at, "startedAt is preserved");
    assert_eq!(retry.lease_expires_at, Some(rig.now() + LEASE));
}

#[tokio::test]
async fn a_step_sent_to_manual_review_is_still_executable() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let mut req = begin("email", "h", "a");
    req.options = json!({"sideEffects": ["write"]});
    let StepAction::Execute { step, .. } = rig.engine.begin_step(&run.id, req).await.unwrap()
    else {
        panic!("expected execute");
    };
    let fail = StepFail {
        lease_owner: "a".into(),
        error: None,
        retryable: false,
        resume_decision: None,
    };
    let failed = rig.engine.fail_step(&run.id, &step.id, fail).await.unwrap();
    assert_eq!(failed.status, "manual_review", "unkeyed writes need review");
    // The classification is advisory: the step runs again if begun.
    assert_eq!(rig.execute(&run.id, "email", "a").await.attempt, 2);
}

#[tokio::test]
async fn a_live_lease_of_another_owner_is_locked_and_its_own_owner_re_executes() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.execute(&run.id, "fetch", "a").await;
    match rig.step_begin(&run.id, "fetch", "h", "b").await {
        StepAction::Locked { step } => {
            assert_eq!(step.lease_owner.as_deref(), Some("a"));
            assert_eq!(step.attempt, 1, "locked grants no attempt");
        }
        other => panic!("expected locked, got {other:?}"),
    }
    rig.advance(5_000);
    let again = rig.execute(&run.id, "fetch", "a").await;
    assert_eq!(again.attempt, 2);
    assert_eq!(
        again.lease_expires_at,
        Some(rig.now() + LEASE),
        "re-begin extends"
    );
}

#[tokio::test]
async fn concurrent_first_begins_elect_exactly_one_executor() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let owners: Vec<String> = (0..8).map(|i| format!("w{i}")).collect();
    let answers = futures::future::join_all(
        owners
            .iter()
            .map(|o| rig.engine.begin_step(&run.id, begin("once", "h", o))),
    )
    .await;
    let mut executed = 0;
    for answer in answers {
        match answer.unwrap() {
            StepAction::Execute { .. } => executed += 1,
            StepAction::Locked { .. } => {}
            other => panic!("expected execute or locked, got {other:?}"),
        }
    }
    assert_eq!(executed, 1);
    let started = rig.events(&run.id).await;
    assert_eq!(started.iter().filter(|k| *k == "step.started").count(), 1);
}

#[tokio::test]
async fn a_cancelled_run_answers_cancelled_and_creates_no_step() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    assert!(matches!(
        rig.step_begin(&run.id, "fetch", "h", "a").await,
        StepAction::Cancelled
    ));
    assert!(rig.engine.steps_of(&run.id).await.unwrap().is_empty());
}
