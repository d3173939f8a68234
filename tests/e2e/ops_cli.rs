//! The operator surfaces in a terminal and for an AI assistant, through the
//! real binary: `--json` reads that equal the HTTP API's answers, readable
//! tables and summaries, `runs events --follow` streaming live, the MCP
//! server over stdio deciding a wasm run's gate, shell completions, and
//! refusals that say why.

use crate::cli::{host, output, text};
use crate::harness::*;
use crate::wasm::{deploy, start, wait_status, wait_suspended_at_gate};
use serde_json::{Value, json};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

backend_tests!(
    json_reads_equal_the_http_api,
    tables_and_summaries_read_well,
    events_follow_streams_new_events,
    mcp_session_decides_a_gate = Opts::wasm(),
    bad_operator_input_says_why
);

/// Longest wait for a line from a spawned CLI process.
const LINE_WAIT: Duration = Duration::from_secs(20);

/// `tidebase-host ARGS` on the test database; its stdout as JSON.
async fn cli_json(srv: &TestServer, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = output(host(srv, dir.path(), args)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", text(&out.stdout)))
}

async fn cli(srv: &TestServer, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    output(host(srv, dir.path(), args)).await
}

async fn http(srv: &TestServer, path: &str) -> Value {
    let (s, body) = srv.get(path).await;
    assert_eq!(s, 200, "{path}: {body}");
    body
}

/// Runs in every state the lists show: completed, running at a pending
/// gate, pending, queued; and a decided gate. Returns the gated run's id.
async fn some_runs(srv: &TestServer) -> String {
    let done = srv.running_run("billing", "w").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{done}/complete"),
            json!({"result": {"ok": true}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let decided = srv.running_run("billing", "w").await;
    let (_, b) = srv
        .post(
            &format!("/runs/{decided}/gates/begin"),
            json!({"name": "refund", "prompt": "Refund?"}),
        )
        .await;
    let token = b["gate"]["resolveToken"].clone();
    let (s, b) = srv
        .post(
            &format!("/runs/{decided}/gates/{}/resolve", id(&b["gate"])),
            json!({"token": token, "decision": "rejected", "actor": "ops"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    srv.create_run("report").await;
    let (s, b) = srv
        .post("/queues/nightly/enqueue", json!({"workflowName": "report"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let gated = srv.running_run("payouts", "w").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{gated}/gates/begin"),
            json!({"name": "approve", "prompt": "Pay out 120 EUR?", "data": {"amount": 120}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    gated
}

/// Every read verb's `--json` parses and equals what HTTP answers for the
/// same question, filters and pages included.
async fn json_reads_equal_the_http_api(srv: TestServer) {
    let gated = some_runs(&srv).await;
    pin_to_component(&srv, "report").await;
    pin_to_component(&srv, "report").await;
    pin_to_component(&srv, "payouts").await;

    for (args, path) in [
        (
            vec!["runs", "list", "--json"],
            "/runs?limit=100".to_string(),
        ),
        (
            vec![
                "runs",
                "list",
                "--json",
                "--status",
                "running,completed",
                "--workflow",
                "billing",
            ],
            "/runs?status=running,completed&workflow=billing".into(),
        ),
        (
            vec!["runs", "list", "--json", "--queue", "nightly"],
            "/runs?queue=nightly".into(),
        ),
        (
            vec!["runs", "list", "--json", "--search", &gated[8..16]],
            format!("/runs?q={}", &gated[8..16]),
        ),
        (
            vec!["runs", "get", &gated, "--json"],
            format!("/runs/{gated}"),
        ),
        (vec!["gates", "list", "--json"], "/gates?status=all".into()),
        (
            vec!["gates", "list", "--pending", "--json"],
            "/gates".into(),
        ),
        (
            vec!["gates", "list", "--status", "resolved", "--json"],
            "/gates?status=resolved".into(),
        ),
        (vec!["workflows", "list", "--json"], "/workflows".into()),
    ] {
        assert_eq!(
            cli_json(&srv, &args).await,
            http(&srv, &path).await,
            "{args:?} vs {path}"
        );
    }
    let runs = http(&srv, "/runs").await["runs"].as_array().unwrap().len();
    assert_eq!(runs, 5);
    let deployments = http(&srv, "/workflows").await["deployments"].clone();
    assert!(deployments.as_array().unwrap().len() >= 2, "{deployments}");

    // Pages: the CLI's cursor is the API's.
    let first = cli_json(&srv, &["runs", "list", "--json", "--limit", "2"]).await;
    assert_eq!(first, http(&srv, "/runs?limit=2").await);
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = cli_json(
        &srv,
        &[
            "runs", "list", "--json", "--limit", "2", "--before", &cursor,
        ],
    )
    .await;
    assert_eq!(
        second,
        http(&srv, &format!("/runs?limit=2&before={cursor}")).await
    );

    // Events as JSON lines are the run's log.
    let out = cli(&srv, &["runs", "events", &gated, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(Value::Array(lines), srv.detail(&gated).await["events"]);
}

/// Without `--json`: `runs list` has a header and says which gate a run
/// waits at; `gates list --pending` lists the waiting gate; `runs get` is a
/// short summary; every path printed is absolute.
async fn tables_and_summaries_read_well(srv: TestServer) {
    let gated = some_runs(&srv).await;
    let out = cli(&srv, &["runs", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in ["ID", "STATUS", "CREATED", "WORKFLOW", "QUEUE", "NOTE"] {
        assert!(header.contains(column), "{header}");
    }
    let gated_line = lines
        .clone()
        .find(|l| l.starts_with(&gated))
        .expect("the gated run");
    assert!(
        gated_line.contains("waiting at gate approve"),
        "{gated_line}"
    );
    assert_eq!(lines.count(), 5, "{table}");
    let filtered = text(
        &cli(&srv, &["runs", "list", "--status", "queued"])
            .await
            .stdout,
    );
    assert_eq!(
        filtered.lines().count(),
        2,
        "header and the queued run:\n{filtered}"
    );
    assert!(filtered.contains("nightly"), "{filtered}");

    let out = cli(&srv, &["gates", "list", "--pending"]).await;
    let gates = text(&out.stdout);
    assert!(gates.lines().next().unwrap().contains("PROMPT"), "{gates}");
    assert_eq!(gates.lines().count(), 2, "{gates}");
    assert!(
        gates.contains(&gated) && gates.contains("Pay out 120 EUR?"),
        "{gates}"
    );
    assert!(text(&out.stderr).contains(&format!("gates approve|reject {gated} approve")));
    let all = text(&cli(&srv, &["gates", "list"]).await.stdout);
    assert!(all.contains("rejected by ops"), "{all}");

    let summary = cli(&srv, &["runs", "get", &gated]).await;
    let page = text(&summary.stdout);
    let full = cli_json(&srv, &["runs", "get", &gated, "--json"]).await;
    assert!(
        page.starts_with(&format!("run {gated}  workflow payouts")),
        "{page}"
    );
    assert!(
        page.contains("approve") && page.contains("pending"),
        "{page}"
    );
    assert!(
        page.len() < full.to_string().len(),
        "a summary, not the dump:\n{page}"
    );

    let store = text(&summary.stderr);
    let line = store
        .lines()
        .find(|l| l.starts_with("store: "))
        .expect("store line");
    if srv.backend == Backend::Sqlite {
        assert!(line.contains("sqlite:///"), "absolute SQLite path: {line}");
    }
}

/// Reads lines until one contains `needle`, within [`LINE_WAIT`].
async fn line_with(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> String {
    let found = tokio::time::timeout(LINE_WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("stdout ended before a line with {needle:?}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no line with {needle:?} within {LINE_WAIT:?}"))
}

fn spawn(srv: &TestServer, dir: &std::path::Path, args: &[&str]) -> Child {
    let mut cmd = tokio::process::Command::from(host(srv, dir, args));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tidebase-host")
}

/// `runs events --follow`, started before an event happens, prints it as
/// it is committed, and ends by itself once the run completes.
async fn events_follow_streams_new_events(srv: TestServer) {
    let run = srv.running_run("follow-me", "w").await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(&srv, dir.path(), &["runs", "events", &run, "--follow"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = line_with(&mut lines, "run.created").await;
    assert!(first.contains("#1"), "{first}");
    line_with(&mut lines, "run.started").await;

    let (s, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "late", "prompt": "after the CLI started"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let gate = line_with(&mut lines, "gate.created").await;
    assert!(gate.contains("gate late pending"), "{gate}");

    let (s, b) = srv
        .post(&format!("/runs/{run}/complete"), json!({"result": 7}))
        .await;
    assert_eq!(s, 200, "{b}");
    let done = line_with(&mut lines, "run.completed").await;
    assert!(done.contains("result 7"), "{done}");
    let status = tokio::time::timeout(LINE_WAIT, child.wait())
        .await
        .expect("--follow ends once the run completed")
        .unwrap();
    assert!(status.success());
}

/// One MCP client session over stdio: one request per line, one answer per
/// line with the request's id.
struct Mcp {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: i64,
}

impl Mcp {
    async fn send(&mut self, message: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let line = tokio::time::timeout(LINE_WAIT, self.lines.next_line())
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("an answer line");
        let answer: Value = serde_json::from_str(&line).expect("JSON-RPC answer");
        assert_eq!(
            (answer["jsonrpc"].as_str(), answer["id"].as_i64()),
            (Some("2.0"), Some(id)),
            "{answer}"
        );
        answer
    }

    /// `tools/call`'s result: the JSON of its text content, and `isError`.
    async fn call(&mut self, tool: &str, arguments: Value) -> (Value, bool) {
        let answer = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        let result = &answer["result"];
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        let is_error = result["isError"].as_bool().unwrap();
        let body = serde_json::from_str(text).unwrap_or_else(|_| json!(text));
        (body, is_error)
    }
}

/// An assistant's session: initialize, list tools and runs, list the
/// pending gates (a wasm run parked at its approval gate), approve it as a
/// named actor with a note; the run resumes and completes, and the gate
/// records the actor and note.
async fn mcp_session_decides_a_gate(srv: TestServer) {
    deploy(&srv, "report", tidebase_fixtures::REPORT, "").await;
    let run = start(&srv, "report", json!({"topic": "mcp"})).await;
    wait_suspended_at_gate(&srv, &run).await;

    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(&srv, dir.path(), &["mcp"]);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut mcp = Mcp {
        child,
        lines,
        next_id: 0,
    };

    let init = mcp
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "e2e", "version": "1"}}),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "tidebase-host");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    assert_eq!(mcp.request("ping", json!({})).await["result"], json!({}));

    let tools = mcp.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "list_runs",
            "get_run",
            "run_events",
            "list_pending_gates",
            "resolve_gate"
        ]
    );

    let (runs, is_error) = mcp.call("list_runs", json!({"workflow": "report"})).await;
    assert!(!is_error);
    assert_eq!(runs, http(&srv, "/runs?workflow=report").await);
    let (events, _) = mcp
        .call("run_events", json!({"runId": run, "limit": 2}))
        .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    assert_eq!(events["events"][0]["type"], "run.created");

    let (pending, _) = mcp.call("list_pending_gates", json!({})).await;
    assert_eq!(pending, http(&srv, "/gates").await);
    let gate = &pending["gates"][0];
    assert_eq!(
        (gate["runId"].as_str(), gate["workflowName"].as_str()),
        (Some(run.as_str()), Some("report"))
    );
    let name = gate["name"].as_str().unwrap().to_string();

    let (decided, is_error) = mcp
        .call(
            "resolve_gate",
            json!({"runId": run, "gate": name, "decision": "approve",
                   "actor": "dana@example.com", "note": "sources look fine"}),
        )
        .await;
    assert!(!is_error, "{decided}");
    assert_eq!(decided["gate"]["status"], "approved");
    assert!(decided["gate"].get("resolveToken").is_none());

    let done = wait_status(&srv, &run, "completed").await;
    assert_eq!(done["run"]["result"]["approvedBy"], "dana@example.com");
    let recorded = &done["gates"][0];
    assert_eq!(recorded["actor"], "dana@example.com");
    assert_eq!(
        recorded["decisionPayload"],
        json!({"note": "sources look fine"})
    );
    let (pending, _) = mcp.call("list_pending_gates", json!({})).await;
    assert_eq!(pending["gates"], json!([]));

    // Refusals: a decided gate is a tool error the assistant reads; an
    // unknown tool or a missing actor is a protocol error.
    let (again, is_error) = mcp
        .call(
            "resolve_gate",
            json!({"runId": run, "gate": name, "decision": "reject", "actor": "x"}),
        )
        .await;
    assert!(is_error);
    assert!(
        again.as_str().unwrap().contains("already approved"),
        "{again}"
    );
    let unknown = mcp
        .request("tools/call", json!({"name": "drop_db", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
    let no_actor = mcp
        .request("tools/call", json!({"name": "resolve_gate",
                                       "arguments": {"runId": run, "gate": name, "decision": "approve"}}))
        .await;
    assert_eq!(no_actor["error"]["code"], -32602);
    assert!(
        no_actor["error"]["message"]
            .as_str()
            .unwrap()
            .contains("actor")
    );
    let missing = mcp.request("resources/list", json!({})).await;
    assert_eq!(missing["error"]["code"], -32601);

    drop(mcp.child.stdin.take());
    let status = tokio::time::timeout(LINE_WAIT, mcp.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "mcp exits when its input ends");
}

/// Bad flags and unknown runs fail with a one-line reason and a non-zero
/// exit.
async fn bad_operator_input_says_why(srv: TestServer) {
    for (args, needle) in [
        (vec!["runs", "list", "--status", "done"], "possible values"),
        (vec!["runs", "list", "--since", "yesterday"], "ISO 8601"),
        (vec!["runs", "list", "--limit", "0"], "between 1 and 200"),
        (vec!["gates", "list", "--status", "open"], "possible values"),
        (vec!["runs", "get", "run_nosuch"], "run not found"),
        (
            vec!["runs", "events", "run_nosuch", "--follow"],
            "run not found",
        ),
    ] {
        let out = cli(&srv, &args).await;
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// Completions for each shell name the binary and its verbs; an unknown
/// shell is refused.
#[tokio::test]
async fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidebase-host"));
        cmd.args(["completions", shell]);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains("tidebase-host") && script.contains("workflows"),
            "{shell}"
        );
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidebase-host"));
    cmd.args(["completions", "tcsh"]);
    let out = output(cmd).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("possible values"));
}

/// A read verb from a directory with no store warns, with the absolute
/// path, before creating an empty one; the next run finds it and does not.
#[tokio::test]
async fn a_new_store_is_announced_with_its_absolute_path() {
    let cwd = tempfile::tempdir().unwrap();
    let run = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidebase-host"));
        cmd.args(["runs", "list"])
            .current_dir(cwd.path())
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("TIDEBASE_DATA_DIR");
        output(cmd)
    };
    let file = cwd
        .path()
        .canonicalize()
        .unwrap()
        .join(".tidebase/tidebase.db");
    let first = run().await;
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: no store at {}; creating an empty one",
            file.display()
        )),
        "{stderr}"
    );
    assert!(file.exists());
    let second = text(&run().await.stderr);
    assert!(!second.contains("warning"), "{second}");
    assert!(
        second.contains(&format!("sqlite://{}", file.display())),
        "{second}"
    );
}
