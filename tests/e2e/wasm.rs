//! Wasm workflows executed by the host's own worker, through the same HTTP
//! API as SDK-driven runs: suspension at gates, digest pinning, hostile
//! guests, cancellation, deterministic replay, and mixing with SDK runs.

use crate::harness::{Opts, TestServer, assert_gap_free, count_events};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tidebase_host::engine::GroupCommit;

/// Deploy a fixture component under `name` (`query` sets limits).
pub async fn deploy(srv: &TestServer, name: &str, path: &str, query: &str) -> Value {
    let bytes = std::fs::read(path).expect("fixture component");
    let rb = srv
        .request(Method::POST, &format!("/workflows/{name}{query}"))
        .body(bytes);
    let r = TestServer::send(rb).await;
    assert_eq!(r.status, 200, "deploy {name}: {}", r.text);
    r.json()["deployment"].clone()
}

/// Poll run detail until `done` holds (bounded; fails with the last detail).
pub async fn wait_for(
    srv: &TestServer,
    run_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = srv.detail(run_id).await;
        if done(&detail) {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} on {run_id}: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn wait_status(srv: &TestServer, run_id: &str, status: &str) -> Value {
    wait_for(srv, run_id, status, |d| d["run"]["status"] == status).await
}

/// Wait until the run is suspended on a pending gate (lease released).
pub async fn wait_suspended_at_gate(srv: &TestServer, run_id: &str) -> Value {
    let d = wait_for(srv, run_id, "a pending gate", |d| {
        d["run"]["leaseOwner"].is_null()
            && d["gates"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["status"] == "pending"))
    })
    .await;
    d["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["status"] == "pending")
        .unwrap()
        .clone()
}

pub async fn start(srv: &TestServer, workflow: &str, input: Value) -> String {
    let (status, body) = srv
        .post(&format!("/runs/{workflow}"), json!({"input": input}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["run"]["id"].as_str().unwrap().to_string()
}

pub async fn resolve(srv: &TestServer, run_id: &str, gate: &Value, decision: &str) -> (u16, Value) {
    let body = json!({"token": gate["resolveToken"], "decision": decision, "actor": "tester", "payload": {"note": "ok"}});
    srv.post(
        &format!(
            "/runs/{run_id}/gates/{}/resolve",
            gate["id"].as_str().unwrap()
        ),
        body,
    )
    .await
}

pub fn step<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// A gate suspends the run without holding a worker; resolving it over HTTP
/// resumes it, and the steps before the gate are replayed, not re-executed.
async fn gate_suspends_and_resumes(srv: TestServer) {
    deploy(&srv, "report", tidebase_fixtures::REPORT, "").await;
    let run_id = start(&srv, "report", json!({"topic": "tides"})).await;
    let gate = wait_suspended_at_gate(&srv, &run_id).await;
    assert_eq!(gate["name"], "approve-report");
    let (status, _) = resolve(&srv, &run_id, &gate, "approved").await;
    assert_eq!(status, 200);
    let detail = wait_status(&srv, &run_id, "completed").await;
    let result = &detail["run"]["result"];
    assert_eq!(result["approved"], true);
    assert_eq!(result["approvedBy"], "tester");
    for name in ["plan", "fetch-sources", "write-report"] {
        assert_eq!(step(&detail, name)["attempt"], 1, "step {name} re-executed");
        assert_eq!(step(&detail, name)["status"], "completed");
    }
    let events = detail["events"].as_array().unwrap();
    assert_gap_free(events);
    assert_eq!(
        (
            count_events(events, "run.started"),
            count_events(events, "run.resumed")
        ),
        (1, 1),
        "one activation before the gate; the one after resumes the same attempt"
    );
    assert_eq!(detail["run"]["attempt"], 1);
    assert_eq!(
        count_events(events, "step.started"),
        3,
        "every step executed exactly once"
    );
}

/// A run stays on the component digest it started on; new runs take the
/// redeployed one.
async fn runs_are_pinned_to_their_digest(srv: TestServer) {
    let v1 = deploy(&srv, "pinned", tidebase_fixtures::REPORT, "").await;
    let old = start(&srv, "pinned", json!({"topic": "pins"})).await;
    let gate = wait_suspended_at_gate(&srv, &old).await;
    let v2 = deploy(&srv, "pinned", tidebase_fixtures::CHILD_ECHO, "").await;
    assert_ne!(v1["digest"], v2["digest"]);
    assert_eq!(v2["version"], 2);
    let fresh = start(&srv, "pinned", json!({"value": 21})).await;
    let fresh_detail = wait_status(&srv, &fresh, "completed").await;
    assert!(
        fresh_detail["run"]["result"].get("topic").is_none(),
        "new run ran the new component"
    );
    resolve(&srv, &old, &gate, "approved").await;
    let old_detail = wait_status(&srv, &old, "completed").await;
    assert_eq!(
        old_detail["run"]["result"]["topic"], "pins",
        "in-flight run resumed on its original component"
    );
}

/// Each misbehaving guest fails only its own run, with a clear class; the
/// host keeps serving and runs other workflows afterwards.
async fn hostile_guests_fail_cleanly(srv: TestServer) {
    deploy(
        &srv,
        "hostile",
        tidebase_fixtures::HOSTILE,
        "?memoryMb=32&cpuMs=300",
    )
    .await;
    let cases = [
        ("loop", "cpu_limit"),
        ("memory", "memory_limit"),
        ("trap", "trap"),
        ("panic", "panic"),
        ("stack", "trap"),
        ("output", "memory_limit"),
    ];
    let mut ids = Vec::new();
    for (mode, _) in cases {
        ids.push(start(&srv, "hostile", json!({"mode": mode})).await);
    }
    for ((mode, class), id) in cases.iter().zip(&ids) {
        let d = wait_status(&srv, id, "failed").await;
        assert_eq!(
            d["run"]["failureClass"], *class,
            "mode {mode}: {}",
            d["run"]["error"]
        );
        assert!(
            d["run"]["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "mode {mode} has a reason"
        );
    }
    let (status, body) = srv.get("/health").await;
    assert_eq!((status, body), (200, json!({"ok": true})));
    let ok = start(&srv, "hostile", json!({"mode": "ok"})).await;
    wait_status(&srv, &ok, "completed").await;
}

/// An instance starts from its component's image, whatever the instance
/// before it in the same pooled slot wrote (slots keep their memory
/// resident between instances): one run after another, each finds the
/// image's values and leaves its memory dirty for the next.
async fn no_guest_sees_another_guests_memory(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "").await;
    for n in 0..4 {
        let id = start(&srv, "hostile", json!({"mode": "residue"})).await;
        let d = wait_status(&srv, &id, "completed").await;
        assert_eq!(
            d["run"]["result"],
            json!({"imaged": 7, "dirty": 0}),
            "run {n} found an earlier instance's memory"
        );
    }
}

/// A result larger than the output limit fails the run as `output_limit`.
async fn oversized_result_is_refused(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "?memoryMb=64").await;
    let id = start(&srv, "hostile", json!({"mode": "output", "bytes": 4 << 20})).await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(
        d["run"]["failureClass"], "output_limit",
        "{}",
        d["run"]["error"]
    );
}

/// Cancelling a computing run stops it (epoch check) and frees its slot;
/// cancelling a suspended run keeps it from ever resuming.
async fn cancellation_stops_wasm_runs(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "?cpuMs=600000").await;
    let busy = start(&srv, "hostile", json!({"mode": "loop"})).await;
    wait_for(&srv, &busy, "the loop to start", |d| {
        !d["run"]["leaseOwner"].is_null()
    })
    .await;
    let (status, _) = srv
        .post(&format!("/runs/{busy}/cancel"), json!({"reason": "stop"}))
        .await;
    assert_eq!(status, 200);
    let ok = start(&srv, "hostile", json!({"mode": "ok"})).await;
    wait_status(&srv, &ok, "completed").await;
    let d = srv.detail(&busy).await;
    assert_eq!(d["run"]["status"], "cancelled");
    assert_eq!(
        count_events(d["events"].as_array().unwrap(), "run.failed"),
        0
    );

    deploy(&srv, "report", tidebase_fixtures::REPORT, "").await;
    let parked = start(&srv, "report", json!({"topic": "x"})).await;
    let gate = wait_suspended_at_gate(&srv, &parked).await;
    srv.post(&format!("/runs/{parked}/cancel"), json!({})).await;
    resolve(&srv, &parked, &gate, "approved").await;
    // Give the worker the chance it would need to (wrongly) resume it.
    let probe = start(&srv, "hostile", json!({"mode": "ok"})).await;
    wait_status(&srv, &probe, "completed").await;
    let d = srv.detail(&parked).await;
    assert_eq!(d["run"]["status"], "cancelled");
    assert!(
        d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "write-report"),
        "resumed after cancel"
    );
}

/// `now` and `random` are recorded on first execution and replayed: the
/// run's result carries exactly the recorded values although the run was
/// re-instantiated after its children and its sleep.
async fn clock_and_randomness_replay(srv: TestServer) {
    deploy(&srv, "child-echo", tidebase_fixtures::CHILD_ECHO, "").await;
    deploy(&srv, "fanout-parent", tidebase_fixtures::FANOUT_PARENT, "").await;
    let id = start(&srv, "fanout-parent", json!({"values": [1, 2]})).await;
    let d = wait_status(&srv, &id, "completed").await;
    let result = &d["run"]["result"];
    assert_eq!(result["sum"], 6);
    let started = step(&d, "__now:1");
    assert_eq!(
        result["startedAt"], started["output"],
        "startedAt is the recorded clock value"
    );
    let nonce: u64 = step(&d, "__random:1")["output"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        result["nonce"],
        format!("{nonce:016x}"),
        "nonce is the recorded random value"
    );
    let resumes = count_events(d["events"].as_array().unwrap(), "run.resumed");
    assert!(
        resumes >= 1,
        "the parent was re-instantiated ({resumes} resumes)"
    );
    for hidden in ["__now:1", "__random:1"] {
        assert_eq!(step(&d, hidden)["attempt"], 1, "{hidden} recorded once");
    }
}

/// A wasm run and an SDK-driven run share the runs list, the event
/// vocabulary and the state API.
async fn wasm_and_sdk_runs_side_by_side(srv: TestServer) {
    deploy(&srv, "report", tidebase_fixtures::REPORT, "").await;
    let wasm = start(&srv, "report", json!({"topic": "mixed"})).await;
    let sdk = srv.running_run("sdk-flow", "w1").await;
    let s = srv
        .step_begin(
            &sdk,
            json!({"name": "plan", "inputHash": "h", "leaseOwner": "w1"}),
        )
        .await;
    let sid = s["step"]["id"].as_str().unwrap();
    srv.post(
        &format!("/runs/{sdk}/steps/{sid}/complete"),
        json!({"leaseOwner": "w1", "output": 1}),
    )
    .await;
    srv.put(
        &format!("/runs/{sdk}/state"),
        json!({"value": {"phase": "draft"}}),
    )
    .await;
    let gate = wait_suspended_at_gate(&srv, &wasm).await;
    let (_, list) = srv.get("/runs").await;
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(ids.contains(&wasm.as_str()) && ids.contains(&sdk.as_str()));
    let (status, state) = srv.get(&format!("/runs/{wasm}/state/versions")).await;
    assert_eq!(status, 200);
    assert!(
        !state["stateVersions"].as_array().unwrap().is_empty(),
        "wasm state is visible through the API"
    );
    resolve(&srv, &wasm, &gate, "rejected").await;
    let d = wait_status(&srv, &wasm, "completed").await;
    assert_eq!(d["run"]["result"]["approved"], false);
    srv.post(&format!("/runs/{sdk}/complete"), json!({"result": 1}))
        .await;
    for id in [&wasm, &sdk] {
        let events = srv.events(id).await;
        assert_gap_free(&events);
        for kind in [
            "run.created",
            "run.started",
            "step.started",
            "step.completed",
            "state.updated",
            "run.completed",
        ] {
            assert!(count_events(&events, kind) >= 1, "run {id} lacks {kind}");
        }
    }
}

backend_tests!(
    gate_suspends_and_resumes = Opts::wasm(),
    runs_are_pinned_to_their_digest = Opts::wasm(),
    hostile_guests_fail_cleanly = Opts::wasm(),
    no_guest_sees_another_guests_memory = Opts::wasm(),
    oversized_result_is_refused = Opts::wasm(),
    cancellation_stops_wasm_runs = Opts::wasm(),
    clock_and_randomness_replay = Opts::wasm(),
    wasm_and_sdk_runs_side_by_side = Opts::wasm(),
);

/// Queued runs of a deployed workflow are executed by the host's worker
/// (never handed to external claimers), one at a time under a concurrency
/// cap of 1.
async fn queued_wasm_runs_run_under_queue_caps(srv: TestServer) {
    deploy(&srv, "child-echo", tidebase_fixtures::CHILD_ECHO, "").await;
    let (status, _) = srv
        .put("/queues/wq/config", json!({"concurrency": 1}))
        .await;
    assert_eq!(status, 200);
    let mut ids = Vec::new();
    for value in 0..6 {
        let body = json!({"workflowName": "child-echo", "input": {"value": value}});
        let (status, res) = srv.post("/queues/wq/enqueue", body).await;
        assert_eq!(status, 200, "{res}");
        ids.push(res["run"]["id"].as_str().unwrap().to_string());
    }
    let (_, claimed) = srv
        .post("/queues/claim", json!({"queues": ["wq"], "limit": 10}))
        .await;
    assert!(
        claimed["runs"].as_array().unwrap().is_empty(),
        "an SDK claimer got a wasm run: {claimed}"
    );
    let mut windows = Vec::new();
    for (value, id) in ids.iter().enumerate() {
        let d = wait_status(&srv, id, "completed").await;
        assert_eq!(d["run"]["result"]["doubled"], json!(value * 2));
        // Global event ids follow the order claims and completions were
        // written in (timestamps are taken before lock waits, ids are not).
        let at = |kind: &str| {
            let e = d["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == kind)
                .unwrap();
            e["id"].as_i64().unwrap()
        };
        windows.push((at("run.claimed"), at("run.completed")));
    }
    windows.sort();
    for pair in windows.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two runs of a concurrency-1 queue overlapped: {pair:?}"
        );
    }
}

backend_tests!(queued_wasm_runs_run_under_queue_caps = Opts::wasm());

/// An activation that outlives the lease keeps it by heartbeat: the run is
/// never picked up a second time while it is alive.
async fn long_activations_keep_their_lease(srv: TestServer) {
    deploy(&srv, "steps", tidebase_fixtures::STEPS, "").await;
    let id = start(&srv, "steps", json!({"steps": 1000})).await;
    let started = Instant::now();
    let d = wait_status(&srv, &id, "completed").await;
    let took = started.elapsed();
    let events = d["events"].as_array().unwrap();
    assert_eq!(
        count_events(events, "run.started"),
        1,
        "run was taken over while alive (ran {took:?})"
    );
    assert_eq!(count_events(events, "step.completed"), 1000);
    assert!(
        took > Duration::from_millis(3 * srv.opts.lease_ms as u64),
        "the run ({took:?}) did not outlive the lease, so this proves nothing"
    );
}

backend_tests!(
    long_activations_keep_their_lease = Opts {
        lease_ms: 300,
        // One commit per step keeps the activation longer than the lease.
        group_commit: GroupCommit::OFF,
        ..Opts::wasm()
    }
);

/// A workflow gets no environment, no files and no network; what it prints
/// ends up in its run's `log` events, not in the host's output.
async fn the_sandbox_grants_nothing(srv: TestServer) {
    deploy(&srv, "hostile", tidebase_fixtures::HOSTILE, "").await;
    let id = start(&srv, "hostile", json!({"mode": "escape"})).await;
    let d = wait_status(&srv, &id, "completed").await;
    let got = &d["run"]["result"];
    assert_eq!(got["env"], 0, "environment leaked: {got}");
    for probe in ["readRoot", "readEtc", "writeTmp", "connect"] {
        assert!(
            got[probe].get("denied").is_some(),
            "{probe} was allowed: {got}"
        );
    }
    let logs: Vec<&Value> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "log")
        .collect();
    let line = |level: &str, text: &str| {
        logs.iter()
            .any(|e| e["payload"]["level"] == level && e["payload"]["message"] == text)
    };
    assert!(
        line("stdout", "hello from the sandbox"),
        "stdout not captured: {logs:?}"
    );
    assert!(
        line("stderr", "and from its stderr"),
        "stderr not captured: {logs:?}"
    );
}

backend_tests!(the_sandbox_grants_nothing = Opts::wasm());
