//! Claiming wasm runs (`Engine::claim_wasm_runs`, one statement on
//! Postgres): claimers racing for the same runs never share one, and each
//! claim's event takes its run's next seq, `run.started` with a new attempt
//! or `run.resumed` with the same one.

use crate::harness::{TestServer, assert_gap_free, concurrently};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tidebase_host::engine::{ComponentCheck, DeployLimits, Engine, HostCall, NewRun};

/// Accepts any bytes: these runs are claimed, never executed.
struct AnyBytes;

#[async_trait::async_trait]
impl ComponentCheck for AnyBytes {
    async fn check(&self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// The server's engine able to deploy, and `n` new runs of a deployed
/// workflow (no worker claims them).
pub(crate) async fn deployed_runs(srv: &TestServer, n: usize) -> (Engine, Vec<String>) {
    let engine = srv.engine.clone().with_component_check(Arc::new(AnyBytes));
    engine
        .deploy("claimed", b"component", DeployLimits::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let run = engine.create_run(NewRun::named("claimed", json!({})));
        ids.push(run.await.unwrap().id);
    }
    (engine, ids)
}

pub(crate) fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// Six claimers take 60 runs a few at a time, all at once: every run goes
/// to exactly one of them, which holds its lease, and its events are
/// `run.created` then one `run.started`, gap-free.
async fn racing_claimers_never_share_a_run(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 60).await;
    let taken = concurrently(6, |i| {
        let engine = engine.clone();
        async move {
            let owner = format!("claimer-{i}");
            let mut mine = Vec::new();
            loop {
                let runs = engine.claim_wasm_runs(&owner, 3, None).await.unwrap();
                if runs.is_empty() {
                    return mine;
                }
                for c in runs {
                    assert_eq!(c.run.lease_owner.as_deref(), Some(owner.as_str()));
                    assert!(!c.recorded, "a new run has nothing recorded");
                    mine.push((c.run.id, owner.clone()));
                }
            }
        }
    })
    .await;
    let mut holder = HashMap::new();
    for (id, owner) in taken.into_iter().flatten() {
        assert!(
            holder.insert(id.clone(), owner).is_none(),
            "{id} claimed twice"
        );
    }
    assert_eq!(holder.len(), ids.len(), "every run claimed");
    assert!(
        engine
            .claim_wasm_runs("late", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    for id in &ids {
        let d = srv.detail(id).await;
        assert_eq!(d["run"]["leaseOwner"].as_str(), Some(holder[id].as_str()));
        assert_eq!(
            (&d["run"]["status"], &d["run"]["attempt"]),
            (&json!("running"), &json!(1))
        );
        let events = d["events"].as_array().unwrap();
        assert_eq!(types(events), ["run.created", "run.started"]);
        assert_eq!(events[1]["payload"], json!({"leaseOwner": holder[id]}));
        assert_gap_free(events);
    }
}

/// A parked run woken is resumed in its attempt; a run whose lease was
/// released is started again in a new one.
async fn a_woken_run_resumes_and_a_released_one_starts_again(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 1).await;
    let id = &ids[0];
    engine.claim_wasm_runs("a", 1, None).await.unwrap();
    engine.park(id, "a", engine.now(), &[]).await.unwrap();
    let resumed = engine.claim_wasm_runs("b", 1, None).await.unwrap();
    assert_eq!(
        (resumed[0].run.attempt, resumed[0].run.parked_until),
        (1, None),
        "a resume continues the attempt"
    );
    engine.release_lease(id).await.unwrap();
    let started = engine.claim_wasm_runs("c", 1, None).await.unwrap();
    assert_eq!(started[0].run.attempt, 2);
    let d = srv.detail(id).await;
    assert_eq!(d["run"]["attempt"], 2);
    let events = d["events"].as_array().unwrap();
    assert_eq!(
        types(events),
        ["run.created", "run.started", "run.resumed", "run.started"]
    );
    assert_gap_free(events);
}

/// A claim says a run has something recorded as soon as it has a step or
/// an outside-step call: its activation must read them, not start blank.
async fn a_claim_sees_recorded_steps_and_calls(srv: TestServer) {
    let (engine, ids) = deployed_runs(&srv, 2).await;
    let (stepped, called) = (&ids[0], &ids[1]);
    let body = json!({"name": "s", "inputHash": "h", "leaseOwner": "http"});
    let (status, b) = srv
        .post(&format!("/runs/{stepped}/steps/begin"), body)
        .await;
    assert_eq!(status, 200, "{b}");
    let claimed = engine.claim_wasm_runs("a", 2, None).await.unwrap();
    let recorded = |id: &str| claimed.iter().find(|c| c.run.id == id).unwrap().recorded;
    assert!(recorded(stepped));
    assert!(!recorded(called));

    let mut act = engine.activation(called, "a").await.unwrap();
    let log = HostCall::Log {
        level: "info".into(),
        message: "once".into(),
    };
    act.call(log).await.unwrap();
    engine.release_lease(called).await.unwrap();
    let again = engine.claim_wasm_runs("b", 1, Some(called)).await.unwrap();
    assert!(again[0].recorded);
}

backend_tests!(
    racing_claimers_never_share_a_run,
    a_woken_run_resumes_and_a_released_one_starts_again,
    a_claim_sees_recorded_steps_and_calls,
);
