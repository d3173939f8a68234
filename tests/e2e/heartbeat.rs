//! `POST /runs/:id/heartbeat` (v0.6, `sessions.md` §1): renews only the run
//! lease of its owner, fenced by owner and status, and nothing else; the
//! lease interplay table §1.1 with short leases. Sleeping only lets a lease
//! lapse, with wide margins.

use crate::harness::*;
use crate::webhooks::Receiver;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

backend_tests!(
    heartbeat_renews_only_the_run_lease,
    heartbeat_refusals_name_the_problem,
    heartbeat_follows_the_lease_interplay_table = Opts::lease_ms(1_000)
);

async fn heartbeat(srv: &TestServer, run: &str, owner: Value) -> (u16, Value) {
    srv.post(
        &format!("/runs/{run}/heartbeat"),
        json!({"leaseOwner": owner}),
    )
    .await
}

/// Sleep until the wire timestamp `t` is comfortably in the past.
async fn sleep_past(t: &Value) {
    let wait = ms(t) - now_ms() + 300;
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

fn lease_lost(run: &Value, code: &str) -> Value {
    json!({"error": "lease lost", "code": code, "run": run})
}

async fn heartbeat_renews_only_the_run_lease(srv: TestServer) {
    let run = srv.running_run("hb", "w1").await;
    let step = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    let before = srv.detail(&run).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (s, b) = heartbeat(&srv, &run, json!("w1")).await;
    assert_eq!(s, 200, "{b}");
    let renewed = &b["run"];
    assert_eq!(renewed["id"], run.as_str());
    assert_eq!(renewed["status"], "running");
    assert_eq!(renewed["leaseOwner"], "w1");
    assert!(
        ms(&renewed["leaseExpiresAt"]) > ms(&before["run"]["leaseExpiresAt"]),
        "expiry pushed out: {renewed}"
    );
    assert!(ms(&renewed["updatedAt"]) > ms(&before["run"]["updatedAt"]));

    let after = srv.detail(&run).await;
    assert_eq!(after["run"], *renewed, "the response is the stored run");
    // Only the run lease moved: no attempt, no event, no step lease change.
    for unchanged in ["attempt", "createdAt", "runAt", "status", "completedAt"] {
        assert_eq!(
            after["run"][unchanged], before["run"][unchanged],
            "{unchanged}"
        );
    }
    assert_eq!(after["events"], before["events"], "no event of any kind");
    assert_eq!(after["steps"], before["steps"]);
    assert_eq!(
        after["steps"][0]["leaseExpiresAt"],
        step["step"]["leaseExpiresAt"]
    );
    assert_eq!(after["channelDeliveries"], json!([]));

    // A non-string owner is compared by its text form.
    let num = id(&srv.create_run("hb-num").await);
    assert_eq!(srv.begin_run(&num, "123").await.0, 200);
    assert_eq!(heartbeat(&srv, &num, json!(123)).await.0, 200);
    assert_eq!(heartbeat(&srv, &num, json!("123")).await.0, 200);
    assert_eq!(heartbeat(&srv, &num, json!(124)).await.0, 409);
}

async fn heartbeat_refusals_name_the_problem(srv: TestServer) {
    let run = srv.running_run("hb-refused", "w1").await;
    let path = format!("/runs/{run}/heartbeat");
    let before = srv.detail(&run).await;

    // Any falsy leaseOwner is missing.
    for body in [
        json!({}),
        json!({"leaseOwner": null}),
        json!({"leaseOwner": ""}),
        json!({"leaseOwner": 0}),
        json!({"leaseOwner": false}),
        json!([]),
        json!("w1"),
    ] {
        let (s, b) = srv.post(&path, body.clone()).await;
        assert_eq!(
            (s, b),
            (400, json!({"error": "leaseOwner is required"})),
            "{body}"
        );
    }
    // Missing or malformed JSON: a 400 naming the problem (v0.6 answered 500).
    for raw in ["", "not json", "{\"leaseOwner\":", "null"] {
        let r = srv.raw(Method::POST, &path, raw).await;
        assert_eq!(r.status, 400, "{raw:?}: {}", r.text);
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("request body"), "{raw:?}: {error}");
    }
    let (s, b) = srv
        .post(
            "/runs/run_00000000000000000000000000000000/heartbeat",
            json!({"leaseOwner": "w1"}),
        )
        .await;
    assert_eq!((s, b), (404, json!({"error": "run not found"})));

    // Wrong owner.
    let (s, b) = heartbeat(&srv, &run, json!("w2")).await;
    assert_eq!((s, &b), (409, &lease_lost(&before["run"], "lease_lost")));
    assert_eq!(srv.detail(&run).await, before, "refusals write nothing");

    // Not running: pending, completed.
    let pending = id(&srv.create_run("hb-pending").await);
    let (s, b) = heartbeat(&srv, &pending, json!("w1")).await;
    assert_eq!((s, b["code"].as_str()), (409, Some("lease_lost")));
    assert_eq!(b["run"]["status"], "pending");
    let (_, done) = srv
        .post(&format!("/runs/{run}/complete"), json!({"result": 1}))
        .await;
    let (s, b) = heartbeat(&srv, &run, json!("w1")).await;
    assert_eq!((s, b), (409, lease_lost(&done["run"], "lease_lost")));

    // Cancelled: its own code (the SDKs raise their "run cancelled" error).
    let cancelled = srv.running_run("hb-cancel", "w1").await;
    let (_, c) = srv
        .post(&format!("/runs/{cancelled}/cancel"), json!({}))
        .await;
    let (s, b) = heartbeat(&srv, &cancelled, json!("w1")).await;
    assert_eq!((s, b), (409, lease_lost(&c["run"], "run_cancelled")));
}

async fn heartbeat_follows_the_lease_interplay_table(srv: TestServer) {
    // Live lease, same owner: pushed out, and it keeps others away.
    let live = srv.running_run("hb-live", "w1").await;
    let (s, b) = heartbeat(&srv, &live, json!("w1")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv.begin_run(&live, "w2").await;
    assert_eq!((s, b["error"].as_str()), (409, Some("run is leased")));

    // Expired, nobody took over (a plain run): revived.
    let plain = srv.running_run("hb-plain", "w1").await;
    sleep_past(&srv.detail(&plain).await["run"]["leaseExpiresAt"]).await;
    let (s, b) = heartbeat(&srv, &plain, json!("w1")).await;
    assert_eq!(s, 200, "a lapsed lease is revived: {b}");
    assert!(ms(&b["run"]["leaseExpiresAt"]) > now_ms());
    let (s, _) = srv.begin_run(&plain, "w2").await;
    assert_eq!(s, 409, "the revived lease is live again");

    // Expired and taken over: the old owner is fenced, the new one renews.
    let taken = srv.running_run("hb-taken", "w1").await;
    sleep_past(&srv.detail(&taken).await["run"]["leaseExpiresAt"]).await;
    let (s, _) = srv.begin_run(&taken, "w2").await;
    assert_eq!(s, 200);
    let (s, b) = heartbeat(&srv, &taken, json!("w1")).await;
    assert_eq!(
        (s, b["code"].as_str(), b["run"]["leaseOwner"].as_str()),
        (409, Some("lease_lost"), Some("w2"))
    );
    assert_eq!(heartbeat(&srv, &taken, json!("w2")).await.0, 200);

    // A webhook run the reconciler only notified: still revivable.
    let hook = Receiver::ok().await;
    let (_, b) = srv
        .post("/runs/hb-hook", json!({"recoveryWebhook": hook.url}))
        .await;
    let hooked = id(&b["run"]);
    let (_, b) = srv.begin_run(&hooked, "w1").await;
    sleep_past(&b["run"]["leaseExpiresAt"]).await;
    assert_eq!(srv.engine.reconcile_once().await.unwrap().recovered, 1);
    assert_eq!(hook.hits().len(), 1);
    let (s, b) = heartbeat(&srv, &hooked, json!("w1")).await;
    assert_eq!(s, 200, "{b}");

    // A queue run kept alive by heartbeats is not requeued; once they stop
    // and the lease lapses, the reconciler requeues it and the old owner is
    // fenced.
    let (_, b) = srv
        .post(
            "/queues/hbq/enqueue",
            json!({"workflowName": "w", "maxAttempts": 2}),
        )
        .await;
    let queued = id(&b["run"]);
    let (_, b) = srv
        .post(
            "/queues/claim",
            json!({"queues": ["hbq"], "leaseOwner": "w1"}),
        )
        .await;
    let claimed_expiry = b["runs"][0]["leaseExpiresAt"].clone();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (s, b) = heartbeat(&srv, &queued, json!("w1")).await;
    assert_eq!(s, 200, "{b}");
    let renewed_expiry = b["run"]["leaseExpiresAt"].clone();
    sleep_past(&claimed_expiry).await;
    if now_ms() < ms(&renewed_expiry) {
        let report = srv.engine.reconcile_once().await.unwrap();
        assert_eq!(
            report.requeued, 0,
            "a renewed lease is not expired: {report:?}"
        );
    }
    sleep_past(&renewed_expiry).await;
    assert_eq!(srv.engine.reconcile_once().await.unwrap().requeued, 1);
    let (s, b) = heartbeat(&srv, &queued, json!("w1")).await;
    assert_eq!(
        (s, b["code"].as_str(), b["run"]["status"].as_str()),
        (409, Some("lease_lost"), Some("queued"))
    );

    // Failed by the reconciler (no attempts left): fenced too.
    let (_, b) = srv
        .post("/queues/hbq1/enqueue", json!({"workflowName": "w"}))
        .await;
    let last = id(&b["run"]);
    let (_, b) = srv
        .post(
            "/queues/claim",
            json!({"queues": ["hbq1"], "leaseOwner": "w1"}),
        )
        .await;
    sleep_past(&b["runs"][0]["leaseExpiresAt"]).await;
    assert_eq!(srv.engine.reconcile_once().await.unwrap().failed, 1);
    let (s, b) = heartbeat(&srv, &last, json!("w1")).await;
    assert_eq!(
        (s, b["code"].as_str(), b["run"]["status"].as_str()),
        (409, Some("lease_lost"), Some("failed"))
    );
}
