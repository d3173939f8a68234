//! Bad input gets a 4xx JSON answer and writes nothing.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

const MISSING_RUN: &str = "run_00000000000000000000000000000000";

/// Asserts a 400 schema failure whose issues mention `path`.
pub fn assert_invalid(status: u16, body: &Value, path: Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["error"], "invalid request body", "{what}: {body}");
    let issues = body["issues"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no issues array: {body}"));
    assert!(
        issues
            .iter()
            .any(|i| i["path"] == path && i["code"].is_string() && i["message"].is_string()),
        "{what}: no issue at path {path}: {body}"
    );
}

/// A run with a bit of everything, so "unchanged" means something.
pub async fn busy_run(srv: &TestServer) -> (String, String, String) {
    let run = srv.running_run("victim", "w1").await;
    let (s, _) = srv
        .put(&format!("/runs/{run}/state"), json!({"value": {"n": 1}}))
        .await;
    assert_eq!(s, 200);
    let b = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    let step = b["step"]["id"].as_str().unwrap().to_string();
    let (s, g) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "p"}),
        )
        .await;
    assert_eq!(s, 200);
    let gate = g["gate"]["id"].as_str().unwrap().to_string();
    (run, step, gate)
}

backend_tests!(
    malformed_bodies_are_400_and_write_nothing,
    oversized_bodies_are_413,
    unknown_ids_are_404
);

async fn malformed_bodies_are_400_and_write_nothing(srv: TestServer) {
    let (run, step, gate) = busy_run(&srv).await;
    let token = srv.detail(&run).await["gates"][0]["resolveToken"].clone();
    let before = srv.detail(&run).await;
    let (_, runs_before) = srv.get("/runs").await;

    // Not JSON at all, or no body, where a body is read.
    let endpoints: Vec<(Method, String)> = vec![
        (Method::POST, "/runs/wf".into()),
        (Method::POST, format!("/runs/{run}/complete")),
        (Method::POST, format!("/runs/{run}/fail")),
        (Method::POST, format!("/runs/{run}/children")),
        (Method::POST, format!("/runs/{run}/steps/begin")),
        (Method::POST, format!("/runs/{run}/steps/{step}/complete")),
        (Method::POST, format!("/runs/{run}/steps/{step}/fail")),
        (Method::POST, format!("/runs/{run}/gates/begin")),
        (Method::POST, format!("/runs/{run}/gates/{gate}/resolve")),
        (Method::PUT, format!("/runs/{run}/state")),
        (Method::PATCH, format!("/runs/{run}/state")),
        (Method::POST, format!("/runs/{run}/state/save")),
        (Method::POST, format!("/runs/{run}/snapshots")),
        (Method::POST, format!("/runs/{run}/usage")),
    ];
    for (method, path) in &endpoints {
        for raw in ["{", "{\"result\": }", "not json", "", "null"] {
            let r = srv.raw(method.clone(), path, raw).await;
            assert_eq!(r.status, 400, "{method} {path} with {raw:?}: {}", r.text);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert!(r.json()["error"].is_string(), "{method} {path}: {}", r.text);
        }
    }

    // Schema failures name the offending path.
    let cases: Vec<(Method, String, Value, Value)> = vec![
        (Method::POST, "/runs/wf".into(), json!([1]), json!([])),
        (
            Method::POST,
            "/runs/wf".into(),
            json!({"metadata": [1]}),
            json!(["metadata"]),
        ),
        (
            Method::POST,
            "/runs/wf".into(),
            json!({"recoveryWebhook": "not a url"}),
            json!(["recoveryWebhook"]),
        ),
        (
            Method::POST,
            "/runs/wf".into(),
            json!({"channels": [{"type": "email", "url": "https://x.example"}]}),
            json!(["channels", 0]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/usage"),
            json!({"inputTokens": 1.5}),
            json!(["inputTokens"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/usage"),
            json!({"outputTokens": -1}),
            json!(["outputTokens"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/usage"),
            json!({"costUsd": "free"}),
            json!(["costUsd"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/usage"),
            json!({"kind": ""}),
            json!(["kind"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/begin"),
            json!({"name": 5, "inputHash": "h"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/begin"),
            json!({"name": "s2"}),
            json!(["inputHash"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/begin"),
            json!({"name": "", "inputHash": "h"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/begin"),
            json!({"name": "s2", "inputHash": "h", "options": "fast"}),
            json!(["options"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/{step}/complete"),
            json!({"output": 1}),
            json!(["leaseOwner"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/{step}/fail"),
            json!({"leaseOwner": "w1", "retryable": "yes"}),
            json!(["retryable"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/steps/{step}/fail"),
            json!({"leaseOwner": "w1", "resumeDecision": "shrug"}),
            json!(["resumeDecision"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/gates/begin"),
            json!({"name": "g2"}),
            json!(["prompt"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/gates/begin"),
            json!({"name": "g2", "prompt": "p", "timeoutMs": 0}),
            json!(["timeoutMs"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/gates/{gate}/resolve"),
            json!({"token": token, "decision": "maybe"}),
            json!(["decision"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/gates/{gate}/resolve"),
            json!({"decision": "approved"}),
            json!(["token"]),
        ),
        (
            Method::PUT,
            format!("/runs/{run}/state"),
            json!({"value": 1, "importance": "huge"}),
            json!(["importance"]),
        ),
        (
            Method::PATCH,
            format!("/runs/{run}/state"),
            json!({"value": 1, "stream": ""}),
            json!(["stream"]),
        ),
        (
            Method::PUT,
            format!("/runs/{run}/state"),
            json!({"value": 1, "metadata": "m"}),
            json!(["metadata"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/state/save"),
            json!({}),
            json!(["label"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/snapshots"),
            json!({"label": "l", "target": {"type": "doc"}}),
            json!(["id"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/children"),
            json!({"name": "c"}),
            json!(["workflowName"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/children"),
            json!({"name": "c", "workflowName": "w", "edgeMetadata": 3}),
            json!(["edgeMetadata"]),
        ),
        (
            Method::POST,
            format!("/runs/{run}/cancel"),
            json!({"reason": 5}),
            json!(["reason"]),
        ),
    ];
    for (method, path, body, issue_path) in cases {
        let (s, b) = srv.call(method.clone(), &path, Some(body.clone())).await;
        assert_invalid(s, &b, issue_path, &format!("{method} {path} {body}"));
    }

    assert_eq!(
        srv.detail(&run).await,
        before,
        "rejected requests wrote nothing"
    );
    let (_, runs_after) = srv.get("/runs").await;
    assert_eq!(runs_after, runs_before, "no run was created");
    // And the run is still perfectly usable.
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/steps/{step}/complete"),
            json!({"leaseOwner": "w1", "output": 1}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn oversized_bodies_are_413(srv: TestServer) {
    let (run, _, _) = busy_run(&srv).await;
    let before = srv.detail(&run).await;
    let (_, runs_before) = srv.get("/runs").await;
    let huge = json!({"value": "x".repeat(4 * 1024 * 1024 + 16)}).to_string();
    for (method, path) in [
        (Method::PUT, format!("/runs/{run}/state")),
        (Method::POST, "/runs/big".to_string()),
        (Method::POST, format!("/runs/{run}/usage")),
    ] {
        let r = srv.raw(method.clone(), &path, huge.clone()).await;
        assert_eq!(r.status, 413, "{method} {path}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.json()["error"].is_string(), "{}", r.text);
    }
    // Just under the limit is fine.
    let fits = json!({"value": "x".repeat(4 * 1024 * 1024 - 64)}).to_string();
    assert!(fits.len() <= 4 * 1024 * 1024);
    assert_eq!(
        srv.detail(&run).await,
        before,
        "oversized requests wrote nothing"
    );
    let (_, runs_after) = srv.get("/runs").await;
    assert_eq!(runs_after, runs_before);
    let r = srv
        .raw(Method::PUT, &format!("/runs/{run}/state"), fits)
        .await;
    assert_eq!(r.status, 200, "a body within the limit is accepted");
}

async fn unknown_ids_are_404(srv: TestServer) {
    let (run, _, _) = busy_run(&srv).await;
    let before = srv.detail(&run).await;
    let (_, runs_before) = srv.get("/runs").await;
    let not_found = json!({"error": "run not found"});
    let m = MISSING_RUN;
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::GET, format!("/runs/{m}"), Value::Null),
        (Method::POST, format!("/runs/{m}/begin"), json!({})),
        (
            Method::POST,
            format!("/runs/{m}/complete"),
            json!({"result": 1}),
        ),
        (
            Method::POST,
            format!("/runs/{m}/fail"),
            json!({"error": {}}),
        ),
        (Method::POST, format!("/runs/{m}/cancel"), json!({})),
        (
            Method::POST,
            format!("/runs/{m}/steps/begin"),
            json!({"name": "s", "inputHash": "h"}),
        ),
        (
            Method::POST,
            format!("/runs/{m}/gates/begin"),
            json!({"name": "g", "prompt": "p"}),
        ),
        (Method::PUT, format!("/runs/{m}/state"), json!({"value": 1})),
        (
            Method::PATCH,
            format!("/runs/{m}/state"),
            json!({"value": 1}),
        ),
        (
            Method::POST,
            format!("/runs/{m}/state/save"),
            json!({"label": "l"}),
        ),
        (
            Method::POST,
            format!("/runs/{m}/snapshots"),
            json!({"label": "l"}),
        ),
        (
            Method::POST,
            format!("/runs/{m}/usage"),
            json!({"inputTokens": 1}),
        ),
    ];
    for (method, path, body) in cases {
        let body = if body.is_null() { None } else { Some(body) };
        let (s, b) = srv.call(method.clone(), &path, body).await;
        assert_eq!((s, &b), (404, &not_found), "{method} {path}");
    }
    let (s, b) = srv
        .post(
            &format!("/runs/{m}/children"),
            json!({"name": "c", "workflowName": "w"}),
        )
        .await;
    assert_eq!((s, b), (404, json!({"error": "parent run not found"})));
    let (s, b) = srv
        .get(&format!(
            "/runs/{m}/gates/gate_00000000000000000000000000000000"
        ))
        .await;
    assert_eq!((s, b), (404, json!({"error": "gate not found"})));
    let (s, b) = srv
        .get(&format!(
            "/runs/{run}/gates/gate_00000000000000000000000000000000"
        ))
        .await;
    assert_eq!((s, b), (404, json!({"error": "gate not found"})));
    // Usage naming a step that does not exist is refused too.
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/usage"),
            json!({"stepId": "step_00000000000000000000000000000000"}),
        )
        .await;
    assert!((400..500).contains(&s), "unknown stepId: {s} {b}");
    assert!(b["error"].is_string());

    assert_eq!(srv.detail(&run).await, before, "nothing written");
    let (_, runs_after) = srv.get("/runs").await;
    assert_eq!(runs_after, runs_before, "no run was created");
}
