//! Exactly-once host calls of wasm runs: state, usage and log calls made
//! outside steps are recorded once per run however often the run is
//! re-activated (gate resumes, crash and resume, takeover); a resume after a
//! gate is not a new attempt; a gate timeout is a durable decision; a panic
//! in the host fails the run instead of leaving it looking alive.

use crate::cli::{host, output, run_id_in, run_no_wait, text};
use crate::harness::{Opts, TestServer, assert_gap_free, count_events};
use crate::wasm::{deploy, resolve, start, step, wait_for, wait_status, wait_suspended_at_gate};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tidebase_host::engine::MAX_GATE_TIMEOUT_MS;

fn list<'a>(detail: &'a Value, key: &str) -> &'a Vec<Value> {
    detail[key].as_array().unwrap()
}

/// Usage records by label, and the ledger's token total.
fn usage_labels(detail: &Value) -> (Vec<String>, i64) {
    let usage = list(detail, "usage");
    let mut labels: Vec<String> = usage
        .iter()
        .map(|u| u["label"].as_str().unwrap().to_string())
        .collect();
    labels.sort();
    let total = usage
        .iter()
        .map(|u| u["totalTokens"].as_i64().unwrap())
        .sum();
    (labels, total)
}

/// How many `log` events carry `message`.
fn logged(detail: &Value, message: &str) -> usize {
    list(detail, "events")
        .iter()
        .filter(|e| e["type"] == "log" && e["payload"]["message"] == message)
        .count()
}

/// Versions of the run's `run` state stream, in order.
fn run_versions(detail: &Value) -> Vec<i64> {
    let stream = list(detail, "stateStreams")
        .iter()
        .find(|s| s["name"] == "run")
        .expect("a run stream")["id"]
        .clone();
    list(detail, "stateVersions")
        .iter()
        .filter(|v| v["streamId"] == stream)
        .map(|v| v["version"].as_i64().unwrap())
        .collect()
}

fn events_of(detail: &Value, kind: &str) -> usize {
    count_events(list(detail, "events"), kind)
}

/// What a `stages` run with `stages` gates, all decided, leaves behind:
/// every outside-step call exactly once.
fn assert_recorded_once(d: &Value, stages: i64) {
    assert_gap_free(list(d, "events"));
    let mut labels = vec!["estimate".to_string(), "intake".to_string()];
    labels.extend((1..=stages).map(|i| format!("stage-{i}")));
    labels.sort();
    let (got, total) = usage_labels(d);
    assert_eq!(got, labels, "usage records");
    assert_eq!(total, 120 + 350 + 15 * stages, "usage token total");
    let versions: Vec<i64> = (1..=stages + 2).collect();
    assert_eq!(run_versions(d), versions, "state versions");
    assert_eq!(
        d["run"]["result"]["versions"],
        json!(versions),
        "replayed state writes answer their recorded versions"
    );
    assert_eq!(events_of(d, "state.updated") as i64, stages + 1);
    assert_eq!(events_of(d, "state.saved"), 1);
    assert_eq!(events_of(d, "usage.recorded") as i64, stages + 2);
    assert_eq!(logged(d, "request received"), 1);
    assert_eq!(logged(d, "all stages passed"), 1);
    for i in 1..=stages {
        assert_eq!(logged(d, &format!("waiting for stage {i}")), 1, "stage {i}");
    }
    assert_eq!(events_of(d, "log") as i64, stages + 2, "no other log line");
    assert_eq!(d["run"]["result"]["before"], Value::Null, "a replayed read");
}

/// A run parked at three gates and resumed three times records its
/// outside-step state, usage and log calls once, and stays on attempt 1.
async fn gate_resumes_record_outside_calls_once(srv: TestServer) {
    deploy(&srv, "stages", tidebase_fixtures::STAGES, "").await;
    let id = start(&srv, "stages", json!({"stages": 3})).await;
    for i in 1..=3 {
        let gate = wait_suspended_at_gate(&srv, &id).await;
        assert_eq!(gate["name"], format!("stage-{i}"));
        let (status, body) = resolve(&srv, &id, &gate, "approved").await;
        assert_eq!(status, 200, "{body}");
    }
    let d = wait_status(&srv, &id, "completed").await;
    assert_recorded_once(&d, 3);
    assert_eq!(
        d["run"]["result"]["outcomes"],
        json!(["approved", "approved", "approved"])
    );
    assert_eq!(d["run"]["result"]["after"], json!({"phase": "stage 3"}));
    assert_eq!(d["run"]["attempt"], 1, "resuming is not a new attempt");
    assert_eq!(
        (events_of(&d, "run.started"), events_of(&d, "run.resumed")),
        (1, 3)
    );
}

/// A gate that times out is decided by the engine: the gate row is final,
/// a later approval is refused, and a resume after a later failure takes
/// the timeout branch again.
async fn gate_timeout_is_a_durable_decision(srv: TestServer) {
    deploy(&srv, "stages", tidebase_fixtures::STAGES, "").await;
    let input = json!({"stages": 1, "timeoutMs": 200, "crashAfter": "escalate"});
    let id = start(&srv, "stages", input).await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(d["run"]["failureClass"], "trap", "{}", d["run"]["error"]);
    let gate = list(&d, "gates")[0].clone();
    assert_eq!(
        (gate["status"].as_str(), gate["decision"].as_str()),
        (Some("timed_out"), Some("timed_out"))
    );
    let (status, body) = resolve(&srv, &id, &gate, "approved").await;
    assert_eq!(status, 409, "a late approval was accepted: {body}");

    srv.engine.reopen_run(&id).await.unwrap();
    let d = wait_status(&srv, &id, "completed").await;
    assert_eq!(d["run"]["result"]["outcomes"], json!(["timed_out"]));
    assert_eq!(list(&d, "gates")[0]["status"], "timed_out");
    assert_eq!(step(&d, "escalate-1")["attempt"], 1, "escalation replayed");
    assert_eq!(events_of(&d, "gate.resolved"), 1);
    assert_recorded_once(&d, 1);
    assert_eq!(
        (d["run"]["attempt"].as_i64(), events_of(&d, "run.started")),
        (Some(2), 2),
        "the resume after the failure is a new attempt"
    );
}

/// `timeoutMs` is range-checked once, by the engine: over HTTP a 400 names
/// it; a wasm guest asking for an unrepresentable timeout fails its run with
/// that reason and holds no lease. SDK-driven runs keep v0.5's semantics:
/// the timeout is not enforced by the server.
async fn gate_timeouts_are_range_checked(srv: TestServer) {
    let sdk = srv.running_run("sdk-flow", "w1").await;
    let path = format!("/runs/{sdk}/gates/begin");
    for bad in [json!(i64::MAX), json!(MAX_GATE_TIMEOUT_MS + 1)] {
        let body = json!({"name": "g", "prompt": "p", "timeoutMs": bad});
        let (status, res) = srv.post(&path, body).await;
        assert_eq!(status, 400, "timeoutMs {bad}: {res}");
        let error = res["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("timeoutMs") && error.contains(&MAX_GATE_TIMEOUT_MS.to_string()),
            "timeoutMs {bad}: {res}"
        );
    }
    // Not positive: v0.5's validation issue on `timeoutMs`.
    let body = json!({"name": "g", "prompt": "p", "timeoutMs": 0});
    let (status, res) = srv.post(&path, body).await;
    assert_eq!(
        (status, &res["issues"][0]["path"]),
        (400, &json!(["timeoutMs"]))
    );
    let body = json!({"name": "g", "prompt": "p", "timeoutMs": 1});
    let (status, res) = srv.post(&path, body).await;
    assert_eq!(status, 200, "{res}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, res) = resolve(&srv, &sdk, &res["gate"], "approved").await;
    assert_eq!(
        status, 200,
        "an SDK gate past its timeoutMs stays open: {res}"
    );

    deploy(&srv, "stages", tidebase_fixtures::STAGES, "").await;
    for timeout in [u64::MAX, i64::MAX as u64] {
        let input = json!({"stages": 1, "timeoutMs": timeout});
        let id = start(&srv, "stages", input).await;
        let d = wait_status(&srv, &id, "failed").await;
        let message = d["run"]["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("timeoutMs"), "{}", d["run"]["error"]);
        assert!(d["run"]["leaseOwner"].is_null());
        assert!(list(&d, "gates").is_empty());
    }
}

backend_tests!(
    gate_resumes_record_outside_calls_once = Opts::wasm(),
    gate_timeout_is_a_durable_decision = Opts::wasm(),
    gate_timeouts_are_range_checked = Opts::wasm(),
);

/// A panic in the host while it runs an activation (here in the progress
/// callback a worker reports to) fails that run with class `host_panic` and
/// releases it; the worker goes on running other runs.
async fn host_panic_fails_the_run(srv: TestServer) {
    let config = tidebase_host::runtime::RuntimeConfig {
        instances: 2,
        ..Default::default()
    };
    let runtime = Arc::new(tidebase_host::runtime::Runtime::new(config).unwrap());
    let bytes = std::fs::read(tidebase_fixtures::STAGES).unwrap();
    srv.engine
        .clone()
        .with_component_check(runtime.clone())
        .deploy("stages", &bytes, Default::default())
        .await
        .unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    let trigger = armed.clone();
    let progress = Arc::new(move |line: &str| {
        if line.contains("request received") && trigger.swap(false, Ordering::SeqCst) {
            panic!("progress reporter broke");
        }
    });
    let worker =
        tidebase_host::worker::Worker::new(srv.engine.clone(), runtime, 2).with_progress(progress);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run(stopped));

    let id = start(&srv, "stages", json!({})).await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(
        d["run"]["failureClass"], "host_panic",
        "{}",
        d["run"]["error"]
    );
    assert_eq!(d["run"]["error"]["name"], "HostPanic");
    assert!(
        d["run"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("progress reporter broke")),
        "{}",
        d["run"]["error"]
    );
    assert!(
        d["run"]["leaseOwner"].is_null(),
        "the dead run keeps a lease"
    );
    assert!(!armed.load(Ordering::SeqCst));

    let next = start(&srv, "stages", json!({})).await;
    wait_status(&srv, &next, "completed").await;
    let d = srv.detail(&id).await;
    assert_eq!(
        (d["run"]["status"].as_str(), d["run"]["leaseOwner"].as_str()),
        (Some("failed"), None),
        "nothing revived the failed run"
    );
    let _ = stop.send(true);
    task.await.unwrap();
}

backend_tests!(host_panic_fails_the_run);

/// `tidebase-host run` of `stages` with `input`; returns the run id.
async fn cli_run(srv: &TestServer, dir: &std::path::Path, input: Value, code: i32) -> String {
    let input = input.to_string();
    let out = output(host(
        srv,
        dir,
        &["run", tidebase_fixtures::STAGES, "--input", &input],
    ))
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    run_id_in(&stderr)
}

/// `tidebase-host run --run-id` of `stages`; returns its result.
async fn cli_resume(
    srv: &TestServer,
    dir: &std::path::Path,
    run_id: &str,
    extra: &[&str],
) -> Value {
    let mut args = vec!["run", tidebase_fixtures::STAGES, "--run-id", run_id];
    args.extend(extra);
    let out = output(host(srv, dir, &args)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("result JSON on stdout")
}

/// A guest crash after outside-step calls, then `--run-id`: the resumed
/// execution replays those calls instead of making them again. The resume
/// is a new attempt.
async fn crash_resume_records_outside_calls_once(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let input = json!({"crashAfter": "estimate"});
    let id = cli_run(&srv, dir.path(), input, 1).await;
    let before = srv.detail(&id).await;
    assert_eq!(before["run"]["failureClass"], "trap");
    assert_eq!(logged(&before, "request received"), 1);

    let result = cli_resume(&srv, dir.path(), &id, &[]).await;
    assert_eq!(result["versions"], json!([1, 2]));
    let d = srv.detail(&id).await;
    assert_recorded_once(&d, 0);
    assert_eq!(
        (d["run"]["attempt"].as_i64(), events_of(&d, "run.started")),
        (Some(2), 2)
    );
}

/// The process running a run is killed while it holds the lease; `--run-id
/// --takeover` finishes the run, replaying the outside-step calls the dead
/// process made.
async fn takeover_records_outside_calls_once(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let input = json!({"holdMs": 3000}).to_string();
    let mut child = host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::STAGES, "--input", &input],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn run");
    let id = loop {
        let (_, runs) = srv.get("/runs").await;
        if let Some(r) = runs["runs"].as_array().unwrap().first() {
            break r["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Killed in the `hold` step, after the first outside-step calls.
    let d = wait_for(&srv, &id, "the first log line", |d| {
        logged(d, "request received") == 1
    })
    .await;
    assert!(!d["run"]["leaseOwner"].is_null());
    child.kill().expect("kill run process");
    child.wait().unwrap();

    let result = cli_resume(&srv, dir.path(), &id, &["--takeover"]).await;
    assert_eq!(result["versions"], json!([1, 2]));
    let d = srv.detail(&id).await;
    assert_recorded_once(&d, 0);
    assert_eq!(step(&d, "hold")["attempt"], 1);
    assert_eq!(
        (d["run"]["attempt"].as_i64(), events_of(&d, "run.started")),
        (Some(2), 2),
        "a takeover is a new attempt"
    );
}

/// With nobody executing the run (`run --no-wait` exited at the gate), an
/// approval after the gate's timeout is refused and records the timeout;
/// `--run-id` then takes the timeout branch.
async fn late_approval_of_a_parked_run_is_refused(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let out = run_no_wait(
        &srv,
        dir.path(),
        tidebase_fixtures::STAGES,
        &json!({"stages": 1, "timeoutMs": 2000}),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let id = run_id_in(&stderr);
    let gate = list(&srv.detail(&id).await, "gates")[0].clone();
    assert_eq!(gate["status"], "pending");
    // Past the deadline (no worker runs here to record it).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = resolve(&srv, &id, &gate, "approved").await;
    assert_eq!(status, 409, "{body}");
    let d = srv.detail(&id).await;
    assert_eq!(list(&d, "gates")[0]["status"], "timed_out");

    let result = cli_resume(&srv, dir.path(), &id, &[]).await;
    assert_eq!(result["outcomes"], json!(["timed_out"]));
    let d = srv.detail(&id).await;
    assert_recorded_once(&d, 1);
    assert_eq!(events_of(&d, "gate.resolved"), 1);
    assert_eq!(
        d["run"]["attempt"], 1,
        "resuming a parked run is no new attempt"
    );
}

backend_tests!(
    crash_resume_records_outside_calls_once,
    takeover_records_outside_calls_once,
    late_approval_of_a_parked_run_is_refused,
);
