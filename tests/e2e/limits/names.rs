//! Names are 1 to 256 characters, in bodies and path parameters alike.

use super::{assert_param_refused, busy_run, everything};
use crate::harness::*;
use crate::input::assert_invalid;
use reqwest::Method;
use serde_json::{Value, json};

/// Longest accepted name (`limits::NAME_CHARS`).
const NAME_CHARS: usize = 256;

backend_tests!(names_longer_than_the_limit_are_refused);

async fn names_longer_than_the_limit_are_refused(srv: TestServer) {
    let (run, _, _) = busy_run(&srv).await;
    let before = everything(&srv, &run).await;
    // Four-byte characters: the limit counts characters, and the longest
    // name must still fit a Postgres index entry.
    let longest = "🌊".repeat(NAME_CHARS);
    let long = "🌊".repeat(NAME_CHARS + 1);
    let runs = format!("/runs/{run}");
    let cases: Vec<(Method, String, Value, Value)> = vec![
        (
            Method::POST,
            format!("{runs}/children"),
            json!({"name": long, "workflowName": "w"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("{runs}/children"),
            json!({"name": "c", "workflowName": long}),
            json!(["workflowName"]),
        ),
        (
            Method::POST,
            format!("{runs}/steps/begin"),
            json!({"name": long, "inputHash": "h"}),
            json!(["name"]),
        ),
        (
            Method::POST,
            format!("{runs}/gates/begin"),
            json!({"name": long, "prompt": "p"}),
            json!(["name"]),
        ),
        (
            Method::PUT,
            format!("{runs}/state"),
            json!({"value": 1, "stream": long}),
            json!(["stream"]),
        ),
        // A snapshot's stream is named `<type>:<id>`.
        (
            Method::POST,
            format!("{runs}/snapshots"),
            json!({"label": "l", "target": {"type": long, "id": "x"}}),
            json!(["type"]),
        ),
        (
            Method::POST,
            format!("{runs}/snapshots"),
            json!({"label": "l", "target": {"type": "t", "id": long.repeat(4)}}),
            json!(["id"]),
        ),
        (
            Method::POST,
            "/queues/q/enqueue".into(),
            json!({"workflowName": "w", "dedupeKey": long}),
            json!(["dedupeKey"]),
        ),
        (
            Method::POST,
            "/queues/q/enqueue".into(),
            json!({"workflowName": long}),
            json!(["workflowName"]),
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            json!({"queues": [long]}),
            json!(["queues", 0]),
        ),
        (
            Method::PUT,
            "/schedules/s".into(),
            json!({"cron": "* * * * *", "workflowName": "w", "queue": long}),
            json!(["queue"]),
        ),
    ];
    for (method, path, body, issue) in cases {
        let (s, b) = srv.call(method.clone(), &path, Some(body)).await;
        assert_invalid(s, &b, issue.clone(), &format!("{method} {path}"));
        let named = b["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == issue)
            .unwrap();
        assert_eq!(
            (named["code"].as_str(), named["maximum"].as_u64()),
            (Some("too_big"), Some(256)),
            "{b}"
        );
        assert!(
            named["message"].as_str().unwrap().contains("at most 256"),
            "{b}"
        );
    }
    for (method, path, param) in [
        (Method::POST, format!("/runs/{long}"), "id"),
        (Method::POST, format!("/queues/{long}/enqueue"), "queue"),
        (Method::PUT, format!("/schedules/{long}"), "name"),
        (Method::GET, format!("{runs}/gates/{long}"), "gate"),
    ] {
        assert_param_refused(&srv, method, &path, param).await;
    }
    assert_eq!(
        everything(&srv, &run).await,
        before,
        "refused requests wrote nothing"
    );

    // Exactly at the limit, everything is stored (and indexed) on both backends.
    let (s, b) = srv.post(&format!("/runs/{longest}"), json!({})).await;
    assert_eq!(
        (s, b["run"]["workflowName"].as_str()),
        (200, Some(longest.as_str())),
        "{b}"
    );
    let b = srv
        .step_begin(
            &run,
            json!({"name": longest, "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    assert_eq!(b["action"], "execute", "{b}");
    let (s, b) = srv
        .post(
            &format!("{runs}/gates/begin"),
            json!({"name": longest, "prompt": "p"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(
            &format!("/queues/{longest}/enqueue"),
            json!({"workflowName": longest, "dedupeKey": longest}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .put(
            &format!("/schedules/{longest}"),
            json!({"cron": "* * * * *", "workflowName": longest, "queue": longest}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv.get(&format!("/schedules/{longest}")).await;
    assert_eq!(
        (s, b["schedule"]["name"].as_str()),
        (200, Some(longest.as_str()))
    );
}
