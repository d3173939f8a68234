//! Schedules: definition and validation over HTTP, and firing through
//! reconciler ticks — exactly once per fire time, even with concurrent ticks.

use crate::harness::*;
use serde_json::{Value, json};

/// Make a schedule due now by moving its `nextRunAt` into the past (the
/// cron's next real fire time is up to a minute away).
async fn make_due(srv: &TestServer, name: &str, at_micros: i64) {
    let mut s = srv.engine.get_schedule(name).await.expect("schedule");
    s.next_run_at = Some(at_micros);
    let mut tx = srv.engine.store().write().await.unwrap();
    tx.put_schedule(&s).await.unwrap();
    tx.commit().await.unwrap();
}

async fn runs_of_queue(srv: &TestServer, queue: &str) -> Vec<Value> {
    let (_, b) = srv.get("/runs").await;
    b["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["queue"] == queue)
        .cloned()
        .collect()
}

fn past_minute() -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    now - now % 60_000_000 - 60_000_000
}

backend_tests! {
    async fn schedules_are_defined_replaced_listed_and_deleted(srv: TestServer) {
        let (s, b) = srv.put("/schedules/daily", json!({"cron": "*/5 * * * *", "workflowName": "digest", "input": {"a": 1}, "queue": "sq", "maxAttempts": 2})).await;
        assert_eq!(s, 200, "{b}");
        let first = b["schedule"].clone();
        assert_eq!(first["name"], "daily");
        assert_eq!(first["cron"], "*/5 * * * *");
        assert_eq!((first["workflowName"].clone(), first["input"].clone(), first["queue"].clone()), (json!("digest"), json!({"a": 1}), json!("sq")));
        assert_eq!((first["maxAttempts"].as_i64(), first["enabled"].as_bool()), (Some(2), Some(true)));
        assert_eq!(first["lastEnqueuedAt"], Value::Null);
        let next = ms(&first["nextRunAt"]);
        let now = chrono::Utc::now().timestamp_millis();
        assert!(next > now && next - now <= 5 * 60_000 + 1_000 && next % 300_000 == 0, "next fire on a 5-minute mark: {first}");

        // Replacing resets omitted fields; createdAt survives; nextRunAt is
        // computed even when disabled.
        let (_, b) = srv.put("/schedules/daily", json!({"cron": "0 9 * * *", "workflowName": "digest2", "enabled": false})).await;
        let second = b["schedule"].clone();
        assert_eq!((second["input"].clone(), second["queue"].clone(), second["maxAttempts"].clone(), second["enabled"].clone()), (json!({}), json!("default"), json!(1), json!(false)));
        assert_eq!(second["createdAt"], first["createdAt"]);
        assert_eq!(chrono::DateTime::parse_from_rfc3339(second["nextRunAt"].as_str().unwrap()).unwrap().format("%H:%M:%S").to_string(), "09:00:00");

        srv.put("/schedules/a-first", json!({"cron": "* * * * *", "workflowName": "w"})).await;
        let (s, b) = srv.get("/schedules").await;
        assert_eq!(s, 200);
        let names: Vec<&str> = b["schedules"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a-first", "daily"]);
        let (s, b) = srv.get("/schedules/daily").await;
        assert_eq!((s, b["schedule"].clone()), (200, second));

        let (s, b) = srv.call(reqwest::Method::DELETE, "/schedules/daily", None).await;
        assert_eq!((s, b), (200, json!({"deleted": "daily"})));
        let (s, b) = srv.call(reqwest::Method::DELETE, "/schedules/daily", None).await;
        assert_eq!((s, b), (404, json!({"error": "schedule not found"})));
        let (s, _) = srv.get("/schedules/daily").await;
        assert_eq!(s, 404);
    }

    async fn invalid_cron_is_a_400_naming_the_problem(srv: TestServer) {
        let cases = [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "minute field: 60 is out of range 0-59"),
            ("*/0 * * * *", "step must be at least 1"),
            ("* * * JAN *", "not a plain number"),
            ("0 0 30 2 *", "never fires"),
        ];
        for (cron, want) in cases {
            let (s, b) = srv.put("/schedules/bad", json!({"cron": cron, "workflowName": "w"})).await;
            assert_eq!(s, 400, "{cron}: {b}");
            let msg = b["error"].as_str().unwrap();
            assert!(msg.contains(want) && msg.contains(cron), "{cron}: {msg}");
        }
        for body in [json!({"workflowName": "w"}), json!({"cron": "", "workflowName": "w"}), json!({"cron": "* * * * *"}), json!({"cron": "* * * * *", "workflowName": "w", "maxAttempts": 0}), json!({"cron": "* * * * *", "workflowName": "w", "enabled": "yes"})] {
            let (s, b) = srv.put("/schedules/bad", body.clone()).await;
            assert_eq!((s, b["error"].as_str()), (400, Some("invalid request body")), "{body}");
        }
        let (_, b) = srv.get("/schedules").await;
        assert_eq!(b["schedules"], json!([]));
    }

    async fn a_due_schedule_fires_exactly_once_across_concurrent_ticks(srv: TestServer) {
        srv.put("/schedules/every", json!({"cron": "* * * * *", "workflowName": "tick-wf", "input": {"x": 1}, "queue": "sched-q", "maxAttempts": 3})).await;
        let fire_at = past_minute();
        make_due(&srv, "every", fire_at).await;

        let e = srv.engine.clone();
        let reports = concurrently(4, |_| {
            let e = e.clone();
            async move { e.reconcile_once().await.expect("tick") }
        })
        .await;
        assert_eq!(reports.iter().map(|r| r.scheduled).sum::<usize>(), 1, "{reports:?}");
        let runs = runs_of_queue(&srv, "sched-q").await;
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        let fire_time = tidebase_host::clock::iso(fire_at);
        assert_eq!(run["status"], "queued");
        assert_eq!((run["workflowName"].clone(), run["input"].clone(), run["maxAttempts"].clone()), (json!("tick-wf"), json!({"x": 1}), json!(3)));
        assert_eq!(run["dedupeKey"], format!("sched:every:{fire_time}").as_str());
        assert_eq!(run["metadata"], json!({"schedule": "every", "fireTime": fire_time}));
        assert_eq!((run["priority"].clone(), run["deadlineAt"].clone()), (json!(0), Value::Null));
        assert_eq!(srv.events(run["id"].as_str().unwrap()).await, Vec::<Value>::new(), "schedule runs get no events");

        let (_, b) = srv.get("/schedules/every").await;
        let s = &b["schedule"];
        let now = chrono::Utc::now().timestamp_millis();
        assert!(ms(&s["nextRunAt"]) > now - 1_000 && ms(&s["nextRunAt"]) <= now + 60_000, "advanced: {s}");
        assert!(is_timestamp(&s["lastEnqueuedAt"]));

        // The sweeps are safe on their own, without the tick lock.
        make_due(&srv, "every", fire_at - 60_000_000).await;
        let reports = concurrently(4, |_| {
            let e = e.clone();
            async move { e.reconcile_sweeps().await.expect("sweeps") }
        })
        .await;
        assert_eq!(reports.iter().map(|r| r.scheduled).sum::<usize>(), 1, "{reports:?}");
        assert_eq!(runs_of_queue(&srv, "sched-q").await.len(), 2);
    }

    async fn a_fire_time_whose_run_is_active_is_not_enqueued_again(srv: TestServer) {
        srv.put("/schedules/dup", json!({"cron": "* * * * *", "workflowName": "w", "queue": "dup-q"})).await;
        let fire_at = past_minute();
        make_due(&srv, "dup", fire_at).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().scheduled, 1);
        let last = srv.engine.get_schedule("dup").await.unwrap().last_enqueued_at;
        // Same fire time again while its run is still queued: the dedupe key
        // holds; the schedule still advances and records the attempt.
        make_due(&srv, "dup", fire_at).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().scheduled, 0);
        assert_eq!(runs_of_queue(&srv, "dup-q").await.len(), 1);
        let s = srv.engine.get_schedule("dup").await.unwrap();
        assert!(s.last_enqueued_at > last && s.next_run_at > Some(fire_at));
    }

    async fn disabled_schedules_do_not_fire(srv: TestServer) {
        srv.put("/schedules/off", json!({"cron": "* * * * *", "workflowName": "w", "queue": "off-q", "enabled": false})).await;
        make_due(&srv, "off", past_minute()).await;
        assert_eq!(srv.engine.reconcile_once().await.unwrap().scheduled, 0);
        assert!(runs_of_queue(&srv, "off-q").await.is_empty());
    }
}
