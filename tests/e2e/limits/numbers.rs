//! Numbers out of range: body fields, query strings, token sums, cron steps.

use super::{busy_run, everything};
use crate::harness::*;
use crate::input::assert_invalid;
use reqwest::Method;
use serde_json::{Value, json};

/// Largest accepted token count: 2^53 − 1.
const MAX_TOKENS: i64 = (1 << 53) - 1;

backend_tests!(
    numbers_out_of_range_are_refused,
    token_counts_never_wrap,
    huge_cron_steps_fire_correctly,
);

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
