//! Step checkpoints: replay of completed steps, drift detection, the
//! one-executor guarantee for concurrent first begins, and failure
//! classification.

use crate::harness::*;
use serde_json::{Value, json};

fn step_of<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in detail"))
}

backend_tests!(
    completed_steps_replay_and_never_reexecute,
    input_drift_is_reported_before_completion,
    concurrent_first_begins_have_exactly_one_executor,
    step_failure_is_classified_and_reexecutable
);

async fn completed_steps_replay_and_never_reexecute(srv: TestServer) {
    let run = srv.running_run("replay", "w1").await;
    let begin = json!({"name": "s1", "inputHash": "h1", "input": {"x": 1}, "leaseOwner": "w1"});
    let b = srv.step_begin(&run, begin.clone()).await;
    assert_eq!(b["action"], "execute", "{b}");
    assert_eq!(b["leaseOwner"], "w1");
    let step = &b["step"];
    assert!(is_id(&step["id"], "step"));
    assert_eq!(step["attempt"], 1);
    assert_eq!(step["status"], "running");
    let step_id = step["id"].as_str().unwrap().to_string();

    let (s, c) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/complete"),
            json!({"leaseOwner": "w1", "output": {"o": 1}}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["step"]["status"], "completed");
    assert_eq!(c["step"]["output"], json!({"o": 1}));
    assert!(c["step"]["leaseOwner"].is_null());

    let before = srv.detail(&run).await;
    let events = before["events"].as_array().unwrap();
    assert_eq!(count_events(events, "step.started"), 1);
    assert_eq!(count_events(events, "step.completed"), 1);

    // Replays, by the same owner, another owner, or no owner at all.
    for owner in [json!("w1"), json!("w2"), Value::Null] {
        let mut req = begin.clone();
        req["leaseOwner"] = owner.clone();
        if owner.is_null() {
            req.as_object_mut().unwrap().remove("leaseOwner");
        }
        let b = srv.step_begin(&run, req).await;
        assert_eq!(b["action"], "return", "{b}");
        assert_eq!(b["output"], json!({"o": 1}));
        assert_eq!(b["step"]["id"], step_id.as_str());
        assert_eq!(
            b["step"]["attempt"], 1,
            "replay does not count as an attempt"
        );
        assert_eq!(b["step"]["status"], "completed");
    }
    // Replay writes nothing at all.
    assert_eq!(srv.detail(&run).await, before, "replay changed the run");

    // A completed step cannot be completed again (its lease is gone).
    let (s, e) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/complete"),
            json!({"leaseOwner": "w1", "output": 2}),
        )
        .await;
    assert_eq!(
        (s, e),
        (409, json!({"error": "step not found or lease lost"}))
    );
    assert_eq!(srv.detail(&run).await, before);
}

async fn input_drift_is_reported_before_completion(srv: TestServer) {
    let run = srv.running_run("drift", "w1").await;
    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h1", "leaseOwner": "w1"}),
        )
        .await;
    assert_eq!(b["action"], "execute");
    let step_id = b["step"]["id"].as_str().unwrap().to_string();
    let before = srv.detail(&run).await;

    // Running step, different hash: mismatch (even for the lease holder).
    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h2", "leaseOwner": "w1"}),
        )
        .await;
    assert_eq!(b["action"], "input_mismatch", "{b}");
    assert_eq!(b["expectedInputHash"], "h1");
    assert_eq!(b["actualInputHash"], "h2");
    assert_eq!(b["step"]["attempt"], 1);
    assert_eq!(srv.detail(&run).await, before, "mismatch writes nothing");

    let (s, _) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/complete"),
            json!({"leaseOwner": "w1", "output": "out"}),
        )
        .await;
    assert_eq!(s, 200);
    let before = srv.detail(&run).await;

    // Completed step, different hash: still a mismatch, not a replay.
    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h3", "leaseOwner": "w9"}),
        )
        .await;
    assert_eq!(b["action"], "input_mismatch", "{b}");
    assert_eq!(b["expectedInputHash"], "h1");
    assert_eq!(b["actualInputHash"], "h3");
    assert!(
        b.get("output").is_none(),
        "a mismatch does not hand out the output"
    );
    assert_eq!(b["step"]["status"], "completed");
    assert_eq!(srv.detail(&run).await, before, "mismatch writes nothing");

    // The right hash still replays.
    let b = srv
        .step_begin(&run, json!({"name": "s", "inputHash": "h1"}))
        .await;
    assert_eq!(b["action"], "return");
    assert_eq!(b["output"], "out");
}

async fn concurrent_first_begins_have_exactly_one_executor(srv: TestServer) {
    let run = srv.running_run("race", "w0").await;
    let h = srv.handle();
    let path = format!("/runs/{run}/steps/begin");
    let results = concurrently(16, |i| {
        let (h, path) = (h.clone(), path.clone());
        async move {
            let body =
                json!({"name": "contended", "inputHash": "h", "leaseOwner": format!("owner-{i}")});
            h.post(&path, body).await
        }
    })
    .await;
    for (s, b) in &results {
        assert_eq!(*s, 200, "{b}");
    }
    let executes: Vec<&Value> = results
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b["action"] == "execute")
        .collect();
    let locked: Vec<&Value> = results
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b["action"] == "locked")
        .collect();
    assert_eq!(executes.len(), 1, "exactly one execute: {results:?}");
    assert_eq!(locked.len(), 15, "all others locked: {results:?}");
    let winner = executes[0]["leaseOwner"].as_str().unwrap();
    let step_id = &executes[0]["step"]["id"];
    for l in &locked {
        assert_eq!(&l["step"]["id"], step_id, "one step row");
        assert_eq!(
            l["step"]["leaseOwner"], winner,
            "locked answers name the winner"
        );
    }
    let d = srv.detail(&run).await;
    assert_eq!(d["steps"].as_array().unwrap().len(), 1);
    assert_eq!(step_of(&d, "contended")["attempt"], 1);
    assert_eq!(
        count_events(d["events"].as_array().unwrap(), "step.started"),
        1
    );
    assert_gap_free(d["events"].as_array().unwrap());
}

async fn step_failure_is_classified_and_reexecutable(srv: TestServer) {
    let run = srv.running_run("classify", "w1").await;
    // (step name, options, extra fail fields, expected decision, expected status, expected replay)
    let cases: Vec<(&str, Value, Value, &str, &str, &str)> = vec![
        (
            "no-effects",
            json!({}),
            json!({}),
            "safe_replay",
            "failed",
            "auto",
        ),
        (
            "unkeyed",
            json!({"sideEffects": ["email.send"]}),
            json!({}),
            "manual_review",
            "manual_review",
            "manual",
        ),
        (
            "keyed",
            json!({"sideEffects": ["payments:charge"], "idempotencyKey": "k1"}),
            json!({}),
            "safe_replay",
            "failed",
            "auto",
        ),
        (
            "read-only",
            json!({"sideEffects": ["read"]}),
            json!({}),
            "safe_replay",
            "failed",
            "auto",
        ),
        (
            "never",
            json!({"sideEffects": ["db.write"], "replay": "never"}),
            json!({}),
            "fail_hard",
            "failed",
            "never",
        ),
        (
            "retryable",
            json!({"sideEffects": ["email.send"]}),
            json!({"retryable": true}),
            "auto_retry",
            "failed_retryable",
            "manual",
        ),
        (
            "explicit-auto-retry",
            json!({}),
            json!({"resumeDecision": "auto_retry"}),
            "auto_retry",
            "failed_retryable",
            "auto",
        ),
        (
            "explicit-review",
            json!({}),
            json!({"resumeDecision": "manual_review"}),
            "manual_review",
            "manual_review",
            "auto",
        ),
        (
            "legacy-effect",
            json!({"sideEffect": "email.send"}),
            json!({}),
            "manual_review",
            "manual_review",
            "manual",
        ),
        (
            "legacy-none",
            json!({"sideEffect": "none"}),
            json!({}),
            "safe_replay",
            "failed",
            "auto",
        ),
        (
            "legacy-fail",
            json!({"sideEffect": "x", "onAmbiguousFailure": "fail"}),
            json!({}),
            "fail_hard",
            "failed",
            "never",
        ),
        (
            "legacy-retry",
            json!({"sideEffect": "x", "onAmbiguousFailure": "retry"}),
            json!({}),
            "safe_replay",
            "failed",
            "auto",
        ),
        (
            "legacy-review",
            json!({"sideEffects": ["read"], "onAmbiguousFailure": "review"}),
            json!({}),
            "manual_review",
            "manual_review",
            "manual",
        ),
    ];
    for (name, options, extra, decision, status, replay) in &cases {
        let b = srv
            .step_begin(
                &run,
                json!({"name": name, "inputHash": "h", "options": options, "leaseOwner": "w1"}),
            )
            .await;
        assert_eq!(b["action"], "execute", "{name}: {b}");
        assert_eq!(
            b["step"]["resumeContract"]["replay"], *replay,
            "{name}: contract {b}"
        );
        assert_eq!(
            b["step"]["options"], *options,
            "{name}: options stored verbatim"
        );
        let step_id = b["step"]["id"].as_str().unwrap().to_string();
        let mut fail = json!({"leaseOwner": "w1", "error": {"message": format!("{name} broke")}});
        fail.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, f) = srv
            .post(&format!("/runs/{run}/steps/{step_id}/fail"), fail)
            .await;
        assert_eq!(s, 200, "{name}: {f}");
        assert_eq!(f["step"]["status"], *status, "{name}: step status");
        assert_eq!(
            f["step"]["error"],
            json!({"message": format!("{name} broke")})
        );
        assert!(f["step"]["leaseOwner"].is_null(), "{name}: lease released");

        let events = srv.events(&run).await;
        let last = events.last().unwrap();
        assert_eq!(last["type"], "step.failed", "{name}");
        assert_eq!(
            last["payload"]["resumeDecision"], *decision,
            "{name}: decision"
        );
        assert_eq!(last["payload"]["stepId"], step_id.as_str());
        assert_eq!(
            last["payload"]["retryable"],
            extra.get("retryable").cloned().unwrap_or(json!(false))
        );
        assert_eq!(last["payload"]["resumeContract"]["replay"], *replay);

        // A second failure report by the same owner is fenced out.
        let (s, _) = srv
            .post(
                &format!("/runs/{run}/steps/{step_id}/fail"),
                json!({"leaseOwner": "w1"}),
            )
            .await;
        assert_eq!(s, 409, "{name}: repeat fail");

        // Failed steps (any classification) are re-executable, by anyone.
        let again = srv
            .step_begin(
                &run,
                json!({"name": name, "inputHash": "h", "options": options, "leaseOwner": "w2"}),
            )
            .await;
        assert_eq!(again["action"], "execute", "{name}: {again}");
        assert_eq!(again["step"]["attempt"], 2, "{name}");
        assert_eq!(again["step"]["id"], step_id.as_str());
        assert_eq!(again["step"]["status"], "running");
        assert_eq!(
            again["step"]["error"],
            json!({"message": format!("{name} broke")}),
            "{name}: error kept across begin"
        );
        let (s, c) = srv
            .post(
                &format!("/runs/{run}/steps/{step_id}/complete"),
                json!({"leaseOwner": "w2", "output": name}),
            )
            .await;
        assert_eq!(s, 200, "{name}: {c}");
        assert!(
            c["step"]["error"].is_null(),
            "{name}: completion clears the error"
        );
    }

    // A failure without `error`: the event omits the key, the step has null.
    let b = srv
        .step_begin(
            &run,
            json!({"name": "no-error", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    let step_id = b["step"]["id"].as_str().unwrap().to_string();
    let (s, f) = srv
        .post(
            &format!("/runs/{run}/steps/{step_id}/fail"),
            json!({"leaseOwner": "w1"}),
        )
        .await;
    assert_eq!(s, 200, "{f}");
    assert!(f["step"]["error"].is_null());
    let events = srv.events(&run).await;
    assert!(events.last().unwrap()["payload"].get("error").is_none());
    assert_gap_free(&events);
    // Step failures leave the run alone.
    assert_eq!(srv.detail(&run).await["run"]["status"], "running");
}
