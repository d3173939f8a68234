//! Operator errors that help: each failure names its cause in one line of
//! text, quickly, and `serve` starts local-only with plain-text logs (or
//! JSON lines when asked).

use crate::cli::{output, text};
use crate::harness::TestServer;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidebase-host");

/// A command with no database or listener settings from the environment.
fn host(db_url: &str, data_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--database-url")
        .arg(db_url)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info");
    for var in ["DATABASE_URL", "PORT", "TIDEBASE_BIND", "TIDEBASE_DATA_DIR"] {
        cmd.env_remove(var);
    }
    cmd
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// The `error:` line, which must be the only line mentioning the error.
fn error_line(o: &Output) -> String {
    assert_ne!(o.status.code(), Some(0), "{}", stderr(o));
    let text = stderr(o);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line:\n{text}");
    assert!(!lines[0].contains('{'), "no JSON in the error: {text}");
    lines[0].to_string()
}

/// A refused connection and an unknown database fail within seconds,
/// naming the cause (the pool alone would retry for 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_fails_fast_with_the_cause() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://postgres@127.0.0.1:{closed_port}/x");
    let missing = crate::harness::database_url(&crate::harness::admin_url(), "tb_no_such_db");
    for (url, cause) in [
        (refused.as_str(), "connection refused"),
        (missing.as_str(), "does not exist"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let out = output(host(url, dir.path(), &["runs", "list"])).await;
        let line = error_line(&out);
        assert!(line.to_lowercase().contains(cause), "{url}: {line}");
        assert!(line.contains("cannot connect"), "{line}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{url}: took {:?}",
            started.elapsed()
        );
    }
}

/// `serve` on a port that is taken says which one.
async fn port_in_use_names_the_port(srv: TestServer) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = output(host(&srv.db_url, dir.path(), &["serve", "--port", &port])).await;
    let line = error_line(&out);
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(line.to_lowercase().contains("in use"), "{line}");
}

/// A file that is not wasm gets one line of text from `run`, `deploy` and
/// `POST /workflows`, not a dump of its bytes.
async fn non_wasm_files_get_one_line(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.wasm");
    std::fs::write(&file, "these are my notes, not a component\n".repeat(20)).unwrap();
    for verb in ["run", "deploy"] {
        let out = output(host(
            &srv.db_url,
            dir.path(),
            &[verb, file.to_str().unwrap()],
        ))
        .await;
        let line = error_line(&out);
        assert!(line.contains("not a WebAssembly file"), "{verb}: {line}");
        assert!(!line.contains("0x"), "{verb}: {line}");
    }
    let r = srv
        .request(reqwest::Method::POST, "/workflows/notes")
        .body(std::fs::read(&file).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("not a WebAssembly file") && !error.contains('\n'),
        "{error}"
    );
}

/// A refused operation reads as a sentence, not as the API's JSON body.
async fn cli_errors_are_sentences(srv: TestServer) {
    let id = srv.running_run("done", "w1").await;
    let (status, _) = srv
        .post(&format!("/runs/{id}/complete"), json!({"result": 1}))
        .await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let out = output(host(&srv.db_url, dir.path(), &["runs", "cancel", &id])).await;
    assert_eq!(error_line(&out), "error: run already completed");
}

/// `serve`'s stderr up to and including the first line containing `until`
/// (the process is stopped then).
async fn serve_stderr(srv: &TestServer, args: &[&str], until: &'static str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = host(
        &srv.db_url,
        dir.path(),
        &[&["serve", "--port", "0"], args].concat(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let done = line.contains(until);
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("serve started")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Without `--bind`, `serve` listens on 127.0.0.1 only, and its logs carry
/// no colour codes when stderr is not a terminal.
async fn serve_is_local_and_plain_by_default(srv: TestServer) {
    let lines = serve_stderr(&srv, &[], "serving on").await;
    let text = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("serving on http://127.0.0.1:")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("INFO")),
        "logs were written: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in piped logs: {text:?}"
    );
}

/// With `--log-format json` every line `serve` writes is one JSON object
/// with a level and fields, the first start's master-key notice included.
async fn serve_logs_json_lines(srv: TestServer) {
    let lines = serve_stderr(&srv, &["--log-format", "json"], "tidebase-host listening").await;
    assert!(
        lines.len() >= 2,
        "the key notice and the listening line: {lines:?}"
    );
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line:?}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
    }
    let listening = &lines.last().unwrap();
    let v: serde_json::Value = serde_json::from_str(listening).unwrap();
    assert!(
        v["fields"]["addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{v}"
    );
}

backend_tests!(
    port_in_use_names_the_port,
    cli_errors_are_sentences,
    serve_is_local_and_plain_by_default,
    serve_logs_json_lines,
    non_wasm_files_get_one_line = crate::harness::Opts::wasm(),
);
