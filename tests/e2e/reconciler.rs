//! The reconciler, one tick at a time (`Engine::reconcile_once`): expired
//! leases, deadlines, the stalled-run nudge and push dispatch. A tick
//! returns once the webhook calls it made are recorded.

use crate::harness::*;
use crate::webhooks::{Receiver, signature};
use serde_json::{Value, json};
use std::time::Duration;

/// Comfortably past the 200 ms leases used here.
const PAST_EXPIRY: Duration = Duration::from_millis(600);

async fn enqueue(srv: &TestServer, queue: &str, body: Value) -> String {
    let (s, b) = srv.post(&format!("/queues/{queue}/enqueue"), body).await;
    assert_eq!(s, 200, "enqueue: {b}");
    id(&b["run"])
}

const SECRET: &str = "invoke-secret";

backend_tests! {
    async fn expired_queue_leases_requeue_then_fail_with_max_retries(srv: TestServer = Opts::lease_ms(200)) {
        let hook = Receiver::ok().await;
        let rid = enqueue(&srv, "lq", json!({"workflowName": "w", "maxAttempts": 2, "channels": [{"type": "webhook", "url": hook.url}], "recoveryWebhook": hook.url})).await;
        let (_, b) = srv.post("/queues/claim", json!({"queues": ["lq"], "leaseOwner": "w1"})).await;
        assert_eq!(b["runs"].as_array().unwrap().len(), 1);
        // Nothing to do while the lease is live.
        let report = srv.engine.reconcile_once().await.unwrap();
        assert_eq!((report.requeued, report.failed), (0, 0));

        tokio::time::sleep(PAST_EXPIRY).await;
        let before = now_ms();
        let report = srv.engine.reconcile_once().await.unwrap();
        assert_eq!(report.requeued, 1, "{report:?}");
        let d = srv.detail(&rid).await;
        let run = &d["run"];
        assert_eq!((run["status"].as_str(), run["leaseOwner"].clone(), run["leaseExpiresAt"].clone()), (Some("queued"), Value::Null, Value::Null));
        assert_eq!(run["attempt"], 1);
        let delay = ms(&run["runAt"]) - before;
        assert!((4_500..=5_600).contains(&delay), "backoff(1) = 5 s, got {delay} ms");
        let last = d["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["type"], "run.requeued");
        assert_eq!(last["payload"], json!({"reason": "lease_expired", "attempt": 1, "maxAttempts": 2}));
        // A second tick leaves the requeued run alone.
        assert_eq!(srv.engine.reconcile_once().await.unwrap().requeued, 0);

        // Second attempt (begun directly), lease expires: no attempts left.
        srv.begin_run(&rid, "w2").await;
        tokio::time::sleep(PAST_EXPIRY).await;
        let report = srv.engine.reconcile_once().await.unwrap();
        assert_eq!(report.failed, 1, "{report:?}");
        let d = srv.detail(&rid).await;
        let run = &d["run"];
        assert_eq!((run["status"].as_str(), run["failureClass"].as_str()), (Some("failed"), Some("max_retries")));
        assert_eq!(run["error"], json!({"message": "lease expired with no attempts remaining"}));
        assert_eq!(run["completedAt"], Value::Null);
        let last = d["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["payload"], json!({"failureClass": "max_retries", "reason": "lease_expired"}));
        assert_gap_free(d["events"].as_array().unwrap());
        // No channel delivery and no recovery webhook for reconciler failures.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hook.hits().is_empty(), "{:?}", hook.hits());
        assert_eq!(d["channelDeliveries"], json!([]));
        assert_eq!(d["recoveryAttempts"], json!([]));

        // maxAttempts 1 fails straight away, also with max_retries.
        let one = enqueue(&srv, "lq1", json!({"workflowName": "w"})).await;
        srv.post("/queues/claim", json!({"queues": ["lq1"]})).await;
        tokio::time::sleep(PAST_EXPIRY).await;
        srv.engine.reconcile_once().await.unwrap();
        assert_eq!(srv.detail(&one).await["run"]["failureClass"], "max_retries");
    }

    async fn stalled_runs_get_a_throttled_lease_expired_nudge(srv: TestServer = Opts::lease_ms(200)) {
        let hook = Receiver::ok().await;
        let (_, b) = srv.post("/runs/stall", json!({"recoveryWebhook": hook.url})).await;
        let rid = id(&b["run"]);
        srv.begin_run(&rid, "w").await;
        let quiet = srv.running_run("no-hook", "w").await;
        tokio::time::sleep(PAST_EXPIRY).await;

        let e = srv.engine.clone();
        let reports = concurrently(4, |_| {
            let e = e.clone();
            async move { e.reconcile_sweeps().await.unwrap() }
        })
        .await;
        assert_eq!(reports.iter().map(|r| r.recovered).sum::<usize>(), 1, "one nudge across concurrent ticks: {reports:?}");
        let hits = hook.hits();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].json(), json!({"type": "run.resume", "runId": rid, "workflowName": "stall", "reason": "lease_expired", "attempt": 1}));
        let d = srv.detail(&rid).await;
        assert_eq!(d["recoveryAttempts"][0]["status"], "delivered");
        assert_eq!(d["recoveryAttempts"].as_array().unwrap().len(), 1);
        assert_eq!(d["run"]["status"], "running", "the run itself is not modified");

        // Throttled: no second attempt within a minute.
        assert_eq!(srv.engine.reconcile_once().await.unwrap().recovered, 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hook.hits().len(), 1);
        assert_eq!(srv.detail(&quiet).await["run"]["status"], "running", "no webhook: nothing happens");
    }

    async fn deadlines_cancel_with_reason_deadline(srv: TestServer) {
        let hook = Receiver::ok().await;
        let channels = json!([{"type": "webhook", "url": hook.url}]);
        let queued = enqueue(&srv, "dq", json!({"workflowName": "w", "deadlineMs": 1, "channels": channels})).await;
        let running = enqueue(&srv, "dq", json!({"workflowName": "w", "deadlineMs": 1})).await;
        srv.begin_run(&running, "w").await;
        let done = enqueue(&srv, "dq", json!({"workflowName": "w", "deadlineMs": 1})).await;
        srv.post(&format!("/runs/{done}/complete"), json!({})).await;
        let later = enqueue(&srv, "dq", json!({"workflowName": "w", "deadlineMs": 3_600_000})).await;
        tokio::time::sleep(Duration::from_millis(50)).await;

        let report = srv.engine.reconcile_once().await.unwrap();
        assert_eq!(report.cancelled_by_deadline, 2, "{report:?}");
        for rid in [&queued, &running] {
            let d = srv.detail(rid).await;
            let run = &d["run"];
            assert_eq!(run["status"], "cancelled");
            assert_eq!(run["cancelReason"], "deadline");
            assert_eq!(run["cancelActor"], "reconciler", "our deviation: recorded on the run");
            assert_eq!((run["leaseOwner"].clone(), run["leaseExpiresAt"].clone()), (Value::Null, Value::Null));
            assert!(is_timestamp(&run["completedAt"]) && run["cancelledAt"] == run["completedAt"] && run["cancelRequestedAt"] == run["completedAt"]);
            let last = d["events"].as_array().unwrap().last().unwrap().clone();
            assert_eq!((last["type"].clone(), last["payload"].clone()), (json!("run.cancelled"), json!({"reason": "deadline", "actor": "reconciler"})));
        }
        assert_eq!(srv.detail(&done).await["run"]["status"], "completed");
        assert_eq!(srv.detail(&later).await["run"]["status"], "queued");
        // Deadline cancellations reach no channel.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hook.hits().is_empty());
        assert_eq!(srv.detail(&queued).await["channelDeliveries"], json!([]));
        assert_eq!(srv.engine.reconcile_once().await.unwrap().cancelled_by_deadline, 0);
    }

    async fn push_dispatch_signs_records_and_never_double_dispatches(srv: TestServer = Opts { webhook_secret: Some(SECRET.into()), ..Opts::default() }) {
        let app = Receiver::ok().await;
        let (s, _) = srv.put("/queues/push/config", json!({"invokeUrl": app.url})).await;
        assert_eq!(s, 200);
        let mut ids = Vec::new();
        for p in 0..3 {
            ids.push(enqueue(&srv, "push", json!({"workflowName": "pw", "priority": p})).await);
        }
        let delayed = enqueue(&srv, "push", json!({"workflowName": "pw", "delayMs": 3_600_000})).await;
        pin_to_component(&srv, "wasm-pw").await;
        let wasm = enqueue(&srv, "push", json!({"workflowName": "wasm-pw"})).await;
        let before: Vec<Value> = {
            let mut v = Vec::new();
            for rid in &ids {
                v.push(srv.detail(rid).await["run"].clone());
            }
            v
        };

        // Concurrent unguarded sweeps: each ready run is dispatched once.
        let e = srv.engine.clone();
        let reports = concurrently(4, |_| {
            let e = e.clone();
            async move { e.reconcile_sweeps().await.unwrap() }
        })
        .await;
        assert_eq!(reports.iter().map(|r| r.invoked).sum::<usize>(), 3, "{reports:?}");
        let hits = app.hits();
        assert_eq!(hits.len(), 3, "no double dispatch");
        let mut seen: Vec<String> = Vec::new();
        for hit in &hits {
            assert_eq!(hit.header("x-tidebase-signature"), Some(signature(SECRET, &hit.body).as_str()), "HMAC over the raw body");
            assert_eq!(hit.header("user-agent"), Some("tidebase-recovery/0.5.0"));
            let body = hit.json();
            assert_eq!((body["type"].as_str(), body["reason"].as_str(), body["workflowName"].as_str(), body["attempt"].as_i64()), (Some("run.invoke"), Some("queue_dispatch"), Some("pw"), Some(0)));
            seen.push(body["runId"].as_str().unwrap().to_string());
        }
        seen.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(seen, expected, "the delayed and the wasm run are not dispatched");

        for (rid, old) in ids.iter().zip(&before) {
            let d = srv.detail(rid).await;
            assert_eq!(d["recoveryAttempts"][0]["status"], "delivered");
            let run = &d["run"];
            assert_eq!(run["status"], "queued", "dispatch does not claim");
            assert_eq!(run["updatedAt"], old["updatedAt"], "the runAt bump leaves updatedAt alone");
            let horizon = ms(&run["runAt"]) - now_ms();
            assert!((55_000..=60_500).contains(&horizon), "redelivery horizon ≈ 60 s, got {horizon}");
            let attempts = d["recoveryAttempts"].as_array().unwrap();
            assert_eq!(attempts.len(), 1);
            assert_eq!((attempts[0]["reason"].as_str(), attempts[0]["webhookUrl"].as_str()), (Some("queue_dispatch"), Some(app.url.as_str())));
            let kinds: Vec<&str> = d["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(kinds, ["run.enqueued", "recovery.started", "recovery.delivered"]);
        }
        for rid in [&delayed, &wasm] {
            assert_eq!(srv.detail(rid).await["recoveryAttempts"], json!([]));
        }

        // Within the horizon nothing is redelivered.
        assert_eq!(srv.engine.reconcile_once().await.unwrap().invoked, 0);
        // A handler that begins the run takes it out of dispatch; a
        // concurrency cap limits dispatch too.
        srv.begin_run(&ids[0], "handler").await;
        srv.put("/queues/push/config", json!({"concurrency": 1})).await;
        let fresh = enqueue(&srv, "push", json!({"workflowName": "pw"})).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().invoked, 0, "the running handler fills the cap");
        srv.post(&format!("/runs/{}/complete", ids[0]), json!({})).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().invoked, 1);
        let hit = app.hits().pop().unwrap();
        assert_eq!(hit.json()["runId"], fresh.as_str());
    }

    async fn failed_invoke_calls_are_recorded(srv: TestServer) {
        srv.put("/queues/dead/config", json!({"invokeUrl": "http://127.0.0.1:1/nobody"})).await;
        let rid = enqueue(&srv, "dead", json!({"workflowName": "w"})).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().invoked, 1);
        let d = srv.detail(&rid).await;
        assert_eq!(d["recoveryAttempts"][0]["status"], "failed");
        let a = &d["recoveryAttempts"][0];
        assert!(a["errorText"].as_str().unwrap().starts_with("fetch failed"), "{a}");
        assert_eq!(d["events"].as_array().unwrap().last().unwrap()["type"], "recovery.failed");
        assert_eq!(d["run"]["status"], "queued");
    }

    async fn stale_pending_deliveries_are_sent_oldest_first_per_run(srv: TestServer) {
        let hook = Receiver::ok().await;
        let rid = srv.running_run("stale", "w").await;
        // Two deliveries recorded a minute ago by a process that stopped
        // before sending them.
        let long_ago = srv.engine.now() - 60_000_000;
        let mut tx = srv.engine.store().write().await.unwrap();
        for (i, kind) in ["state.updated", "usage.recorded"].into_iter().enumerate() {
            let d = tidebase_host::model::Delivery {
                id: format!("del_stale{i}"),
                run_id: Some(rid.clone()),
                channel_id: None,
                gate_id: None,
                event_type: kind.into(),
                url: hook.url.clone(),
                secret: None,
                payload: json!({"n": i}),
                created_at: long_ago + i as i64,
            };
            tx.insert_delivery(&d).await.unwrap();
        }
        tx.commit().await.unwrap();

        // One per run and tick, in order, final when the tick returns.
        for (tick, sent) in [(1, "del_stale0"), (2, "del_stale1")] {
            assert_eq!(srv.engine.reconcile_once().await.unwrap().redelivered, 1, "tick {tick}");
            let hits = hook.hits();
            assert_eq!((hits.len(), hits[tick - 1].json()["deliveryId"].as_str()), (tick, Some(sent)));
            let rows = srv.detail(&rid).await["channelDeliveries"].clone();
            let row = rows.as_array().unwrap().iter().find(|r| r["id"] == sent).unwrap().clone();
            assert_eq!((row["status"].as_str(), row["httpStatus"].as_i64()), (Some("delivered"), Some(200)), "{row}");
        }
        assert_eq!(srv.engine.reconcile_once().await.unwrap().redelivered, 0);
        assert_eq!(hook.hits().len(), 2, "nothing is sent twice");
    }
}
