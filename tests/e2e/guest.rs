//! The wasm door keeps the input limits of the HTTP door (docs/compatibility.md,
//! "Input limits"): a guest that hands the host a NUL, an over-long or
//! reserved name or an out-of-range number gets a `HostError` naming the
//! call, the field and the limit, the same on Postgres and SQLite; nothing
//! of it is stored and the host keeps serving. Sleeps of any length neither
//! overflow nor outlive a cancellation.

use crate::harness::{Opts, TestServer, count_events};
use crate::wasm::{deploy, start, step, wait_for, wait_status};
use serde_json::{Value, json};

backend_tests!(
    guest_input_obeys_the_limits = Opts::wasm(),
    endless_sleeps_park_or_end_at_cancel = Opts {
        wasm_workers: 1,
        ..Opts::wasm()
    },
);

async fn guest_input_obeys_the_limits(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "").await;
    let id = start(&srv, "hostile", json!({"mode": "refused"})).await;
    let d = wait_status(&srv, &id, "completed").await;
    let nul = "String must not contain NUL (\\u0000) characters";
    let long = "String must contain at most 256 character(s)";
    let refused = |message: String| json!({"name": "HostError", "message": message});
    let expected = json!({
        "stepNul": refused(format!("step-begin: name: {nul}")),
        "stepLong": refused(format!("step-begin: name: {long}")),
        "stepHidden": refused(
            "step-begin: name: step names starting with \"__\" are reserved for the values the host records".into()
        ),
        "gateLong": refused(format!("gate: name: {long}")),
        "gatePromptNul": refused(format!("gate: prompt: {nul}")),
        "streamNul": refused(format!("state-set: stream: {nul}")),
        "reasonNul": refused(format!("state-set: reason: {nul}")),
        "labelEmpty": refused("state-save: label: String must contain at least 1 character(s)".into()),
        "usageModelNul": refused(format!("usage-record: model: {nul}")),
        "usageTokens": refused(
            "usage-record: inputTokens: Number must be between 0 and 9007199254740991".into()
        ),
        "usageCost": refused("usage-record: costUsd: Number must be greater than or equal to 0".into()),
        "childEdgeLong": refused(format!("child: name: {long}")),
        "childWorkflowNul": refused(format!("child: workflowName: {nul}")),
    });
    assert_eq!(d["run"]["result"], expected);

    // Nothing refused was stored; the one valid state write was.
    for (key, len) in [
        ("steps", 0),
        ("gates", 0),
        ("runEdges", 0),
        ("usage", 0),
        ("stateVersions", 1),
    ] {
        assert_eq!(d[key].as_array().map(Vec::len), Some(len), "{key}: {d:#}");
    }
    // A log line is stored in its event's JSON, so a NUL in it is kept.
    let events = d["events"].as_array().unwrap();
    let logged = events
        .iter()
        .filter(|e| e["type"] == "log" && e["payload"]["message"] == "a line with a \0 in it")
        .count();
    assert_eq!(logged, 1, "{events:#?}");

    let (status, body) = srv.get("/health").await;
    assert_eq!((status, body), (200, json!({"ok": true})));
    let ok = start(&srv, "hostile", json!({"mode": "ok"})).await;
    wait_status(&srv, &ok, "completed").await;
}

/// With a single worker slot: a durable sleep of `u64::MAX` ms parks its
/// run (saturating, not wrapping), and a step that sleeps forever in place
/// gives its slot back once cancelled, so the next run gets to execute.
async fn endless_sleeps_park_or_end_at_cancel(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "").await;
    let parked = start(&srv, "hostile", json!({"mode": "hibernate"})).await;
    let d = wait_for(&srv, &parked, "the sleep to park", |d| {
        d["run"]["leaseOwner"].is_null() && d["steps"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    assert_eq!(step(&d, "__sleep:1")["output"], json!({"wakeAt": i64::MAX}));
    assert_eq!(d["run"]["status"], "running");

    let napping = start(&srv, "hostile", json!({"mode": "nap"})).await;
    wait_for(&srv, &napping, "the nap to begin", |d| {
        let events = d["events"].as_array().unwrap();
        events
            .iter()
            .any(|e| e["type"] == "log" && e["payload"]["message"] == "napping")
    })
    .await;
    for id in [&napping, &parked] {
        let (status, body) = srv
            .post(&format!("/runs/{id}/cancel"), json!({"reason": "enough"}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let ok = start(&srv, "hostile", json!({"mode": "ok"})).await;
    wait_status(&srv, &ok, "completed").await;
    for id in [&napping, &parked] {
        let d = srv.detail(id).await;
        assert_eq!(d["run"]["status"], "cancelled");
        let events: &Vec<Value> = d["events"].as_array().unwrap();
        assert_eq!(count_events(events, "run.failed"), 0, "{id}");
    }
}
