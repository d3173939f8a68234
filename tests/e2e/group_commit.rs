//! Group commit of pure step checkpoints in wasm activations: the rows it
//! leaves are those of one commit per step; nothing leaves the process, and
//! no step with side effects runs, before the checkpoints that preceded it
//! are written; a crash costs only re-running pure steps; a zombie's group
//! is fenced out whole.

use crate::cli::{host, output, text};
use crate::egress::{Reply, Upstream, connect};
use crate::harness::{Opts, TestServer, assert_gap_free};
use crate::wasm::{deploy, start, step, wait_for, wait_status};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidebase_host::engine::GroupCommit;

const GROUPED: &str = tidebase_fixtures::GROUPED;

fn list<'a>(detail: &'a Value, key: &str) -> &'a Vec<Value> {
    detail[key].as_array().unwrap()
}

fn has_step(detail: &Value, name: &str) -> bool {
    list(detail, "steps").iter().any(|s| s["name"] == name)
}

/// A run's steps and events without what differs between two executions
/// of the same workflow: ids, times, lease owners, recorded clock values.
fn rows(detail: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut steps: Vec<Value> = list(detail, "steps")
        .iter()
        .map(|s| {
            let hidden = s["name"].as_str().unwrap().starts_with("__");
            json!({
                "name": s["name"], "status": s["status"], "attempt": s["attempt"],
                "inputHash": s["inputHash"], "input": s["input"], "options": s["options"],
                "output": if hidden { Value::Null } else { s["output"].clone() },
            })
        })
        .collect();
    steps.sort_by_key(|s| s["name"].as_str().unwrap().to_string());
    let events = list(detail, "events")
        .iter()
        .map(|e| {
            let mut payload = e["payload"].clone();
            if let Some(p) = payload.as_object_mut() {
                p.remove("stepId");
                p.remove("leaseOwner");
            }
            json!({"seq": e["seq"], "type": e["type"], "payload": payload})
        })
        .collect();
    (steps, events)
}

/// The same run with and without group commit, with more pure steps than
/// one group holds: the same step rows and the same events in the same
/// order, gap-free, every step checkpointed once.
async fn grouped_checkpoints_leave_the_rows_of_single_ones(srv: TestServer) {
    let single = TestServer::start_with(
        srv.backend,
        Opts {
            group_commit: GroupCommit::OFF,
            ..Opts::wasm()
        },
    )
    .await;
    let input = json!({"before": 70, "after": 3});
    let mut results = Vec::new();
    for server in [&srv, &single] {
        deploy(server, "grouped", GROUPED, "").await;
        let id = start(server, "grouped", input.clone()).await;
        let d = wait_status(server, &id, "completed").await;
        assert_gap_free(list(&d, "events"));
        for s in list(&d, "steps") {
            assert_eq!(
                (&s["status"], &s["attempt"]),
                (&json!("completed"), &json!(1))
            );
        }
        // 70 + 3 pure steps, `effect`, `hold` and the recorded `now`.
        assert_eq!(list(&d, "steps").len(), 76);
        results.push((rows(&d), d["run"]["result"].clone()));
    }
    let (grouped, single) = (&results[0], &results[1]);
    assert_eq!(grouped.0.0, single.0.0, "step rows");
    assert_eq!(grouped.0.1, single.0.1, "events");
    assert_eq!(grouped.1, single.1, "result");
}

/// A step declaring side effects starts only once the pure steps before it
/// are written: while it runs, they are in the store and it is not.
async fn a_step_with_side_effects_runs_after_the_checkpoints_before_it(srv: TestServer) {
    deploy(&srv, "grouped", GROUPED, "").await;
    let input = json!({"before": 3, "effectMs": 2000, "after": 0});
    let id = start(&srv, "grouped", input).await;
    let d = wait_for(&srv, &id, "the steps before `effect`", |d| {
        has_step(d, "before-2")
    })
    .await;
    for name in ["before-0", "before-1", "before-2", "__now:1"] {
        assert_eq!(step(&d, name)["status"], "completed");
    }
    // Still so a while later: `effect` is running, not about to be written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = srv.detail(&id).await;
    assert!(
        !has_step(&d, "effect") && d["run"]["status"] == "running",
        "the earlier steps were written only after `effect` ran: {d:#}"
    );
    wait_status(&srv, &id, "completed").await;
}

/// An egress call leaves only once the checkpoints before it are written:
/// while the upstream holds the request, they are in the store.
async fn an_egress_call_leaves_after_the_checkpoints_before_it(srv: TestServer) {
    let up = Upstream::start(|_| Reply::Hang).await;
    connect(&srv, "probe", &up.url(""), None).await;
    deploy(&srv, "grouped", GROUPED, "?allow=probe").await;
    let input = json!({"before": 3, "effect": false, "url": up.url("/hang"), "after": 0});
    let id = start(&srv, "grouped", input).await;
    up.wait_for(1).await;
    let d = srv.detail(&id).await;
    for name in ["before-0", "before-1", "before-2", "__now:1"] {
        assert!(
            has_step(&d, name),
            "{name} was not written before the call: {d:#}"
        );
    }
    assert!(!has_step(&d, "fetch"));
    let (status, body) = srv.post(&format!("/runs/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
}

/// A guest that traps right after a pure step: the activation still writes
/// that step's checkpoint (a completed step stays completed), so a resume
/// would replay it.
async fn a_trap_keeps_the_checkpoints_before_it(srv: TestServer) {
    deploy(&srv, "flaky", tidebase_fixtures::FLAKY, "").await;
    let input = json!({"seed": 1, "failAt": "a", "crash": "trap"});
    let id = start(&srv, "flaky", input).await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(d["run"]["failureClass"], "trap");
    assert_eq!(step(&d, "a")["status"], "completed");
    assert_eq!(step(&d, "a")["output"], 2);
    assert_gap_free(list(&d, "events"));
}

/// `tidebase-host run grouped` in the background, its stderr collected.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn spawn(srv: &TestServer, dir: &std::path::Path, input: &Value) -> Running {
        let input = input.to_string();
        let mut child = host(srv, dir, &["run", GROUPED, "--input", &input])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Running { child, stderr }
    }

    /// The run's id, once `run` has said it.
    async fn run_id(&self) -> String {
        self.wait_said("run run_").await;
        let text = self.stderr.lock().unwrap().clone();
        crate::cli::run_id_in(&text)
    }

    async fn wait_said(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stderr.lock().unwrap().contains(what) {
            assert!(
                Instant::now() < deadline,
                "`run` never said {what:?}:\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("kill run process");
        self.child.wait().unwrap();
    }
}

/// A run held in step `hold` after pure steps that follow the written
/// `effect`: returns the run process and the run's id once the later pure
/// steps are buffered, unwritten.
async fn held_after_effect(srv: &TestServer, dir: &std::path::Path) -> (Running, String) {
    let input = json!({"before": 2, "after": 3, "holdMs": 1500});
    let running = Running::spawn(srv, dir, &input);
    let id = running.run_id().await;
    wait_for(srv, &id, "step `effect` written", |d| {
        has_step(d, "effect") && step(d, "effect")["status"] == "completed"
    })
    .await;
    running.wait_said("step hold: executing").await;
    let d = srv.detail(&id).await;
    assert!(
        !has_step(&d, "after-0") && !has_step(&d, "hold"),
        "the pure steps after `effect` should still be buffered: {d:#}"
    );
    (running, id)
}

/// The `ran …` lines run's steps printed, in the order they were recorded.
fn ran(d: &Value) -> Vec<String> {
    list(d, "events")
        .iter()
        .filter_map(|e| e["payload"]["message"].as_str())
        .filter(|m| m.starts_with("ran "))
        .map(String::from)
        .collect()
}

/// The process is killed while pure checkpoints are buffered: resuming
/// runs those pure steps again, and neither the steps whose checkpoints
/// were written nor the step with side effects.
async fn a_crash_reruns_only_buffered_pure_steps(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let (running, id) = held_after_effect(&srv, dir.path()).await;
    running.kill();

    let args = ["run", GROUPED, "--run-id", &id, "--takeover"];
    let out = output(host(&srv, dir.path(), &args)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let d = srv.detail(&id).await;
    assert_eq!(d["run"]["status"], "completed");
    assert_eq!(
        ran(&d),
        ["ran after-0", "ran after-1", "ran after-2", "ran hold"],
        "only the buffered pure steps ran again (the killed run's output is lost)"
    );
    assert_gap_free(list(&d, "events"));
    let started = |name: &str| {
        list(&d, "events")
            .iter()
            .filter(|e| e["type"] == "step.started" && e["payload"]["name"] == name)
            .count()
    };
    for s in list(&d, "steps") {
        let name = s["name"].as_str().unwrap();
        assert_eq!(
            (&s["status"], &s["attempt"]),
            (&json!("completed"), &json!(1)),
            "{name}"
        );
        assert_eq!(started(name), 1, "{name} checkpointed once");
    }
}

/// The run's lease is taken over while its activation holds buffered pure
/// checkpoints: when that zombie activation ends, the fence refuses its
/// whole group, so not one of those steps nor any event of them is written.
async fn a_zombie_writes_none_of_its_group(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let (running, id) = held_after_effect(&srv, dir.path()).await;
    srv.engine.release_lease(&id).await.unwrap();
    let taken = srv
        .engine
        .claim_wasm_runs("thief", 1, Some(&id))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "the run process took the run back first");
    let before = srv.detail(&id).await;

    // The zombie finishes its steps and ends; give its write time to land.
    running.wait_said("step hold: checkpointed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = srv.detail(&id).await;
    running.kill();
    for name in ["after-0", "after-1", "after-2", "hold"] {
        assert!(!has_step(&d, name), "the zombie wrote {name}: {d:#}");
    }
    // Its captured output is still kept as `log` lines, as before groups.
    let written = |d: &Value| -> Vec<Value> {
        let events = list(d, "events").iter();
        events.filter(|e| e["type"] != "log").cloned().collect()
    };
    assert_eq!(written(&d), written(&before));
    assert_gap_free(list(&d, "events"));
    assert_eq!(d["run"]["leaseOwner"], "thief");
}

backend_tests!(
    grouped_checkpoints_leave_the_rows_of_single_ones = Opts::wasm(),
    a_step_with_side_effects_runs_after_the_checkpoints_before_it = Opts::wasm(),
    an_egress_call_leaves_after_the_checkpoints_before_it = Opts::egress(),
    a_trap_keeps_the_checkpoints_before_it = Opts::wasm(),
    a_crash_reruns_only_buffered_pure_steps,
    a_zombie_writes_none_of_its_group,
);
