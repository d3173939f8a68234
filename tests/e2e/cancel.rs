//! Cancellation is one-way and idempotent; completed runs cannot be cancelled.

use crate::harness::*;
use serde_json::json;

backend_tests!(cancellation_is_one_way_and_idempotent, cancel_edge_cases);

async fn cancellation_is_one_way_and_idempotent(srv: TestServer) {
    let run = srv.running_run("doomed", "w1").await;
    let b = srv
        .step_begin(
            &run,
            json!({"name": "inflight", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    assert_eq!(b["action"], "execute");
    let inflight = b["step"]["id"].as_str().unwrap().to_string();

    let (s, b) = srv
        .post(
            &format!("/runs/{run}/cancel"),
            json!({"reason": "user asked", "actor": "alice"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let cancelled = b["run"].clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancelReason"], "user asked");
    assert_eq!(cancelled["cancelActor"], "alice");
    assert!(
        cancelled["leaseOwner"].is_null() && cancelled["leaseExpiresAt"].is_null(),
        "lease cleared"
    );
    assert!(is_timestamp(&cancelled["cancelledAt"]));
    assert!(is_timestamp(&cancelled["cancelRequestedAt"]));
    assert_eq!(
        cancelled["completedAt"], cancelled["cancelledAt"],
        "one transaction clock"
    );
    assert_eq!(cancelled["updatedAt"], cancelled["cancelledAt"]);
    let events = srv.events(&run).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run.cancelled");
    assert_eq!(
        last["payload"],
        json!({"reason": "user asked", "actor": "alice"})
    );
    let before = srv.detail(&run).await;

    // Cancel again: 200, the original reason and actor stand.
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/cancel"),
            json!({"reason": "again", "actor": "bob"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["run"], cancelled);

    // Complete and fail are silently refused.
    let (s, b) = srv
        .post(&format!("/runs/{run}/complete"), json!({"result": 1}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["run"], cancelled);
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/fail"),
            json!({"error": {"message": "x"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["run"], cancelled);
    assert_eq!(b["requeued"], false);

    // Workers observe it at their next boundary.
    for name in ["inflight", "fresh"] {
        let b = srv
            .step_begin(
                &run,
                json!({"name": name, "inputHash": "h", "leaseOwner": "w1"}),
            )
            .await;
        assert_eq!(b, json!({"action": "cancelled"}), "step {name}");
    }
    let (s, b) = srv.begin_run(&run, "w1").await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"], "run is cancelled");
    assert_eq!(b["code"], "run_cancelled");
    assert_eq!(b["run"], cancelled);
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "p"}),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            409,
            json!({"error": "run is cancelled", "code": "run_cancelled"})
        )
    );

    assert_eq!(
        srv.detail(&run).await,
        before,
        "nothing written after the cancel"
    );

    // A step already executing is not interrupted: its checkpoint still lands.
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/steps/{inflight}/complete"),
            json!({"leaseOwner": "w1", "output": 1}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        srv.detail(&run).await["run"],
        cancelled,
        "run stays cancelled"
    );
}

async fn cancel_edge_cases(srv: TestServer) {
    // No body at all is an empty cancel request.
    let pending = srv.create_run("pending").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = srv
        .raw(
            reqwest::Method::POST,
            &format!("/runs/{pending}/cancel"),
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["run"]["status"], "cancelled");
    assert!(r.json()["run"]["cancelReason"].is_null());

    // Failed runs can be cancelled.
    let failed = srv.running_run("failing", "w").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{failed}/fail"),
            json!({"error": {"message": "boom"}}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["run"]["status"], "failed");
    let (s, b) = srv.post(&format!("/runs/{failed}/cancel"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(b["run"]["status"], "cancelled");

    // Completed runs cannot.
    let done = srv.running_run("done", "w").await;
    let (s, _) = srv
        .post(&format!("/runs/{done}/complete"), json!({"result": "ok"}))
        .await;
    assert_eq!(s, 200);
    let before = srv.detail(&done).await;
    let (s, b) = srv
        .post(
            &format!("/runs/{done}/cancel"),
            json!({"reason": "too late"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"], "run already completed");
    assert_eq!(b["run"], before["run"]);
    assert_eq!(srv.detail(&done).await, before);
}
