//! Lease boundaries. The one rule (`model::lease`): a lease holds while
//! `now < expires_at`. Every procedure that reads a lease, in Rust or in
//! SQL, is checked one microsecond before its expiry, at it, and one after.

use crate::rig::{LEASE, Rig, T0, conflict, leased_by};
use serde_json::json;
use tidebase_engine::clock::Micros;
use tidebase_engine::model::RunStatus;
use tidebase_engine::{Enqueue, NewRun, StepAction};

/// Offsets from a lease's expiry, and whether the lease still holds there.
const AROUND_EXPIRY: [(Micros, bool); 3] = [(-1, true), (0, false), (1, false)];

#[tokio::test]
async fn a_run_lease_refuses_another_owner_until_its_expiry() {
    for (offset, live) in AROUND_EXPIRY {
        let rig = Rig::new().await;
        let run = rig.run().await;
        let (leased, _) = rig
            .engine
            .begin_run(&run.id, Some("a".into()))
            .await
            .unwrap();
        assert_eq!(leased.lease_expires_at, Some(T0 + LEASE));
        rig.set(T0 + LEASE + offset);
        let other = rig.engine.begin_run(&run.id, Some("b".into())).await;
        if live {
            assert_eq!(leased_by(conflict(other)), "a", "offset {offset}");
        } else {
            let (taken, _) = other.unwrap();
            assert_eq!(taken.lease_owner.as_deref(), Some("b"), "offset {offset}");
            assert_eq!(taken.attempt, 2);
        }
    }
}

#[tokio::test]
async fn a_step_lease_locks_out_another_owner_until_its_expiry() {
    for (offset, live) in AROUND_EXPIRY {
        let rig = Rig::new().await;
        let run = rig.run().await;
        let step = rig.execute(&run.id, "fetch", "a").await;
        assert_eq!(step.lease_expires_at, Some(T0 + LEASE));
        rig.set(T0 + LEASE + offset);
        match (rig.step_begin(&run.id, "fetch", "h", "b").await, live) {
            (StepAction::Locked { .. }, true) => {}
            (StepAction::Execute { step, .. }, false) => assert_eq!(step.attempt, 2),
            (other, _) => panic!("offset {offset}: got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_wasm_run_is_claimable_again_from_its_lease_expiry() {
    for (offset, live) in AROUND_EXPIRY {
        let rig = Rig::new().await;
        let run = rig.hosted_run().await;
        let claimed = rig.engine.claim_wasm_runs("a", 10, None).await.unwrap();
        assert_eq!(claimed[0].run.lease_expires_at, Some(T0 + LEASE));
        rig.set(T0 + LEASE + offset);
        let taken = rig.engine.claim_wasm_runs("b", 10, None).await.unwrap();
        assert_eq!(taken.is_empty(), live, "offset {offset}");
        let holder = rig.engine.get_run(&run.id).await.unwrap().lease_owner;
        assert_eq!(holder.as_deref(), Some(if live { "a" } else { "b" }));
    }
}

#[tokio::test]
async fn the_reconciler_requeues_a_queue_run_from_its_lease_expiry() {
    for (offset, live) in AROUND_EXPIRY {
        let rig = Rig::new().await;
        let mut req = Enqueue::new("q", NewRun::named("wf", json!({})));
        req.max_attempts = Some(2);
        let (run, _) = rig.engine.enqueue(req).await.unwrap();
        let claimed = rig
            .engine
            .claim_queued(Some(&["q".to_string()]), "a", 1, false)
            .await
            .unwrap();
        assert_eq!(claimed[0].lease_expires_at, Some(T0 + LEASE));
        rig.set(T0 + LEASE + offset);
        let report = rig.engine.reconcile_once().await.unwrap();
        assert_eq!(report.requeued, usize::from(!live), "offset {offset}");
        let status = rig.engine.get_run(&run.id).await.unwrap().status;
        let expected = if live {
            RunStatus::Running
        } else {
            RunStatus::Queued
        };
        assert_eq!(status, expected, "offset {offset}");
    }
}

#[tokio::test]
async fn a_heartbeat_extends_the_lease_by_one_full_term_from_now() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine
        .begin_run(&run.id, Some("a".into()))
        .await
        .unwrap();
    rig.set(T0 + LEASE - 1);
    let beat = rig.engine.heartbeat(&run.id, "a").await.unwrap();
    assert_eq!(beat.lease_expires_at, Some(T0 + 2 * LEASE - 1));
    rig.set(T0 + LEASE);
    let other = rig.engine.begin_run(&run.id, Some("b".into())).await;
    assert_eq!(
        leased_by(conflict(other)),
        "a",
        "the old expiry no longer counts"
    );
}
