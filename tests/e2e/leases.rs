//! Leases: expired step and run leases can be taken over, and the old step
//! owner is fenced out. Sleeping is used only to let a 200 ms lease lapse,
//! with a wide margin.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

/// Comfortably longer than the 200 ms leases below.
const PAST_EXPIRY: Duration = Duration::from_millis(1_000);

backend_tests!(
    expired_step_lease_is_taken_over_and_old_owner_fenced = Opts::lease_ms(200),
    step_taken_over_through_another_replica_is_fenced_on_the_first = Opts::lease_ms(200),
    run_lease_conflicts_then_expires
);

async fn expired_step_lease_is_taken_over_and_old_owner_fenced(srv: TestServer) {
    let run = srv.running_run("takeover", "a").await;
    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "a"}),
        )
        .await;
    assert_eq!(b["action"], "execute", "{b}");
    assert_eq!(b["step"]["attempt"], 1);
    let step_id = b["step"]["id"].as_str().unwrap().to_string();

    tokio::time::sleep(PAST_EXPIRY).await;

    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "b"}),
        )
        .await;
    assert_eq!(b["action"], "execute", "expired lease is taken over: {b}");
    assert_eq!(b["leaseOwner"], "b");
    assert_eq!(b["step"]["id"], step_id.as_str());
    assert_eq!(b["step"]["attempt"], 2);
    assert_eq!(b["step"]["leaseOwner"], "b");

    // The old owner is fenced out of both complete and fail.
    let fenced = json!({"error": "step not found or lease lost"});
    let (s, e) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/complete"),
            json!({"leaseOwner": "a", "output": "a"}),
        )
        .await;
    assert_eq!((s, e), (409, fenced.clone()));
    let (s, e) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/fail"),
            json!({"leaseOwner": "a", "error": "a"}),
        )
        .await;
    assert_eq!((s, e), (409, fenced.clone()));
    // Wrong step id or wrong run id: same refusal.
    let (s, _) = srv
        .post(
            &format!("/runs/{run}/steps/step_00000000000000000000000000000000/complete"),
            json!({"leaseOwner": "b"}),
        )
        .await;
    assert_eq!(s, 409);
    let other = srv.create_run("other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = srv
        .post(
            &format!("/runs/{other}/steps/{step_id}/complete"),
            json!({"leaseOwner": "b"}),
        )
        .await;
    assert_eq!(s, 409);

    let (s, c) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/complete"),
            json!({"leaseOwner": "b", "output": "b"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["step"]["output"], "b");
    assert_eq!(c["step"]["attempt"], 2);

    let d = srv.detail(&run).await;
    let events = d["events"].as_array().unwrap();
    assert_gap_free(events);
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "step.started")
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(started[1]["payload"]["attempt"], 2);
    assert_eq!(count_events(events, "step.completed"), 1);
    assert_eq!(
        count_events(events, "step.failed"),
        0,
        "fenced writes wrote nothing"
    );
    assert_eq!(d["steps"][0]["output"], "b");
}

/// A server remembers the steps it began so that completing one need not
/// read it back. After another replica took the step over, that memory is
/// stale: the first server must still refuse the old owner and accept the
/// new one, with one `step.completed`.
async fn step_taken_over_through_another_replica_is_fenced_on_the_first(srv: TestServer) {
    let run = srv.running_run("replica-takeover", "a").await;
    let begin = |owner: &str| json!({"name": "s", "inputHash": "h", "leaseOwner": owner});
    let b = srv.step_begin(&run, begin("a")).await;
    assert_eq!(b["action"], "execute", "{b}");
    let step_id = b["step"]["id"].as_str().unwrap().to_string();

    tokio::time::sleep(PAST_EXPIRY).await;
    let dir = tempfile::tempdir().unwrap();
    let other = crate::serve::Serve::start(&srv, dir.path(), &[("TIDEBASE_LEASE_MS", "200")]).await;
    let b = other
        .post(&format!("/runs/{run}/steps/begin"), begin("b"))
        .await;
    assert_eq!(
        b["action"], "execute",
        "taken over on the other replica: {b}"
    );
    assert_eq!(b["step"]["attempt"], 2);

    let complete = format!("/runs/{run}/steps/{step_id}/complete");
    let (s, e) = srv
        .post(&complete, json!({"leaseOwner": "a", "output": "a"}))
        .await;
    assert_eq!(
        s, 409,
        "the zombie is fenced on the server that began it: {e}"
    );
    let (s, c) = srv
        .post(&complete, json!({"leaseOwner": "b", "output": "b"}))
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["step"]["attempt"], 2);

    let d = srv.detail(&run).await;
    let events = d["events"].as_array().unwrap();
    assert_gap_free(events);
    assert_eq!(count_events(events, "step.completed"), 1);
    assert_eq!(d["steps"][0]["output"], "b");
}

async fn run_lease_conflicts_then_expires(srv: TestServer) {
    // Live lease (60 s): another owner is refused, the holder may re-begin.
    let id = srv.create_run("leased").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = srv.begin_run(&id, "a").await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv.begin_run(&id, "b").await;
    assert_eq!(
        (s, b),
        (409, json!({"error": "run is leased", "leaseOwner": "a"}))
    );
    let (s, b) = srv.begin_run(&id, "a").await;
    assert_eq!(s, 200, "same owner re-begins: {b}");
    assert_eq!(b["run"]["attempt"], 2);
    let events = srv.events(&id).await;
    assert_eq!(
        count_events(&events, "run.started"),
        2,
        "the refused begin wrote nothing"
    );

    // Expired lease (200 ms server): anyone may take over.
    let short = TestServer::start_with(srv.backend, Opts::lease_ms(200)).await;
    let id = short.create_run("expiring").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = short.begin_run(&id, "a").await;
    assert_eq!(s, 200, "{b}");
    tokio::time::sleep(PAST_EXPIRY).await;
    let (s, b) = short.begin_run(&id, "b").await;
    assert_eq!(s, 200, "expired run lease is taken over: {b}");
    assert_eq!(b["leaseOwner"], "b");
    assert_eq!(b["run"]["leaseOwner"], "b");
    assert_eq!(b["run"]["attempt"], 2);
    assert_eq!(b["run"]["status"], "running");
    let events = short.events(&id).await;
    let owners: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "run.started")
        .map(|e| e["payload"]["leaseOwner"].clone())
        .collect();
    assert_eq!(owners, vec![json!("a"), json!("b")]);
}
