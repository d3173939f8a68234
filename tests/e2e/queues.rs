//! Queues: enqueue and dedupe, the claim algorithm under contention
//! (disjoint claims, concurrency caps, claim rates), retries with backoff,
//! configuration and statistics, and the wasm seam.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::HashSet;

async fn enqueue(srv: &TestServer, queue: &str, body: Value) -> Value {
    let (s, b) = srv.post(&format!("/queues/{queue}/enqueue"), body).await;
    assert_eq!(s, 200, "enqueue: {b}");
    b
}

async fn claim(srv: &TestServer, body: Value) -> Vec<Value> {
    let (s, b) = srv.post("/queues/claim", body).await;
    assert_eq!(s, 200, "claim: {b}");
    b["runs"].as_array().unwrap().clone()
}

async fn stats(srv: &TestServer, queue: &str) -> Value {
    let (s, b) = srv.get("/queues").await;
    assert_eq!(s, 200);
    b["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == queue)
        .cloned()
        .unwrap_or(Value::Null)
}

backend_tests! {
    async fn enqueue_creates_a_queued_run(srv: TestServer) {
        let before = now_ms();
        let b = enqueue(&srv, "qa", json!({
            "workflowName": "wq", "input": {"n": 1}, "metadata": {"m": true}, "dedupeKey": "k1",
            "priority": 5, "maxAttempts": 3, "deadlineMs": 600_000,
        })).await;
        assert_eq!(b["deduplicated"], false);
        let run = &b["run"];
        assert!(is_id(&run["id"], "run"));
        assert_eq!(run["status"], "queued");
        assert_eq!(run["queue"], "qa");
        assert_eq!(run["workflowName"], "wq");
        assert_eq!(run["input"], json!({"n": 1}));
        assert_eq!(run["metadata"], json!({"m": true}));
        assert_eq!((run["dedupeKey"].as_str(), run["priority"].as_i64(), run["maxAttempts"].as_i64()), (Some("k1"), Some(5), Some(3)));
        assert_eq!(run["attempt"], 0);
        let run_at = ms(&run["runAt"]);
        assert!(run_at >= before - 5 && run_at <= now_ms() + 5, "runAt is now");
        assert_eq!(ms(&run["deadlineAt"]) - ms(&run["createdAt"]), 600_000);
        let events = srv.events(&id(run)).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["type"], "run.enqueued");
        assert_eq!(events[0]["payload"], json!({"queue": "qa", "runAt": run["runAt"]}));

        // Defaults, delayMs, and runAt winning over delayMs.
        let plain = enqueue(&srv, "qa", json!({"workflowName": "wq"})).await["run"].clone();
        assert_eq!((plain["priority"].as_i64(), plain["maxAttempts"].as_i64()), (Some(0), Some(1)));
        assert_eq!((plain["input"].clone(), plain["deadlineAt"].clone(), plain["dedupeKey"].clone()), (json!({}), Value::Null, Value::Null));
        let delayed = enqueue(&srv, "qa", json!({"workflowName": "wq", "delayMs": 3_600_000})).await["run"].clone();
        assert!((ms(&delayed["runAt"]) - ms(&delayed["createdAt"]) - 3_600_000).abs() < 5);
        let at = enqueue(&srv, "qa", json!({"workflowName": "wq", "delayMs": 5, "runAt": "2030-01-02T03:04:05Z"})).await["run"].clone();
        assert_eq!(at["runAt"], "2030-01-02T03:04:05.000Z");
        let negative = enqueue(&srv, "qa", json!({"workflowName": "wq", "priority": -7})).await["run"].clone();
        assert_eq!(negative["priority"], -7);
    }

    async fn enqueue_validates_its_body(srv: TestServer) {
        let bad = [
            json!({}),
            json!({"workflowName": ""}),
            json!({"workflowName": "w", "delayMs": -1}),
            json!({"workflowName": "w", "delayMs": 1.5}),
            json!({"workflowName": "w", "maxAttempts": 0}),
            json!({"workflowName": "w", "deadlineMs": 0}),
            json!({"workflowName": "w", "dedupeKey": ""}),
            json!({"workflowName": "w", "runAt": "2030-01-02T03:04:05+02:00"}),
            json!({"workflowName": "w", "runAt": "2030-02-30T00:00Z"}),
            json!({"workflowName": "w", "priority": 4_000_000_000i64}),
            json!({"workflowName": "w", "delayMs": i64::MAX}),
            json!({"workflowName": "w", "deadlineMs": i64::MAX}),
            json!({"workflowName": "w", "recoveryWebhook": "not-a-url"}),
            json!({"workflowName": "w", "channels": [{"type": "email"}]}),
            json!([]),
        ];
        for body in bad {
            let (s, b) = srv.post("/queues/q/enqueue", body.clone()).await;
            assert_eq!(s, 400, "{body} → {b}");
            assert_eq!(b["error"], "invalid request body", "{b}");
            assert!(!b["issues"].as_array().unwrap().is_empty());
        }
        assert_eq!(stats(&srv, "q").await, Value::Null, "nothing was enqueued");
    }

    async fn dedupe_holds_under_16_concurrent_enqueues(srv: TestServer) {
        let h = srv.handle();
        let results = concurrently(16, |i| {
            let h = h.clone();
            async move { h.post("/queues/dd/enqueue", json!({"workflowName": format!("w{i}"), "dedupeKey": "same"})).await }
        })
        .await;
        let mut ids = HashSet::new();
        let mut fresh = 0;
        for (s, b) in &results {
            assert_eq!(*s, 200, "{b}");
            ids.insert(id(&b["run"]));
            if b["deduplicated"] == false {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "exactly one enqueue inserts");
        assert_eq!(ids.len(), 1, "everyone gets the same run");
        let q = stats(&srv, "dd").await;
        assert_eq!(q["queued"], 1, "{q}");
        // Another queue has its own key space.
        assert_eq!(enqueue(&srv, "dd2", json!({"workflowName": "w", "dedupeKey": "same"})).await["deduplicated"], false);
    }

    async fn terminal_runs_free_the_dedupe_key(srv: TestServer) {
        let first = enqueue(&srv, "fk", json!({"workflowName": "w", "dedupeKey": "k"})).await["run"].clone();
        // Running still holds the key.
        let claimed = claim(&srv, json!({"queues": ["fk"]})).await;
        assert_eq!(id(&claimed[0]), id(&first));
        let again = enqueue(&srv, "fk", json!({"workflowName": "other", "dedupeKey": "k"})).await;
        assert_eq!((again["deduplicated"].as_bool(), id(&again["run"])), (Some(true), id(&first)));
        assert_eq!(again["run"]["workflowName"], "w", "the holder is returned as it is");

        // Completing, failing (no attempts left) and cancelling each free it.
        srv.post(&format!("/runs/{}/complete", id(&first)), json!({})).await;
        let mut holder = id(&first);
        for end in ["fail", "cancel"] {
            let next = enqueue(&srv, "fk", json!({"workflowName": "w", "dedupeKey": "k"})).await;
            assert_eq!(next["deduplicated"], false, "key freed before {end}");
            assert_ne!(id(&next["run"]), holder);
            holder = id(&next["run"]);
            srv.begin_run(&holder, "w").await; // attempt 1 of 1: a fail is final
            let (s, _) = srv.post(&format!("/runs/{holder}/{end}"), json!({})).await;
            assert_eq!(s, 200);
        }
        let last = enqueue(&srv, "fk", json!({"workflowName": "w", "dedupeKey": "k"})).await;
        assert_eq!(last["deduplicated"], false, "freed by cancel");
        assert_ne!(id(&last["run"]), holder);
    }

    async fn concurrent_claimers_get_disjoint_runs(srv: TestServer) {
        let total = 40;
        let mut all = HashSet::new();
        for i in 0..total {
            all.insert(id(&enqueue(&srv, "cc", json!({"workflowName": "w", "input": {"i": i}})).await["run"]));
        }
        let h = srv.handle();
        let claimed = concurrently(8, |i| {
            let h = h.clone();
            async move {
                let mut mine = Vec::new();
                loop {
                    let (s, b) = h.post("/queues/claim", json!({"queues": ["cc"], "limit": 3, "leaseOwner": format!("w{i}")})).await;
                    assert_eq!(s, 200, "{b}");
                    let runs = b["runs"].as_array().unwrap().clone();
                    if runs.is_empty() {
                        return mine;
                    }
                    for r in runs {
                        assert_eq!(r["leaseOwner"], format!("w{i}").as_str());
                        mine.push(id(&r));
                    }
                }
            }
        })
        .await;
        let flat: Vec<String> = claimed.into_iter().flatten().collect();
        let unique: HashSet<String> = flat.iter().cloned().collect();
        assert_eq!(flat.len(), unique.len(), "a run was claimed twice");
        assert_eq!(unique, all, "every run is claimed once");
        for rid in unique.iter().take(5) {
            let d = srv.detail(rid).await;
            assert_eq!(d["run"]["attempt"], 1);
            assert_eq!(count_events(d["events"].as_array().unwrap(), "run.claimed"), 1);
        }
        let q = stats(&srv, "cc").await;
        assert_eq!((q["queued"].as_i64(), q["running"].as_i64()), (Some(0), Some(total)));
    }

    async fn claim_order_limit_and_readiness(srv: TestServer) {
        let low = enqueue(&srv, "co", json!({"workflowName": "w", "priority": 0})).await["run"].clone();
        let high = enqueue(&srv, "co", json!({"workflowName": "w", "priority": 9})).await["run"].clone();
        let low2 = enqueue(&srv, "co", json!({"workflowName": "w", "priority": 0})).await["run"].clone();
        let later = enqueue(&srv, "co", json!({"workflowName": "w", "priority": 99, "delayMs": 3_600_000})).await["run"].clone();
        let other = enqueue(&srv, "co2", json!({"workflowName": "w"})).await["run"].clone();

        let (s, b) = srv.post("/queues/claim", json!({"queues": ["co"], "limit": 2})).await;
        assert_eq!(s, 200);
        let owner = b["leaseOwner"].as_str().unwrap().to_string();
        assert_eq!(owner.len(), 36, "a server-generated UUID owner: {owner}");
        let got: Vec<String> = b["runs"].as_array().unwrap().iter().map(id).collect();
        assert_eq!(got, [id(&high), id(&low)], "priority first, then runAt");
        let r = &b["runs"][0];
        assert_eq!((r["status"].as_str(), r["leaseOwner"].as_str(), r["attempt"].as_i64()), (Some("running"), Some(owner.as_str()), Some(1)));
        assert!(ms(&r["leaseExpiresAt"]) - now_ms() > 55_000);
        let ev = srv.events(&id(&high)).await;
        assert_eq!(ev.last().unwrap()["payload"], json!({"leaseOwner": owner, "queue": "co"}));

        // Queues in the order given; the limit spans the whole call; the
        // delayed run stays invisible.
        let got: Vec<String> = claim(&srv, json!({"queues": ["co2", "co"], "limit": 5})).await.iter().map(id).collect();
        assert_eq!(got, [id(&other), id(&low2)]);
        assert!(claim(&srv, json!({"queues": ["co", "co2", "nothing"]})).await.is_empty());
        assert_eq!(srv.detail(&id(&later)).await["run"]["status"], "queued");

        for bad in [json!({}), json!({"queues": []}), json!({"queues": [""]}), json!({"queues": "co"}), json!({"queues": ["co"], "limit": 0}), json!({"queues": ["co"], "limit": 101})] {
            let (s, b) = srv.post("/queues/claim", bad.clone()).await;
            assert_eq!(s, 400, "{bad} → {b}");
        }
    }

    async fn concurrency_cap_holds_under_contention(srv: TestServer) {
        let (s, b) = srv.put("/queues/capped/config", json!({"concurrency": 3})).await;
        assert_eq!(s, 200, "{b}");
        for _ in 0..20 {
            enqueue(&srv, "capped", json!({"workflowName": "w"})).await;
        }
        let h = srv.handle();
        let got = concurrently(8, |_| {
            let h = h.clone();
            async move { h.post("/queues/claim", json!({"queues": ["capped"], "limit": 5})).await.1["runs"].as_array().unwrap().len() }
        })
        .await;
        assert_eq!(got.iter().sum::<usize>(), 3, "the cap is shared by every claimer: {got:?}");
        let running = claim(&srv, json!({"queues": ["capped"]})).await;
        assert!(running.is_empty(), "still at the cap");
        // Finishing one frees one slot.
        let q = stats(&srv, "capped").await;
        assert_eq!(q["running"], 3);
        let (_, b) = srv.get("/runs").await;
        let one = b["runs"].as_array().unwrap().iter().find(|r| r["status"] == "running").unwrap().clone();
        srv.post(&format!("/runs/{}/complete", id(&one)), json!({})).await;
        assert_eq!(claim(&srv, json!({"queues": ["capped"], "limit": 5})).await.len(), 1);
    }

    async fn claim_rate_holds_under_contention(srv: TestServer) {
        srv.put("/queues/rated/config", json!({"ratePerMinute": 4})).await;
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(id(&enqueue(&srv, "rated", json!({"workflowName": "w"})).await["run"]));
        }
        let h = srv.handle();
        let got = concurrently(8, |_| {
            let h = h.clone();
            async move { h.post("/queues/claim", json!({"queues": ["rated"], "limit": 3})).await.1["runs"].as_array().unwrap().clone() }
        })
        .await;
        let claimed: Vec<String> = got.into_iter().flatten().map(|r| id(&r)).collect();
        assert_eq!(claimed.len(), 4, "4 claims a minute across all claimers");
        // Finishing runs does not reset the window: claims count, not running runs.
        for rid in &claimed {
            srv.post(&format!("/runs/{rid}/complete"), json!({})).await;
        }
        assert!(claim(&srv, json!({"queues": ["rated"], "limit": 3})).await.is_empty());
        // Other queues are unaffected.
        enqueue(&srv, "free", json!({"workflowName": "w"})).await;
        assert_eq!(claim(&srv, json!({"queues": ["rated", "free"], "limit": 3})).await.len(), 1);
    }

    async fn failed_queue_runs_requeue_with_backoff_then_max_retries(srv: TestServer) {
        let run = enqueue(&srv, "retry", json!({"workflowName": "w", "maxAttempts": 2})).await["run"].clone();
        let rid = id(&run);
        assert_eq!(claim(&srv, json!({"queues": ["retry"]})).await.len(), 1);
        let before = now_ms();
        let (s, b) = srv.post(&format!("/runs/{rid}/fail"), json!({"error": {"message": "first"}, "failureClass": "custom"})).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["requeued"], true);
        let r = &b["run"];
        assert_eq!((r["status"].as_str(), r["attempt"].as_i64()), (Some("queued"), Some(1)));
        assert_eq!((r["leaseOwner"].clone(), r["failureClass"].clone()), (Value::Null, Value::Null));
        assert_eq!(r["error"], json!({"message": "first"}));
        let delay = ms(&r["runAt"]) - before;
        assert!((4_900..=5_500).contains(&delay), "first retry waits 5 s, got {delay} ms");
        let ev = srv.events(&rid).await;
        let requeued = ev.last().unwrap();
        assert_eq!(requeued["type"], "run.requeued");
        assert_eq!(requeued["payload"]["attempt"], 1);
        assert_eq!(requeued["payload"]["maxAttempts"], 2);
        assert_eq!(requeued["payload"]["nextRunAt"], r["runAt"]);
        assert!(claim(&srv, json!({"queues": ["retry"]})).await.is_empty(), "not ready before runAt");

        // Begin works on a queued run (the push-mode path); the last
        // attempt's failure is final with max_retries.
        let (s, _) = srv.begin_run(&rid, "w2").await;
        assert_eq!(s, 200);
        let (_, b) = srv.post(&format!("/runs/{rid}/fail"), json!({"error": {"message": "second"}, "failureClass": "custom"})).await;
        assert_eq!(b["requeued"], false);
        assert_eq!((b["run"]["status"].as_str(), b["run"]["failureClass"].as_str()), (Some("failed"), Some("max_retries")));
        assert_eq!(b["run"]["completedAt"], Value::Null);
        let last = srv.events(&rid).await.last().unwrap().clone();
        assert_eq!(last["payload"], json!({"error": {"message": "second"}, "failureClass": "max_retries"}));

        // maxAttempts 1: the client's class stands. (A queue run that was
        // never claimed has attempt 0 < 1 and is requeued, as in v0.5.)
        let one = id(&enqueue(&srv, "retry1", json!({"workflowName": "w"})).await["run"]);
        let (_, b) = srv.post(&format!("/runs/{one}/fail"), json!({"failureClass": "custom"})).await;
        assert_eq!(b["requeued"], true);
        srv.begin_run(&one, "w").await;
        let (_, b) = srv.post(&format!("/runs/{one}/fail"), json!({"failureClass": "custom"})).await;
        assert_eq!((b["requeued"].as_bool(), b["run"]["failureClass"].as_str()), (Some(false), Some("custom")));
    }

    async fn queue_config_upserts_and_null_clears(srv: TestServer) {
        let (s, b) = srv.put("/queues/cfg/config", json!({"concurrency": 2, "ratePerMinute": 10})).await;
        assert_eq!(s, 200);
        assert_eq!(b, json!({"config": {"name": "cfg", "concurrency": 2, "ratePerMinute": 10, "invokeUrl": null}}));
        let (_, b) = srv.put("/queues/cfg/config", json!({"concurrency": 3})).await;
        assert_eq!(b["config"], json!({"name": "cfg", "concurrency": 3, "ratePerMinute": 10, "invokeUrl": null}), "omitted fields keep");
        let (_, b) = srv.put("/queues/cfg/config", json!({"invokeUrl": "http://127.0.0.1:9/x"})).await;
        assert_eq!(b["config"]["invokeUrl"], "http://127.0.0.1:9/x");
        let (_, b) = srv.put("/queues/cfg/config", json!({"ratePerMinute": null, "invokeUrl": null})).await;
        assert_eq!(b["config"], json!({"name": "cfg", "concurrency": 3, "ratePerMinute": null, "invokeUrl": null}), "null clears (our deviation)");
        let (_, b) = srv.put("/queues/empty/config", json!({})).await;
        assert_eq!(b["config"], json!({"name": "empty", "concurrency": null, "ratePerMinute": null, "invokeUrl": null}));
        for bad in [json!({"concurrency": 0}), json!({"ratePerMinute": 1.5}), json!({"invokeUrl": "nope"}), json!({"concurrency": "2"}), json!(null)] {
            let (s, b) = srv.put("/queues/cfg/config", bad.clone()).await;
            assert_eq!(s, 400, "{bad} → {b}");
        }

        // Stats: queues with runs (counts by status), then configured queues without runs.
        enqueue(&srv, "cfg", json!({"workflowName": "w"})).await;
        let done = id(&enqueue(&srv, "stats", json!({"workflowName": "w"})).await["run"]);
        srv.post(&format!("/runs/{done}/complete"), json!({})).await;
        let c = id(&enqueue(&srv, "stats", json!({"workflowName": "w"})).await["run"]);
        srv.post(&format!("/runs/{c}/cancel"), json!({})).await;
        let f = id(&enqueue(&srv, "stats", json!({"workflowName": "w"})).await["run"]);
        srv.begin_run(&f, "w").await;
        srv.post(&format!("/runs/{f}/fail"), json!({})).await;
        enqueue(&srv, "stats", json!({"workflowName": "w"})).await;
        claim(&srv, json!({"queues": ["stats"]})).await;
        enqueue(&srv, "stats", json!({"workflowName": "w"})).await;
        let (_, b) = srv.get("/queues").await;
        let queues = b["queues"].as_array().unwrap();
        let names: Vec<&str> = queues.iter().map(|q| q["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["cfg", "stats", "empty"], "{b}");
        assert_eq!(queues[1], json!({"name": "stats", "queued": 1, "running": 1, "failed": 1, "completed": 1, "cancelled": 1, "config": null}));
        assert_eq!(queues[0]["config"]["concurrency"], 3);
        assert_eq!(queues[2], json!({"name": "empty", "queued": 0, "running": 0, "failed": 0, "completed": 0, "cancelled": 0, "config": {"name": "empty", "concurrency": null, "ratePerMinute": null, "invokeUrl": null}}));
    }

    async fn external_claims_never_see_wasm_runs(srv: TestServer) {
        pin_to_component(&srv, "wasm-wf").await;
        let wasm = id(&enqueue(&srv, "mixed", json!({"workflowName": "wasm-wf", "priority": 10})).await["run"]);
        let plain = id(&enqueue(&srv, "mixed", json!({"workflowName": "plain"})).await["run"]);
        let got: Vec<String> = claim(&srv, json!({"queues": ["mixed"], "limit": 10})).await.iter().map(id).collect();
        assert_eq!(got, std::slice::from_ref(&plain), "external claim returns only external runs");
        assert!(claim(&srv, json!({"queues": ["mixed"], "limit": 10})).await.is_empty());

        // The host's worker claims them through the same algorithm (and caps).
        srv.put("/queues/mixed/config", json!({"concurrency": 1})).await;
        let none = srv.engine.claim_queued(None, "host", 10, true).await.unwrap();
        assert!(none.is_empty(), "the cap counts the external run too");
        srv.post(&format!("/runs/{plain}/complete"), json!({})).await;
        let got = srv.engine.claim_queued(None, "host", 10, true).await.unwrap();
        assert_eq!(got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), std::slice::from_ref(&wasm));
        assert_eq!(got[0].lease_owner.as_deref(), Some("host"));
        let d = srv.detail(&wasm).await;
        assert_eq!((d["run"]["status"].as_str(), d["run"]["attempt"].as_i64()), (Some("running"), Some(1)));
        assert_eq!(d["events"].as_array().unwrap().last().unwrap()["type"], "run.claimed");
    }

    async fn cancelled_queued_runs_are_never_claimed(srv: TestServer) {
        let rid = id(&enqueue(&srv, "cq", json!({"workflowName": "w", "dedupeKey": "k"})).await["run"]);
        let (s, b) = srv.post(&format!("/runs/{rid}/cancel"), json!({"reason": "nope", "actor": "ops"})).await;
        assert_eq!(s, 200);
        assert_eq!((b["run"]["status"].as_str(), b["run"]["cancelReason"].as_str()), (Some("cancelled"), Some("nope")));
        assert!(claim(&srv, json!({"queues": ["cq"]})).await.is_empty());
        let (s, _) = srv.begin_run(&rid, "w").await;
        assert_eq!(s, 409);
    }
}
