//! NUL (`\u0000`) in stored strings is refused everywhere but inside JSON.

use super::{assert_param_refused, busy_run, everything};
use crate::harness::*;
use crate::input::assert_invalid;
use crate::webhooks::Receiver;
use reqwest::Method;
use serde_json::{Value, json};

backend_tests!(
    nul_in_stored_strings_is_refused,
    json_values_may_hold_nul,
    a_webhook_reply_with_nul_is_recorded,
);

async fn nul_in_stored_strings_is_refused(srv: TestServer) {
    let (run, step, gate) = busy_run(&srv).await;
    let token = srv.detail(&run).await["gates"][0]["resolveToken"].clone();
    let before = everything(&srv, &run).await;
    let nul = "a\0b";
    let hook = "https://127.0.0.1:9/hook";
    let runs = format!("/runs/{run}");
    let cases: Vec<(Method, String, Value, Value)> = vec![
        (
            Method::POST,
            format!("{runs}/children"),
            json!({"name": nul, "workflowName": "w"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("{runs}/children"),
            json!({"name": "c", "workflowName": nul}),
            json!(["workflowName"]),
        ),
        (
            Method::POST,
            format!("{runs}/children"),
            json!({"name": "c", "workflowName": "w", "edgeType": nul}),
            json!(["edgeType"]),
        ),
        (
            Method::POST,
            format!("{runs}/steps/begin"),
            json!({"name": nul, "inputHash": "h"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("{runs}/steps/begin"),
            json!({"name": "s2", "inputHash": nul}),
            json!(["inputHash"]),
        ),
        (
            Method::POST,
            format!("{runs}/steps/begin"),
            json!({"name": "s2", "inputHash": "h", "leaseOwner": nul}),
            json!(["leaseOwner"]),
        ),
        (
            Method::POST,
            format!("{runs}/steps/{step}/complete"),
            json!({"leaseOwner": nul}),
            json!(["leaseOwner"]),
        ),
        (
            Method::POST,
            format!("{runs}/gates/begin"),
            json!({"name": nul, "prompt": "p"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("{runs}/gates/begin"),
            json!({"name": "g2", "prompt": nul}),
            json!(["prompt"]),
        ),
        (
            Method::POST,
            format!("{runs}/gates/{gate}/resolve"),
            json!({"token": token, "decision": "approved", "actor": nul}),
            json!(["actor"]),
        ),
        (
            Method::POST,
            format!("{runs}/cancel"),
            json!({"reason": nul}),
            json!(["reason"]),
        ),
        (
            Method::POST,
            format!("{runs}/cancel"),
            json!({"actor": nul}),
            json!(["actor"]),
        ),
        (
            Method::POST,
            format!("{runs}/fail"),
            json!({"failureClass": nul}),
            json!(["failureClass"]),
        ),
        (
            Method::POST,
            format!("{runs}/recover"),
            json!({"reason": nul}),
            json!(["reason"]),
        ),
        (
            Method::POST,
            format!("{runs}/usage"),
            json!({"model": nul}),
            json!(["model"]),
        ),
        (
            Method::POST,
            format!("{runs}/usage"),
            json!({"kind": nul}),
            json!(["kind"]),
        ),
        (
            Method::POST,
            format!("{runs}/usage"),
            json!({"provider": nul, "label": "l"}),
            json!(["provider"]),
        ),
        (
            Method::POST,
            format!("{runs}/usage"),
            json!({"unit": nul}),
            json!(["unit"]),
        ),
        (
            Method::POST,
            format!("{runs}/usage"),
            json!({"stepId": nul}),
            json!(["stepId"]),
        ),
        (
            Method::PUT,
            format!("{runs}/state"),
            json!({"value": 1, "stream": nul}),
            json!(["stream"]),
        ),
        (
            Method::PUT,
            format!("{runs}/state"),
            json!({"value": 1, "label": nul}),
            json!(["label"]),
        ),
        (
            Method::PATCH,
            format!("{runs}/state"),
            json!({"value": 1, "reason": nul}),
            json!(["reason"]),
        ),
        (
            Method::PATCH,
            format!("{runs}/state"),
            json!({"value": 1, "createdBy": nul}),
            json!(["createdBy"]),
        ),
        (
            Method::POST,
            format!("{runs}/state/save"),
            json!({"label": nul}),
            json!(["label"]),
        ),
        (
            Method::POST,
            format!("{runs}/snapshots"),
            json!({"label": "l", "target": {"type": nul, "id": "x"}}),
            json!(["type"]),
        ),
        (
            Method::POST,
            "/runs/wf".into(),
            json!({"channels": [{"type": "webhook", "url": hook, "secret": nul}]}),
            json!(["channels", 0, "secret"]),
        ),
        (
            Method::POST,
            "/queues/q/enqueue".into(),
            json!({"workflowName": nul}),
            json!(["workflowName"]),
        ),
        (
            Method::POST,
            "/queues/q/enqueue".into(),
            json!({"workflowName": "w", "dedupeKey": nul}),
            json!(["dedupeKey"]),
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            json!({"queues": ["q", nul]}),
            json!(["queues", 1]),
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            json!({"queues": ["q"], "leaseOwner": nul}),
            json!(["leaseOwner"]),
        ),
        (
            Method::PUT,
            "/queues/q/config".into(),
            json!({"invokeUrl": format!("{hook}\0")}),
            json!(["invokeUrl"]),
        ),
        (
            Method::PUT,
            "/schedules/s".into(),
            json!({"cron": "* * * * *", "workflowName": nul}),
            json!(["workflowName"]),
        ),
        (
            Method::PUT,
            "/schedules/s".into(),
            json!({"cron": "* * * * *", "workflowName": "w", "queue": nul}),
            json!(["queue"]),
        ),
        (
            Method::PUT,
            "/schedules/s".into(),
            json!({"cron": nul, "workflowName": "w"}),
            json!(["cron"]),
        ),
    ];
    for (method, path, body, issue) in cases {
        let (s, b) = srv.call(method.clone(), &path, Some(body.clone())).await;
        assert_invalid(s, &b, issue, &format!("{method} {path} {body:?}"));
        assert!(
            b.to_string().contains("NUL"),
            "{method} {path}: says why: {b}"
        );
    }
    // Path parameters and query strings, percent-encoded.
    let params = [
        (Method::POST, "/runs/a%00b".to_string(), "id"),
        (Method::GET, "/runs/run_%00".to_string(), "id"),
        (
            Method::POST,
            format!("{runs}/steps/step%00/complete"),
            "step",
        ),
        (Method::GET, format!("{runs}/gates/g%00"), "gate"),
        (Method::POST, format!("{runs}/gates/g%00/resolve"), "gate"),
        (Method::POST, "/queues/q%00/enqueue".to_string(), "queue"),
        (Method::PUT, "/queues/q%00/config".to_string(), "queue"),
        (Method::PUT, "/schedules/s%00".to_string(), "name"),
        (Method::GET, "/schedules/s%00".to_string(), "name"),
        (Method::DELETE, "/schedules/s%00".to_string(), "name"),
        (Method::GET, "/runs/run%00/events".to_string(), "id"),
        (
            Method::GET,
            format!("{runs}/state/versions?stream=a%00"),
            "stream",
        ),
    ];
    for (method, path, param) in params {
        assert_param_refused(&srv, method, &path, param).await;
    }
    assert_eq!(
        everything(&srv, &run).await,
        before,
        "refused requests wrote nothing"
    );
    // The same names without the NUL work.
    let (s, b) = srv
        .post(
            "/queues/q/enqueue",
            json!({"workflowName": "w", "dedupeKey": "ab"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// JSON values are stored as JSON text, where NUL is the escape `\u0000`:
/// both backends keep it, so it is not refused.
async fn json_values_may_hold_nul(srv: TestServer) {
    let odd = json!({"k\u{0}ey": ["v\u{0}", {"\u{0}": "\u{0}"}]});
    let (s, b) = srv
        .post("/runs/nul-json", json!({"input": odd, "metadata": odd}))
        .await;
    assert_eq!(s, 200, "{b}");
    let run = id(&b["run"]);
    srv.begin_run(&run, "w").await;
    let (s, b) = srv
        .put(&format!("/runs/{run}/state"), json!({"value": odd}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(&format!("/runs/{run}/usage"), json!({"metadata": odd}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(&format!("/runs/{run}/complete"), json!({"result": odd}))
        .await;
    assert_eq!(s, 200, "{b}");
    let d = srv.detail(&run).await;
    assert_eq!(d["run"]["input"], odd);
    assert_eq!(d["run"]["metadata"], odd);
    assert_eq!(d["run"]["result"], odd);
    assert_eq!(d["state"]["value"], odd);
    assert_eq!(d["usage"][0]["metadata"], odd);
}

/// A receiver answering with NUL in its body is recorded (NUL replaced),
/// not a database error on Postgres.
async fn a_webhook_reply_with_nul_is_recorded(srv: TestServer) {
    let hook = Receiver::start(200, "ok\0then").await;
    let (_, b) = srv
        .post("/runs/nul-reply", json!({"recoveryWebhook": hook.url}))
        .await;
    let run = id(&b["run"]);
    let (s, b) = srv.post(&format!("/runs/{run}/recover"), json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["recoveryAttempt"]["status"], "delivered");
    assert_eq!(b["recoveryAttempt"]["responseBody"], "ok\u{FFFD}then");
}
