//! Input limits (docs/compatibility.md, "Input limits"): numbers out of
//! range, NUL characters, over-long names and non-http(s) URLs are a 400
//! naming the field, identical on Postgres and SQLite, and write nothing;
//! the server keeps serving. Also the CLI and environment bounds.

mod names;
mod numbers;
mod settings;
mod strings;
mod urls;

use crate::harness::*;
pub use crate::input::busy_run;
use reqwest::Method;
use serde_json::{Value, json};

/// Asserts a 400 from a path or query check, naming `param`.
pub async fn assert_param_refused(srv: &TestServer, method: Method, path: &str, param: &str) {
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
pub async fn everything(srv: &TestServer, run: &str) -> Value {
    let mut all = json!({});
    for path in ["/runs", "/queues", "/schedules"] {
        let (s, b) = srv.get(path).await;
        assert_eq!(s, 200, "{path}: {b}");
        all[path] = b;
    }
    all["detail"] = srv.detail(run).await;
    all
}
