//! Routing: unknown paths are a JSON 404, known paths with another method a
//! JSON 405 listing the allowed ones; the OpenAPI document is served.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

backend_tests!(unknown_routes_and_methods_are_json);

async fn unknown_routes_and_methods_are_json(srv: TestServer) {
    let run = srv.create_run("routed").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = srv.detail(&run).await;
    let cases: Vec<(Method, String, u16)> = vec![
        (Method::GET, "/nope".into(), 404),
        (Method::POST, "/".into(), 405), // GET / is Studio
        (Method::GET, "/studio/".into(), 404),
        (Method::GET, "/runs/".into(), 404),
        (Method::POST, "/runs/".into(), 404),
        (Method::POST, "/runs".into(), 405),
        (Method::GET, "/health/".into(), 404),
        (Method::POST, "/health".into(), 405),
        (Method::DELETE, format!("/runs/{run}"), 405),
        (Method::PUT, format!("/runs/{run}"), 405),
        (Method::GET, format!("/runs/{run}/begin"), 405),
        (Method::GET, format!("/runs/{run}/complete"), 405),
        (Method::POST, format!("/runs/{run}/events"), 405),
        (Method::GET, format!("/runs/{run}/state"), 405),
        (Method::POST, format!("/runs/{run}/state"), 405),
        (Method::PUT, format!("/runs/{run}/steps/begin"), 405),
        (Method::GET, format!("/runs/{run}/steps/x"), 404),
        (Method::GET, format!("/runs/{run}/usage"), 405),
        (Method::POST, format!("/runs/{run}/begin/"), 404),
        (Method::POST, format!("/runs/{run}/a/b/c/d"), 404),
    ];
    for (method, path, status) in cases {
        let r = TestServer::send(srv.request(method.clone(), &path).json(&json!({}))).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(&path) && error.contains(method.as_str()),
            "{error}"
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("allow").is_some(),
            status == 405,
            "{method} {path}"
        );
    }
    assert_eq!(
        srv.detail(&run).await,
        before,
        "404s and 405s wrote nothing"
    );

    // HEAD is answered for GET routes, without a body.
    let r = TestServer::send(srv.request(Method::HEAD, &format!("/runs/{run}"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.text.is_empty());
    let (s, b) = srv.get("/health").await;
    assert_eq!((s, b), (200, json!({"ok": true})));

    let (s, doc) = srv.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/runs/{id}"]["post"].is_object());
}
