//! Input limits (docs/compatibility.md, "Input limits"): numbers out of
//! range, NUL characters, over-long names and non-http(s) URLs are a 400
//! naming the field, identical on Postgres and SQLite, and write nothing;
//! the server keeps serving. Also the CLI and environment bounds.

use crate::cli::{host, output, text};
use crate::harness::*;
use crate::input::assert_invalid;
use crate::webhooks::Receiver;
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest accepted name (`limits::NAME_CHARS`).
const NAME_CHARS: usize = 256;
/// Largest accepted token count: 2^53 − 1.
const MAX_TOKENS: i64 = (1 << 53) - 1;

/// Asserts a 400 from a path or query check, naming `param`.
async fn assert_param_refused(srv: &TestServer, method: Method, path: &str, param: &str) {
    let rb = srv.request(method.clone(), path).json(&json!({}));
    let r = TestServer::send(rb).await;
    assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
    let b = r.json();
    let error = b["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("\"{param}\"")),
        "{method} {path}: error should name {param}: {b}"
    );
    assert_eq!(
        b["issues"][0]["path"],
        json!([param]),
        "{method} {path}: {b}"
    );
}

/// Everything the server would show of its stored data, to prove that
/// refused requests wrote nothing.
async fn everything(srv: &TestServer, run: &str) -> Value {
    let mut all = json!({});
    for path in ["/runs", "/queues", "/schedules"] {
        let (s, b) = srv.get(path).await;
        assert_eq!(s, 200, "{path}: {b}");
        all[path] = b;
    }
    all["detail"] = srv.detail(run).await;
    all
}

/// A run with a step, a gate and state, and its ids.
async fn busy_run(srv: &TestServer) -> (String, String, String) {
    let run = srv.running_run("victim", "w1").await;
    let step = srv
        .step_begin(
            &run,
            json!({"name": "s", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await["step"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, g) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "p"}),
        )
        .await;
    assert_eq!(s, 200, "{g}");
    (run, step, id(&g["gate"]))
}

backend_tests!(
    nul_in_stored_strings_is_refused,
    json_values_may_hold_nul,
    names_longer_than_the_limit_are_refused,
    numbers_out_of_range_are_refused,
    token_counts_never_wrap,
    only_http_urls_are_accepted,
    huge_cron_steps_fire_correctly,
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

async fn numbers_out_of_range_are_refused(srv: TestServer) {
    let (run, _, _) = busy_run(&srv).await;
    let before = everything(&srv, &run).await;
    let usage = format!("/runs/{run}/usage");
    let enqueue = "/queues/q/enqueue";
    // Raw JSON: integers past 64 bits and huge floats, as a client may send.
    let cases: Vec<(Method, String, String, &str)> = vec![
        (
            Method::POST,
            usage.clone(),
            format!(r#"{{"inputTokens": {}}}"#, i64::MAX),
            "inputTokens",
        ),
        (
            Method::POST,
            usage.clone(),
            format!(r#"{{"outputTokens": {}}}"#, MAX_TOKENS + 1),
            "outputTokens",
        ),
        (
            Method::POST,
            usage.clone(),
            r#"{"totalTokens": 18446744073709551615}"#.into(),
            "totalTokens",
        ),
        (
            Method::POST,
            usage.clone(),
            r#"{"totalTokens": 1e300}"#.into(),
            "totalTokens",
        ),
        (
            Method::POST,
            usage.clone(),
            r#"{"inputTokens": -1e300}"#.into(),
            "inputTokens",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "delayMs": 9223372036854775807}"#.into(),
            "delayMs",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "delayMs": -1}"#.into(),
            "delayMs",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "deadlineMs": 0}"#.into(),
            "deadlineMs",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "deadlineMs": 1e19}"#.into(),
            "deadlineMs",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "priority": 2147483648}"#.into(),
            "priority",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "priority": -2147483649}"#.into(),
            "priority",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "maxAttempts": 0}"#.into(),
            "maxAttempts",
        ),
        (
            Method::POST,
            enqueue.into(),
            r#"{"workflowName": "w", "maxAttempts": 99999999999999999999}"#.into(),
            "maxAttempts",
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            r#"{"queues": ["q"], "limit": 0}"#.into(),
            "limit",
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            r#"{"queues": ["q"], "limit": 101}"#.into(),
            "limit",
        ),
        (
            Method::POST,
            "/queues/claim".into(),
            r#"{"queues": ["q"], "limit": 1e20}"#.into(),
            "limit",
        ),
        (
            Method::PUT,
            "/queues/q/config".into(),
            r#"{"concurrency": 0}"#.into(),
            "concurrency",
        ),
        (
            Method::PUT,
            "/queues/q/config".into(),
            r#"{"ratePerMinute": 2147483648}"#.into(),
            "ratePerMinute",
        ),
        (
            Method::PUT,
            "/schedules/s".into(),
            r#"{"cron": "* * * * *", "workflowName": "w", "maxAttempts": 9223372036854775808}"#
                .into(),
            "maxAttempts",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = srv.raw(method.clone(), &path, body.clone()).await;
        let b = r.json();
        assert_invalid(
            r.status,
            &b,
            json!([field]),
            &format!("{method} {path} {body}"),
        );
        let issue = b["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == json!([field]))
            .unwrap();
        assert!(
            issue["minimum"].is_i64() && issue["maximum"].is_i64(),
            "{body}: the issue gives the allowed range: {issue}"
        );
        assert!(
            issue["message"].as_str().unwrap().contains("between"),
            "{issue}"
        );
    }
    // `after` on the event stream must be a finite number.
    for after in ["abc", "1e400", "NaN"] {
        let r = srv
            .request(Method::GET, &format!("/runs/{run}/events?after={after}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "after={after}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["issues"][0]["path"], json!(["after"]), "{b}");
    }
    let lenient = srv
        .request(Method::GET, &format!("/runs/{run}/events?after=-5.5"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lenient.status(),
        200,
        "negative and fractional `after` stay lenient"
    );
    drop(lenient);
    assert_eq!(
        everything(&srv, &run).await,
        before,
        "refused requests wrote nothing"
    );
    // The bounds themselves are accepted.
    let (s, b) = srv
        .post(enqueue, json!({"workflowName": "w", "priority": i32::MIN, "maxAttempts": i32::MAX, "deadlineMs": 1}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post("/queues/claim", json!({"queues": ["none"], "limit": 100}))
        .await;
    assert_eq!(s, 200, "{b}");
}

/// Each count is capped at 2^53 − 1 and a derived total must fit too, so
/// no total wraps. The server keeps no sums across records (the protocol has
/// no aggregate); records at the cap are stored exactly, and a client's sum
/// over up to 1024 of them still fits 64 bits.
async fn token_counts_never_wrap(srv: TestServer) {
    let run = srv.running_run("tokens", "w").await;
    let usage = format!("/runs/{run}/usage");
    for _ in 0..2 {
        let (s, b) = srv
            .post(
                &usage,
                json!({"inputTokens": MAX_TOKENS, "totalTokens": MAX_TOKENS}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, b) = srv.post(&usage, json!({"outputTokens": MAX_TOKENS})).await;
    assert_eq!(
        (s, b["usage"]["totalTokens"].as_i64()),
        (200, Some(MAX_TOKENS)),
        "{b}"
    );
    let before = srv.detail(&run).await;
    // Two sides whose sum passes the cap: refused, naming the derived total.
    let (s, b) = srv
        .post(
            &usage,
            json!({"inputTokens": MAX_TOKENS, "outputTokens": 1}),
        )
        .await;
    assert_invalid(s, &b, json!(["totalTokens"]), "derived total over the cap");
    let (s, b) = srv
        .post(
            &usage,
            json!({"inputTokens": MAX_TOKENS, "outputTokens": MAX_TOKENS}),
        )
        .await;
    assert_invalid(
        s,
        &b,
        json!(["totalTokens"]),
        "derived total far over the cap",
    );
    assert_eq!(srv.detail(&run).await, before, "nothing recorded");
    let records = before["usage"].as_array().unwrap();
    let sum: i128 = records
        .iter()
        .map(|u| i128::from(u["totalTokens"].as_i64().unwrap()))
        .sum();
    assert_eq!(
        sum,
        3 * i128::from(MAX_TOKENS),
        "stored exactly, none negative"
    );
}

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

/// A step far past the field's span selects only the start (the spec asks
/// only for a step ≥ 1); it used to overflow while expanding the field.
async fn huge_cron_steps_fire_correctly(srv: TestServer) {
    for (name, cron) in [
        ("a", "59/4294967295 * * * *"),
        ("b", "59/99999999999999999999 23/4294967296 * * *"),
    ] {
        let (s, b) = srv
            .put(
                &format!("/schedules/{name}"),
                json!({"cron": cron, "workflowName": "w"}),
            )
            .await;
        assert_eq!(s, 200, "{cron}: {b}");
        let next = b["schedule"]["nextRunAt"].as_str().unwrap();
        assert!(
            next.ends_with(":59:00.000Z"),
            "{cron} fires at minute 59: {next}"
        );
    }
    let (s, b) = srv
        .put(
            "/schedules/c",
            json!({"cron": "*/0 * * * *", "workflowName": "w"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = srv.get("/health").await;
    assert_eq!(s, 200);
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

backend_tests!(deploy_limits_are_checked = Opts::wasm());

async fn deploy_limits_are_checked(srv: TestServer) {
    let bytes = std::fs::read(tidebase_fixtures::REPORT).unwrap();
    let deploy = |query: String| {
        let rb = srv
            .request(Method::POST, &format!("/workflows/report{query}"))
            .body(bytes.clone());
        TestServer::send(rb)
    };
    for (query, field) in [
        ("?memoryMb=0", "memoryMb"),
        ("?memoryMb=-1", "memoryMb"),
        ("?memoryMb=257", "memoryMb"),
        ("?memoryMb=9223372036854775807", "memoryMb"),
        ("?memoryMb=99999999999999999999999", "memoryMb"),
        ("?memoryMb=lots", "memoryMb"),
        ("?cpuMs=0", "cpuMs"),
        ("?cpuMs=3600001", "cpuMs"),
        ("?cpuMs=9223372036854775807", "cpuMs"),
        ("?memoryMb=64&cpuMs=-5", "cpuMs"),
    ] {
        let r = deploy(query.to_string()).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let b = r.json();
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{field}\"")),
            "{query}: {b}"
        );
        assert_eq!(b["issues"][0]["path"], json!([field]), "{b}");
        let issue = &b["issues"][0];
        assert!(
            issue["minimum"].is_i64() && issue["maximum"].is_i64(),
            "{query}: range given: {b}"
        );
    }
    assert_param_refused(&srv, Method::POST, "/workflows/re%00port", "name").await;
    let (_, list) = srv.get("/workflows").await;
    assert_eq!(list["deployments"], json!([]), "nothing deployed");
    let r = deploy("?memoryMb=256&cpuMs=3600000".into()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["deployment"]["memoryLimitBytes"], 256 << 20);
}

backend_tests!(cli_deploy_flags_are_checked = Opts::wasm());

async fn cli_deploy_flags_are_checked(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--memory-mb", "0"),
        ("--memory-mb", "-1"),
        ("--memory-mb", "8796093022208"),
        ("--memory-mb", "99999999999999999999"),
        ("--cpu-ms", "9223372036854775807"),
        ("--cpu-ms", "0"),
    ] {
        // `--flag=value`, so that clap does not read "-1" as a flag.
        let arg = format!("{flag}={value}");
        let args = ["deploy", tidebase_fixtures::REPORT, &arg];
        let out = output(host(&srv, dir.path(), &args)).await;
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("between"),
            "{flag} {value}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (_, list) = srv.get("/workflows").await;
    assert_eq!(list["deployments"], json!([]), "nothing deployed");
    let args = [
        "deploy",
        tidebase_fixtures::REPORT,
        "--memory-mb",
        "256",
        "--cpu-ms",
        "3600000",
    ];
    let ok = output(host(&srv, dir.path(), &args)).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    // A verb other than serve checks its environment too.
    let mut cmd = host(&srv, dir.path(), &["runs", "list"]);
    cmd.env("TIDEBASE_LEASE_MS", "9223372036854775807");
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TIDEBASE_LEASE_MS") && stderr.contains("between 100 and 86400000"),
        "{stderr}"
    );
}

/// `serve` refuses out-of-range settings at startup, naming the setting and
/// its range, instead of starting and panicking on the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_out_of_range_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    for (var, value) in [
        ("TIDEBASE_LEASE_MS", "9223372036854775807"),
        ("TIDEBASE_LEASE_MS", "9223372036854775"),
        ("TIDEBASE_LEASE_MS", "0"),
        ("TIDEBASE_RECONCILE_MS", "18446744073709551615"),
        ("TIDEBASE_WEBHOOK_TIMEOUT_MS", "-1"),
        ("TIDEBASE_WASM_WORKERS", "4294967296"),
        ("PORT", "70000"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidebase-host"))
            .args(["serve", "--bind", "127.0.0.1", "--database-url", &db])
            .env("TIDEBASE_RECONCILER", "0")
            .env(var, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a server that started anyway is killed and the test fails.
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("serve started with {var}={value}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_ne!(status.code(), Some(0), "{var}={value}: {stderr}");
        let named = var == "PORT" || stderr.contains(var);
        assert!(named && stderr.contains(value), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
