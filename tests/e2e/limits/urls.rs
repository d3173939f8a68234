//! Webhook, invoke and channel URLs must be absolute http(s) URLs.

use super::everything;
use crate::harness::*;
use crate::input::assert_invalid;
use reqwest::Method;
use serde_json::{Value, json};

backend_tests!(only_http_urls_are_accepted);

async fn only_http_urls_are_accepted(srv: TestServer) {
    let run = srv.running_run("urls", "w").await;
    let before = everything(&srv, &run).await;
    for bad in [
        "mailto:ops@x.example",
        "ftp://x.example/h",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "//x.example/h",
        "x.example/h",
    ] {
        let channel = json!([{"type": "webhook", "url": bad}]);
        let cases: Vec<(Method, String, Value, Value)> = vec![
            (
                Method::POST,
                "/runs/wf".into(),
                json!({"recoveryWebhook": bad}),
                json!(["recoveryWebhook"]),
            ),
            (
                Method::POST,
                "/runs/wf".into(),
                json!({"channels": channel}),
                json!(["channels", 0, "url"]),
            ),
            (
                Method::POST,
                format!("/runs/{run}/children"),
                json!({"name": "c", "workflowName": "w", "recoveryWebhook": bad}),
                json!(["recoveryWebhook"]),
            ),
            (
                Method::POST,
                format!("/runs/{run}/children"),
                json!({"name": "c", "workflowName": "w", "channels": channel}),
                json!(["channels", 0, "url"]),
            ),
            (
                Method::POST,
                "/queues/q/enqueue".into(),
                json!({"workflowName": "w", "recoveryWebhook": bad}),
                json!(["recoveryWebhook"]),
            ),
            (
                Method::POST,
                "/queues/q/enqueue".into(),
                json!({"workflowName": "w", "channels": channel}),
                json!(["channels", 0, "url"]),
            ),
            (
                Method::POST,
                format!("/runs/{run}/gates/begin"),
                json!({"name": "g", "prompt": "p", "channels": channel}),
                json!(["channels", 0, "url"]),
            ),
            (
                Method::PUT,
                "/queues/q/config".into(),
                json!({"invokeUrl": bad}),
                json!(["invokeUrl"]),
            ),
        ];
        for (method, path, body, issue) in cases {
            let (s, b) = srv.call(method.clone(), &path, Some(body)).await;
            assert_invalid(s, &b, issue, &format!("{method} {path} {bad}"));
            assert!(b.to_string().contains("http or https"), "{b}");
        }
    }
    assert_eq!(
        everything(&srv, &run).await,
        before,
        "refused requests wrote nothing"
    );
    for good in ["http://127.0.0.1:9/hook", "https://127.0.0.1:9/h?a=b"] {
        let (s, b) = srv
            .post(
                "/runs/wf",
                json!({"recoveryWebhook": good, "channels": [{"type": "webhook", "url": good}]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = srv
            .put("/queues/q/config", json!({"invokeUrl": good}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
}
