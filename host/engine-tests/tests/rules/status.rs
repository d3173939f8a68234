//! Run status transitions (semantics §2.2): which ones happen, and which
//! are refused. Completed and cancelled runs are final.

use crate::rig::{LEASE, Rig, conflict};
use serde_json::json;
use tidebase_engine::model::RunStatus;
use tidebase_engine::{EngineError, Enqueue, NewRun};

#[tokio::test]
async fn a_cancelled_run_never_changes_again() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine
        .begin_run(&run.id, Some("a".into()))
        .await
        .unwrap();
    let cancelled = rig
        .engine
        .cancel_run(&run.id, Some("stop".into()), Some("ops".into()))
        .await
        .unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(cancelled.lease_owner, None, "cancel releases the lease");
    let events = rig.events(&run.id).await;
    rig.advance(1_000);

    let completed = rig.engine.complete_run(&run.id, json!(1)).await.unwrap();
    assert_eq!(
        (completed.status, completed.result),
        (RunStatus::Cancelled, None)
    );
    let (failed, requeued) = rig.engine.fail_run(&run.id, json!({}), None).await.unwrap();
    assert_eq!((failed.status, requeued), (RunStatus::Cancelled, false));
    let begun = rig.engine.begin_run(&run.id, Some("a".into())).await;
    assert!(
        begun.as_ref().is_err_and(EngineError::is_cancelled),
        "{begun:?}"
    );
    let again = rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    assert_eq!(again.cancelled_at, cancelled.cancelled_at);
    assert_eq!(again.cancel_reason.as_deref(), Some("stop"));

    assert_eq!(rig.events(&run.id).await, events, "no refused call wrote");
}

#[tokio::test]
async fn a_completed_run_is_final() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine
        .begin_run(&run.id, Some("a".into()))
        .await
        .unwrap();
    let done = rig.engine.complete_run(&run.id, json!(1)).await.unwrap();
    assert_eq!(done.completed_at, Some(rig.now()));
    let events = rig.events(&run.id).await;
    rig.advance(1_000);

    let again = rig.engine.complete_run(&run.id, json!(2)).await.unwrap();
    assert_eq!(
        again.result,
        Some(json!(1)),
        "a repeat complete keeps the result"
    );
    let failed = rig.engine.fail_run(&run.id, json!({}), None).await;
    assert_eq!(conflict(failed).to_string(), "run already completed");
    let cancelled = rig.engine.cancel_run(&run.id, None, None).await;
    assert_eq!(conflict(cancelled).to_string(), "run already completed");
    let (begun, _) = rig
        .engine
        .begin_run(&run.id, Some("b".into()))
        .await
        .unwrap();
    assert_eq!(begun.status, RunStatus::Completed);
    assert_eq!(
        (begun.lease_owner, begun.attempt),
        (None, 1),
        "no lease, no attempt"
    );

    assert_eq!(rig.events(&run.id).await, events, "no refused call wrote");
}

#[tokio::test]
async fn a_failed_run_can_be_begun_again_or_cancelled() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine
        .begin_run(&run.id, Some("a".into()))
        .await
        .unwrap();
    let (failed, requeued) = rig
        .engine
        .fail_run(&run.id, json!({"message": "boom"}), Some("crash".into()))
        .await
        .unwrap();
    assert_eq!((failed.status, requeued), (RunStatus::Failed, false));
    assert_eq!(failed.failure_class.as_deref(), Some("crash"));
    assert_eq!(failed.lease_owner, None, "fail releases the lease");

    // Resume: another worker may begin it at once, as the next attempt.
    let (resumed, _) = rig
        .engine
        .begin_run(&run.id, Some("b".into()))
        .await
        .unwrap();
    assert_eq!((resumed.status, resumed.attempt), (RunStatus::Running, 2));
    assert_eq!(resumed.lease_expires_at, Some(rig.now() + LEASE));
    rig.engine.fail_run(&run.id, json!({}), None).await.unwrap();
    let cancelled = rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_queue_run_is_requeued_with_backoff_until_its_last_attempt() {
    let rig = Rig::new().await;
    let mut req = Enqueue::new("q", NewRun::named("wf", json!({})));
    req.max_attempts = Some(2);
    let (run, _) = rig.engine.enqueue(req).await.unwrap();
    let queues = ["q".to_string()];
    let claim = || rig.engine.claim_queued(Some(&queues), "a", 10, false);

    assert_eq!(claim().await.unwrap()[0].attempt, 1);
    let (requeued, again) = rig.engine.fail_run(&run.id, json!({}), None).await.unwrap();
    assert!(again);
    assert_eq!(requeued.status, RunStatus::Queued);
    assert_eq!(
        requeued.run_at,
        Some(rig.now() + 5_000_000),
        "first backoff is 5 s"
    );

    rig.advance(5_000_000 - 1);
    assert!(
        claim().await.unwrap().is_empty(),
        "not ready before its runAt"
    );
    rig.advance(1);
    assert_eq!(claim().await.unwrap()[0].attempt, 2);
    let (failed, again) = rig
        .engine
        .fail_run(&run.id, json!({}), Some("mine".into()))
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.failure_class.as_deref(), Some("max_retries"));
}
