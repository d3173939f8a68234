//! Run create / list / detail shapes, and completion being final.

use crate::harness::*;
use serde_json::{Value, json};

/// A field name and a check of its value.
type FieldCheck = (&'static str, fn(&Value) -> bool);

/// Every field of http-api.md §2.1, with a type check.
fn assert_run_shape(run: &Value) {
    let fields: &[FieldCheck] = &[
        ("id", |v| is_id(v, "run")),
        ("workflowName", Value::is_string),
        ("input", |_| true),
        ("metadata", Value::is_object),
        ("status", |v| {
            [
                "pending",
                "queued",
                "running",
                "completed",
                "failed",
                "cancelled",
            ]
            .contains(&v.as_str().unwrap_or(""))
        }),
        ("result", |_| true),
        ("error", |_| true),
        ("recoveryWebhook", |v| v.is_null() || v.is_string()),
        ("leaseOwner", |v| v.is_null() || v.is_string()),
        ("leaseExpiresAt", |v| v.is_null() || is_timestamp(v)),
        ("attempt", |v| v.is_i64()),
        ("queue", |v| v.is_null() || v.is_string()),
        ("dedupeKey", |v| v.is_null() || v.is_string()),
        ("priority", |v| v.is_i64()),
        ("runAt", |v| v.is_null() || is_timestamp(v)),
        ("maxAttempts", |v| v.is_i64()),
        ("deadlineAt", |v| v.is_null() || is_timestamp(v)),
        ("cancelRequestedAt", |v| v.is_null() || is_timestamp(v)),
        ("cancelledAt", |v| v.is_null() || is_timestamp(v)),
        ("cancelReason", |v| v.is_null() || v.is_string()),
        ("cancelActor", |v| v.is_null() || v.is_string()),
        ("failureClass", |v| v.is_null() || v.is_string()),
        ("createdAt", is_timestamp),
        ("updatedAt", is_timestamp),
        ("completedAt", |v| v.is_null() || is_timestamp(v)),
    ];
    let obj = run
        .as_object()
        .unwrap_or_else(|| panic!("run is not an object: {run}"));
    for (name, check) in fields {
        let v = obj
            .get(*name)
            .unwrap_or_else(|| panic!("run lacks field {name}: {run}"));
        assert!(check(v), "run field {name} has the wrong type/value: {v}");
    }
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        keys, expected,
        "run has exactly the §2.1 fields (no internal columns)"
    );
}

backend_tests!(
    create_list_detail_shapes,
    list_is_newest_first_and_capped_at_100,
    completed_run_is_final
);

async fn create_list_detail_shapes(srv: TestServer) {
    let body = json!({"input": {"topic": "tides"}, "metadata": {"m": 2}});
    let r = srv
        .raw(reqwest::Method::POST, "/runs/my-wf", body.to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let run = r.json()["run"].clone();
    assert_run_shape(&run);
    assert_eq!(run["workflowName"], "my-wf");
    assert_eq!(run["input"], json!({"topic": "tides"}));
    assert_eq!(run["metadata"], json!({"m": 2}));
    assert_eq!(run["status"], "pending");
    assert_eq!(run["attempt"], 0);
    assert_eq!(run["priority"], 0);
    assert_eq!(run["maxAttempts"], 1);
    for null_field in [
        "result",
        "error",
        "leaseOwner",
        "leaseExpiresAt",
        "queue",
        "runAt",
        "completedAt",
        "cancelledAt",
    ] {
        assert!(
            run[null_field].is_null(),
            "{null_field} should be null on a fresh run"
        );
    }
    assert_eq!(run["createdAt"], run["updatedAt"]);

    // Defaults: absent and null input both become {}; the path is percent-decoded.
    let (s, b) = srv.post("/runs/my%20wf", json!({"input": null})).await;
    assert_eq!(s, 200);
    assert_eq!(b["run"]["input"], json!({}));
    assert_eq!(b["run"]["workflowName"], "my wf");
    assert_eq!(b["run"]["metadata"], json!({}));

    // Detail: every section, with types, and the run.created event.
    let id = run["id"].as_str().unwrap();
    let d = srv.detail(id).await;
    let sections = [
        "run",
        "steps",
        "state",
        "stateStreams",
        "stateVersions",
        "runEdges",
        "childRuns",
        "recoveryAttempts",
        "channels",
        "channelDeliveries",
        "gates",
        "usage",
        "events",
    ];
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = sections.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "run detail sections");
    assert_eq!(d["run"], run, "detail run equals the created run");
    assert!(d["state"].is_null(), "no state written yet");
    for list in &sections[1..] {
        if *list != "state" {
            assert!(d[*list].is_array(), "{list} is an array");
        }
    }
    let events = d["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert!(ev["id"].is_i64());
    assert_eq!(ev["runId"], id);
    assert_eq!(ev["seq"], 1);
    assert_eq!(ev["type"], "run.created");
    assert!(is_timestamp(&ev["createdAt"]));
    assert_eq!(
        ev["payload"],
        json!({"workflowName": "my-wf", "input": {"topic": "tides"}, "channels": []})
    );

    // Begin: shape of the lease grant.
    let (s, b) = srv.begin_run(id, "w1").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["leaseOwner"], "w1");
    assert_run_shape(&b["run"]);
    assert_eq!(b["run"]["status"], "running");
    assert_eq!(b["run"]["leaseOwner"], "w1");
    assert_eq!(b["run"]["attempt"], 1);
    assert!(is_timestamp(&b["run"]["leaseExpiresAt"]));
    let events = srv.events(id).await;
    assert_eq!(events[1]["type"], "run.started");
    assert_eq!(events[1]["payload"], json!({"leaseOwner": "w1"}));

    // Begin without a worker header: a server-generated dashed UUID.
    let other = srv.create_run("anon").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{}/begin", other["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let owner = b["leaseOwner"].as_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(owner).is_ok() && owner.len() == 36,
        "owner {owner}"
    );
    assert_eq!(b["run"]["leaseOwner"], owner);

    // Unknown run.
    let (s, b) = srv.get("/runs/run_00000000000000000000000000000000").await;
    assert_eq!((s, b), (404, json!({"error": "run not found"})));
}

async fn list_is_newest_first_and_capped_at_100(srv: TestServer) {
    let mut created = Vec::new();
    for i in 0..105 {
        let run = srv.create_run(&format!("wf-{i}")).await;
        created.push(run["id"].as_str().unwrap().to_string());
    }
    let (s, b) = srv.get("/runs").await;
    assert_eq!(s, 200);
    let runs = b["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 100, "at most 100 runs");
    for r in runs {
        assert_run_shape(r);
    }
    let listed: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = created.iter().rev().take(100).map(String::as_str).collect();
    assert_eq!(listed, expected, "the 100 newest runs, newest first");
    let stamps: Vec<&str> = runs
        .iter()
        .map(|r| r["createdAt"].as_str().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "createdAt descending"
    );
}

async fn completed_run_is_final(srv: TestServer) {
    let id = srv.running_run("final", "w1").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{id}/complete"),
            json!({"result": {"done": true}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let done = b["run"].clone();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], json!({"done": true}));
    assert!(
        done["leaseOwner"].is_null() && done["leaseExpiresAt"].is_null(),
        "lease released"
    );
    assert!(is_timestamp(&done["completedAt"]));
    let before = srv.detail(&id).await;
    assert_eq!(
        count_events(before["events"].as_array().unwrap(), "run.completed"),
        1
    );

    // Completing again answers with the run unchanged and writes nothing.
    let (s, b) = srv
        .post(
            &format!("/runs/{id}/complete"),
            json!({"result": {"done": "again"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["run"], done, "second complete returns the unchanged run");

    // Failing a completed run is refused.
    let (s, b) = srv
        .post(
            &format!("/runs/{id}/fail"),
            json!({"error": {"message": "late"}}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"], "run already completed");

    // Begin on a completed run: 200, no lease granted, nothing written.
    let (s, b) = srv.begin_run(&id, "w2").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["leaseOwner"], "w2", "requester echoed");
    assert_eq!(b["run"], done, "run unchanged, no lease");

    assert_eq!(srv.detail(&id).await, before, "no write after completion");
}
