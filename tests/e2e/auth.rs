//! API-key authentication, CORS preflight.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

const KEY: &str = "s3cret-key";

backend_tests!(
    every_route_but_health_requires_the_key = Opts::api_key(KEY),
    cors_preflight_needs_no_key = Opts::api_key(KEY),
    cors_origin_can_be_one_origin = Opts {
        cors_origin: ORIGIN.into(),
        ..Opts::api_key(KEY)
    }
);

const ORIGIN: &str = "https://app.example";

async fn every_route_but_health_requires_the_key(srv: TestServer) {
    let run = srv.running_run("guarded", "w").await;
    let (s, g) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "g", "prompt": "p"}),
        )
        .await;
    assert_eq!(s, 200);
    let gate = g["gate"]["id"].as_str().unwrap().to_string();
    let step = "step_00000000000000000000000000000000";
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/runs/wf".into()),
        (Method::GET, "/runs".into()),
        (Method::GET, format!("/runs/{run}")),
        (Method::HEAD, format!("/runs/{run}")),
        (Method::POST, format!("/runs/{run}/begin")),
        (Method::POST, format!("/runs/{run}/heartbeat")),
        (Method::POST, format!("/runs/{run}/complete")),
        (Method::POST, format!("/runs/{run}/fail")),
        (Method::POST, format!("/runs/{run}/cancel")),
        (Method::POST, format!("/runs/{run}/children")),
        (Method::POST, format!("/runs/{run}/steps/begin")),
        (Method::POST, format!("/runs/{run}/steps/{step}/complete")),
        (Method::POST, format!("/runs/{run}/steps/{step}/fail")),
        (Method::POST, format!("/runs/{run}/gates/begin")),
        (Method::GET, format!("/runs/{run}/gates/{gate}")),
        (Method::POST, format!("/runs/{run}/gates/{gate}/resolve")),
        (Method::PUT, format!("/runs/{run}/state")),
        (Method::PATCH, format!("/runs/{run}/state")),
        (Method::POST, format!("/runs/{run}/state/save")),
        (Method::GET, format!("/runs/{run}/state/versions")),
        (Method::POST, format!("/runs/{run}/snapshots")),
        (Method::GET, format!("/runs/{run}/snapshots")),
        (Method::POST, format!("/runs/{run}/usage")),
        (Method::GET, format!("/runs/{run}/events")),
        // Unknown routes: auth runs first.
        (Method::GET, "/nope".into()),
        (Method::DELETE, format!("/runs/{run}")),
        // ?token= is only honoured on the event stream.
        (Method::GET, format!("/runs/{run}?token={KEY}")),
        (Method::POST, format!("/runs/{run}/cancel?token={KEY}")),
    ];
    let before = srv.detail(&run).await;
    let bad_headers: Vec<Option<String>> = vec![
        None,
        Some(format!("bearer {KEY}")),
        Some(format!("Bearer {KEY}x")),
        Some("Bearer wrong".into()),
        Some(KEY.into()),
        Some(format!("Bearer  {KEY}")),
        Some("Bearer ".into()),
    ];
    for (method, path) in &routes {
        for header in &bad_headers {
            let mut rb = srv
                .bare(method.clone(), path)
                .json(&json!({"name": "x", "workflowName": "w"}));
            if let Some(h) = header {
                rb = rb.header("authorization", h);
            }
            let r = TestServer::send(rb).await;
            assert_eq!(r.status, 401, "{method} {path} with {header:?}: {}", r.text);
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            if *method != Method::HEAD {
                assert_eq!(
                    r.json(),
                    json!({"error": "unauthorized"}),
                    "{method} {path}"
                );
                assert_eq!(r.header("content-type"), Some("application/json"));
            }
        }
    }
    assert_eq!(
        srv.detail(&run).await,
        before,
        "rejected requests wrote nothing"
    );

    // /health is open for every method (v0.7): other methods are the JSON
    // 405 of any known path, never a 401.
    let r = TestServer::send(srv.bare(Method::GET, "/health")).await;
    assert_eq!((r.status, r.json()), (200, json!({"ok": true})));
    let r = TestServer::send(srv.bare(Method::HEAD, "/health")).await;
    assert_eq!(r.status, 200);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = TestServer::send(srv.bare(method.clone(), "/health")).await;
        assert_eq!(r.status, 405, "{method} /health without a key");
        assert_eq!(r.header("allow"), Some("GET,HEAD"), "{method} /health");
    }

    // The correct key works; an unknown route with the key is a JSON 404.
    let r = TestServer::send(
        srv.bare(Method::GET, &format!("/runs/{run}"))
            .header("authorization", format!("Bearer {KEY}")),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = TestServer::send(
        srv.bare(Method::GET, "/nope")
            .header("authorization", format!("Bearer {KEY}")),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no route for GET /nope");

    // The event stream accepts ?token= instead of the header ...
    let events = format!("/runs/{run}/events");
    let mut sse =
        crate::events::Sse::open(srv.bare(Method::GET, &format!("{events}?token={KEY}"))).await;
    assert_eq!(sse.next_event().await["type"], "run.created");
    let mut sse =
        crate::events::Sse::open(srv.bare(Method::GET, &format!("{events}?after=1&token={KEY}")))
            .await;
    assert_eq!(sse.next_event().await["seq"], 2);
    let mut sse = crate::events::Sse::open(
        srv.bare(Method::GET, &events)
            .header("authorization", format!("Bearer {KEY}")),
    )
    .await;
    assert_eq!(sse.next_event().await["seq"], 1);
    // ... but a present (wrong) bearer header takes precedence, and a wrong token fails.
    let r = TestServer::send(
        srv.bare(Method::GET, &format!("{events}?token={KEY}"))
            .header("authorization", "Bearer wrong"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (401, json!({"error": "unauthorized"}))
    );
    let r = TestServer::send(srv.bare(Method::GET, &format!("{events}?token=wrong"))).await;
    assert_eq!(r.status, 401);
}

async fn cors_preflight_needs_no_key(srv: TestServer) {
    for path in ["/runs/wf", "/runs/x/steps/begin", "/nope", "/health"] {
        let r = TestServer::send(
            srv.bare(Method::OPTIONS, path)
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
        )
        .await;
        assert_eq!(r.status, 204, "preflight {path}: {}", r.text);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET,HEAD,PUT,POST,DELETE,PATCH")
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("authorization,content-type")
        );
        assert_eq!(r.header("vary"), Some("Access-Control-Request-Headers"));
        assert!(r.header("access-control-allow-credentials").is_none());
        assert!(r.header("access-control-max-age").is_none());
        assert!(r.text.is_empty());
    }
    // Normal responses carry the origin header too.
    let (s, _) = srv.get("/runs").await;
    assert_eq!(s, 200);
    let r = TestServer::send(
        srv.request(Method::GET, "/runs")
            .header("origin", "https://a.example"),
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None, "any origin: nothing varies");
}

/// `TIDEBASE_CORS_ORIGIN` (v0.7): only that exact origin is allowed, and
/// every response varies by `Origin`.
async fn cors_origin_can_be_one_origin(srv: TestServer) {
    for (from, allowed) in [
        (Some(ORIGIN), Some(ORIGIN)),
        (Some("https://evil.example"), None),
        (Some("https://app.example.evil"), None),
        (None, None),
    ] {
        let mut preflight = srv
            .bare(Method::OPTIONS, "/runs/wf")
            .header("access-control-request-method", "POST");
        let mut get = srv.request(Method::GET, "/runs");
        let mut denied = srv.bare(Method::GET, "/runs");
        if let Some(from) = from {
            preflight = preflight.header("origin", from);
            get = get.header("origin", from);
            denied = denied.header("origin", from);
        }
        let r = TestServer::send(preflight).await;
        assert_eq!(r.status, 204, "preflight from {from:?} needs no key");
        assert_eq!(r.header("access-control-allow-origin"), allowed, "{from:?}");
        assert_eq!(r.header("vary"), Some("Origin"));
        for (r, status) in [
            (TestServer::send(get).await, 200),
            (TestServer::send(denied).await, 401),
        ] {
            assert_eq!(r.status, status);
            assert_eq!(r.header("access-control-allow-origin"), allowed, "{from:?}");
            let vary: Vec<&str> = r
                .headers
                .get_all("vary")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(vary.contains(&"Origin"), "{vary:?}");
        }
    }
}
