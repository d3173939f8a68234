//! Routing: unknown paths and wrong methods are a plain-text 404.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

backend_tests!(unknown_routes_are_plain_text_404);

async fn unknown_routes_are_plain_text_404(srv: TestServer) {
    let run = srv.create_run("routed").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = srv.detail(&run).await;
    let cases: Vec<(Method, String)> = vec![
        (Method::GET, "/nope".into()),
        (Method::GET, "/".into()),
        (Method::GET, "/runs/".into()),
        (Method::POST, "/runs/".into()),
        (Method::POST, "/runs".into()),
        (Method::GET, "/health/".into()),
        (Method::POST, "/health".into()),
        (Method::DELETE, format!("/runs/{run}")),
        (Method::PUT, format!("/runs/{run}")),
        (Method::GET, format!("/runs/{run}/begin")),
        (Method::GET, format!("/runs/{run}/complete")),
        (Method::POST, format!("/runs/{run}/events")),
        (Method::GET, format!("/runs/{run}/state")),
        (Method::POST, format!("/runs/{run}/state")),
        (Method::PUT, format!("/runs/{run}/steps/begin")),
        (Method::GET, format!("/runs/{run}/steps/x")),
        (Method::GET, format!("/runs/{run}/usage")),
        (Method::POST, format!("/runs/{run}/begin/")),
        (Method::POST, format!("/runs/{run}/a/b/c/d")),
    ];
    for (method, path) in cases {
        let r = TestServer::send(srv.request(method.clone(), &path).json(&json!({}))).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=UTF-8"),
            "{method} {path}"
        );
        assert_eq!(r.text, "404 Not Found", "{method} {path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    assert_eq!(srv.detail(&run).await, before, "404s wrote nothing");

    // HEAD is answered for GET routes, without a body.
    let r = TestServer::send(srv.request(Method::HEAD, &format!("/runs/{run}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.text.is_empty());
    let (s, b) = srv.get("/health").await;
    assert_eq!((s, b), (200, json!({"ok": true})));
}
