//! Gate resolution: exactly once, only with the gate's token, and (for runs
//! the host executes) not after the gate's timeout, from its deadline on.

use crate::rig::{Rig, conflict};
use serde_json::{Value, json};
use tidebase_engine::model::{Gate, TIMED_OUT};
use tidebase_engine::{Decision, EngineError, GateBegin, GateResolve};

fn gate(name: &str, timeout_ms: Option<i64>) -> GateBegin {
    GateBegin {
        name: name.into(),
        prompt: "ship it?".into(),
        data: Value::Null,
        channels: json!([]),
        capability: Value::Null,
        timeout_ms,
    }
}

fn resolve(gate: &Gate, decision: &str) -> GateResolve {
    GateResolve {
        token: gate.resolve_token.clone(),
        decision: decision.into(),
        actor: Some("alice".into()),
        payload: json!({}),
    }
}

#[tokio::test]
async fn a_gate_resolves_once_and_replays_its_decision() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", None))
        .await
        .unwrap();
    assert!(pending.is_pending());
    assert_eq!(pending.resolve_token.len(), 32);

    let approved = rig
        .engine
        .resolve_gate(&run.id, &pending.id, resolve(&pending, "approved"))
        .await
        .unwrap();
    assert_eq!(approved.decision.as_deref(), Some("approved"));
    assert_eq!(approved.resolved_at, Some(rig.now()));

    let second = rig
        .engine
        .resolve_gate(&run.id, &pending.id, resolve(&pending, "rejected"))
        .await;
    conflict(second);
    let operator = Decision {
        decision: "rejected".into(),
        actor: Some("ops".into()),
        payload: json!({}),
    };
    let by_operator = rig
        .engine
        .resolve_gate_as_operator(&run.id, "ship", operator)
        .await;
    assert_eq!(
        conflict(by_operator).to_string(),
        "gate ship is already approved"
    );

    // A resumed workflow beginning the gate again gets the decision back.
    let replayed = rig
        .engine
        .begin_gate(&run.id, gate("ship", None))
        .await
        .unwrap();
    assert_eq!(
        (replayed.id, replayed.status.as_str()),
        (pending.id, "approved")
    );
    assert_eq!(replayed.actor.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_leaves_the_gate_pending() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", None))
        .await
        .unwrap();
    let mut forged = resolve(&pending, "approved");
    forged.token = "0".repeat(32);
    conflict(rig.engine.resolve_gate(&run.id, &pending.id, forged).await);
    let (stored, _) = rig.engine.get_gate(&run.id, &pending.id).await.unwrap();
    assert!(stored.is_pending());
}

#[tokio::test]
async fn of_concurrent_resolutions_exactly_one_wins() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", None))
        .await
        .unwrap();
    let decisions = ["approved", "rejected", "canceled", "approved", "rejected"];
    let results = futures::future::join_all(decisions.iter().map(|d| {
        rig.engine
            .resolve_gate(&run.id, &pending.id, resolve(&pending, d))
    }))
    .await;
    let winners: Vec<Gate> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(winners.len(), 1);
    let (stored, _) = rig.engine.get_gate(&run.id, &pending.id).await.unwrap();
    assert_eq!(stored.decision, winners[0].decision);
    let resolved = rig.events(&run.id).await;
    assert_eq!(resolved.iter().filter(|k| *k == "gate.resolved").count(), 1);
}

#[tokio::test]
async fn a_hosted_gate_resolves_until_just_before_its_deadline() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", Some(1_000)))
        .await
        .unwrap();
    rig.set(pending.created_at + 1_000_000 - 1);
    let approved = rig
        .engine
        .resolve_gate(&run.id, &pending.id, resolve(&pending, "approved"))
        .await
        .unwrap();
    assert_eq!(approved.status, "approved");
}

#[tokio::test]
async fn a_hosted_gate_times_out_at_its_deadline() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", Some(1_000)))
        .await
        .unwrap();
    rig.set(pending.created_at + 1_000_000);
    conflict(
        rig.engine
            .resolve_gate(&run.id, &pending.id, resolve(&pending, "approved"))
            .await,
    );
    // The refusal recorded the timeout: the gate is decided, once.
    let (stored, _) = rig.engine.get_gate(&run.id, &pending.id).await.unwrap();
    assert_eq!(stored.status, TIMED_OUT);
    assert_eq!(stored.resolved_at, Some(rig.now()));
    let by_operator = rig
        .engine
        .resolve_gate_as_operator(
            &run.id,
            "ship",
            Decision {
                decision: "approved".into(),
                actor: None,
                payload: json!({}),
            },
        )
        .await;
    assert_eq!(conflict(by_operator).to_string(), "gate ship timed out");
    let resolved = rig.events(&run.id).await;
    assert_eq!(resolved.iter().filter(|k| *k == "gate.resolved").count(), 1);
}

#[tokio::test]
async fn beginning_a_hosted_gate_past_its_deadline_records_the_timeout() {
    let rig = Rig::new().await;
    let run = rig.hosted_run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", Some(1_000)))
        .await
        .unwrap();
    rig.set(pending.created_at + 1_000_000 - 1);
    assert!(
        rig.engine
            .begin_gate(&run.id, gate("ship", Some(1_000)))
            .await
            .unwrap()
            .is_pending()
    );
    rig.advance(1);
    let timed_out = rig
        .engine
        .begin_gate(&run.id, gate("ship", Some(1_000)))
        .await
        .unwrap();
    assert_eq!(timed_out.decision.as_deref(), Some(TIMED_OUT));
}

#[tokio::test]
async fn a_gate_of_an_sdk_driven_run_has_no_server_side_timeout() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    let pending = rig
        .engine
        .begin_gate(&run.id, gate("ship", Some(1_000)))
        .await
        .unwrap();
    rig.advance(3_600_000_000);
    let approved = rig
        .engine
        .resolve_gate(&run.id, &pending.id, resolve(&pending, "approved"))
        .await
        .unwrap();
    assert_eq!(approved.status, "approved");
}

#[tokio::test]
async fn a_cancelled_run_refuses_new_gates() {
    let rig = Rig::new().await;
    let run = rig.run().await;
    rig.engine.cancel_run(&run.id, None, None).await.unwrap();
    let refused = rig.engine.begin_gate(&run.id, gate("ship", None)).await;
    assert!(
        refused.as_ref().is_err_and(EngineError::is_cancelled),
        "{refused:?}"
    );
}
