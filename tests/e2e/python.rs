//! Python workflows: components built from `tests/python-guests/probe.py`
//! and `examples/*-py` by `tidebase-host build` (componentize-py), run by the
//! host like Rust guests: replay, gates, crash and resume from the CLI,
//! retries, the closed sandbox, CPU and memory limits, Python ⇄ Rust
//! children, and step input hashes identical to the Python SDK's.
//!
//! Building a component takes seconds and compiling its ~18 MB takes more,
//! so each source is built once per test process (and kept on disk by its
//! content hash) and precompiled into the compile cache the test servers
//! share. A missing componentize-py fails these tests with the build
//! command's install instruction.

use crate::cli::{host, output, text};
use crate::harness::{Opts, TestServer, count_events};
use crate::wasm::{resolve, start, step, wait_status, wait_suspended_at_gate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::OnceCell;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const PROBE: &str = "tests/python-guests/probe.py";

/// Where built components and the shared data directory (whose `cache`
/// holds compiled artifacts) live, across test processes.
fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-guests")
}

/// The data directory of CLI processes; its `cache` is the servers' compile cache.
pub fn data_dir() -> PathBuf {
    scratch().join("data")
}

pub fn compile_cache() -> PathBuf {
    data_dir().join("cache")
}

/// The component built from `source` (relative to the repository), built
/// and precompiled once per process.
pub async fn component(source: &'static str) -> PathBuf {
    type Built = Mutex<HashMap<&'static str, Arc<OnceCell<PathBuf>>>>;
    static BUILT: LazyLock<Built> = LazyLock::new(Default::default);
    let cell = BUILT.lock().unwrap().entry(source).or_default().clone();
    cell.get_or_init(|| async move {
        let wasm = tokio::task::spawn_blocking(move || build(source))
            .await
            .unwrap();
        precompile(&wasm).await;
        wasm
    })
    .await
    .clone()
}

/// Everything a build depends on, hashed: the source, the guest SDK, the WIT.
fn build_key(source: &Path) -> String {
    let mut files = vec![
        source.to_path_buf(),
        Path::new(ROOT).join("wit/workflow.wit"),
    ];
    let sdk = Path::new(ROOT).join("guest-sdk/python");
    for dir in ["tidebase_guest", "wit", "wit/deps"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(sdk.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut hash = Sha256::new();
    for file in files {
        hash.update(std::fs::read(&file).unwrap());
    }
    hex::encode(&hash.finalize()[..8])
}

fn build(source: &str) -> PathBuf {
    let source = Path::new(ROOT).join(source);
    let stem = source.file_stem().unwrap().to_str().unwrap().to_string();
    let wasm = scratch().join(format!("{stem}-{}.wasm", build_key(&source)));
    // Built by an earlier process; componentize-py must still be there,
    // so that a machine without it fails here as on a fresh one.
    if wasm.exists() && componentize_py_present() {
        return wasm;
    }
    std::fs::create_dir_all(scratch()).unwrap();
    let tmp = wasm.with_extension(format!("{}.tmp", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidebase-host"))
        .arg("build")
        .arg(&source)
        .arg("-o")
        .arg(&tmp)
        .output()
        .expect("spawn tidebase-host build");
    assert!(
        out.status.success(),
        "tidebase-host build {} failed:\n{}",
        source.display(),
        text(&out.stderr)
    );
    std::fs::rename(&tmp, &wasm).unwrap();
    wasm
}

fn componentize_py_present() -> bool {
    let exe = std::env::var_os("TIDEBASE_COMPONENTIZE_PY")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "componentize-py".into());
    std::process::Command::new(exe)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compiles the component once into the shared cache (the test servers'
/// runtimes then load the artifact instead of each compiling 18 MB).
async fn precompile(wasm: &Path) {
    let config = tidebase_host::runtime::RuntimeConfig {
        instances: Opts::python().wasm_workers as u32,
        cache_dir: Some(compile_cache()),
        ..Default::default()
    };
    let runtime = tidebase_host::runtime::Runtime::new(config).expect("wasm runtime");
    let bytes = std::fs::read(wasm).unwrap();
    tidebase_host::engine::ComponentCheck::check(&runtime, &bytes)
        .await
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", wasm.display()));
}

/// Deploys the probe under `name` (`query` sets limits).
async fn deploy_probe(srv: &TestServer, name: &str, query: &str) -> Value {
    let wasm = component(PROBE).await;
    crate::wasm::deploy(srv, name, wasm.to_str().unwrap(), query).await
}

/// Replay never re-executes a checkpointed step: the run suspends at its
/// gate, resumes when the gate is resolved over HTTP, and every step ran
/// exactly once; state and usage written before the gate are kept once.
async fn gate_suspends_and_replay_skips_checkpoints(srv: TestServer) {
    deploy_probe(&srv, "probe", "").await;
    let run_id = start(&srv, "probe", json!({"mode": "steps", "n": 3})).await;
    let gate = wait_suspended_at_gate(&srv, &run_id).await;
    assert_eq!(gate["name"], "go");
    assert_eq!(gate["data"], json!({"sum": 3}));
    let (status, _) = resolve(&srv, &run_id, &gate, "approved").await;
    assert_eq!(status, 200);
    let detail = wait_status(&srv, &run_id, "completed").await;
    assert_eq!(
        detail["run"]["result"],
        json!({"sum": 3, "decision": "approved", "actor": "tester"})
    );
    for name in ["s0", "s1", "s2"] {
        assert_eq!(step(&detail, name)["attempt"], 1, "step {name} re-executed");
    }
    let events = detail["events"].as_array().unwrap();
    assert_eq!(count_events(events, "step.started"), 3, "{events:#?}");
    assert_eq!(count_events(events, "run.resumed"), 1);
    assert_eq!(
        detail["state"]["value"],
        json!({"phase": "waiting", "sum": 3})
    );
    assert_eq!(detail["state"]["version"], 1, "state written once");
    let usage = detail["usage"].as_array().unwrap();
    assert_eq!(usage.len(), 1, "usage recorded once: {usage:?}");
}

/// A failing step is retried inside the activation up to `retries` times;
/// a step that fails every attempt fails the run with its error.
async fn retries_then_failure(srv: TestServer) {
    deploy_probe(&srv, "probe", "").await;
    let run_id = start(&srv, "probe", json!({"mode": "retries"})).await;
    let d = wait_status(&srv, &run_id, "failed").await;
    let flaky = step(&d, "flaky");
    assert_eq!(
        (flaky["status"].clone(), flaky["attempt"].clone()),
        (json!("completed"), json!(3))
    );
    assert_eq!(flaky["output"], 3);
    let doomed = step(&d, "doomed");
    assert_eq!(
        (doomed["status"].clone(), doomed["attempt"].clone()),
        (json!("failed"), json!(2))
    );
    assert_eq!(
        d["run"]["error"]["name"], "KeyError",
        "{}",
        d["run"]["error"]
    );
    let ok = start(&srv, "probe", json!({"mode": "retries", "doomed": false})).await;
    let d = wait_status(&srv, &ok, "completed").await;
    assert_eq!(d["run"]["result"], json!({"attempts": 3}));
}

/// No files, no environment, no sockets.
async fn the_sandbox_is_closed(srv: TestServer) {
    deploy_probe(&srv, "probe", "").await;
    let run_id = start(&srv, "probe", json!({"mode": "escape"})).await;
    let d = wait_status(&srv, &run_id, "completed").await;
    let got = &d["run"]["result"];
    assert_eq!(got["env"], 0, "environment leaked: {got}");
    for probe in ["listRoot", "readEtc", "writeTmp", "connect"] {
        assert!(
            got[probe].get("denied").is_some(),
            "{probe} was allowed: {got}"
        );
    }
}

/// An infinite loop is stopped by the CPU budget and a memory bomb by the
/// memory cap, each failing only its own run with a clear class; the host
/// keeps running Python workflows afterwards.
async fn limits_stop_runaway_guests(srv: TestServer) {
    deploy_probe(&srv, "probe", "?memoryMb=64&cpuMs=300").await;
    let spin = start(&srv, "probe", json!({"mode": "spin"})).await;
    let bomb = start(&srv, "probe", json!({"mode": "bomb"})).await;
    for (id, class) in [(&spin, "cpu_limit"), (&bomb, "memory_limit")] {
        let d = wait_status(&srv, id, "failed").await;
        assert_eq!(d["run"]["failureClass"], class, "{}", d["run"]["error"]);
        let message = d["run"]["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{class} without a reason");
    }
    let ok = start(&srv, "probe", json!({"value": 4})).await;
    let d = wait_status(&srv, &ok, "completed").await;
    assert_eq!(
        d["run"]["result"],
        json!({"value": 4, "doubled": 8, "by": "python"})
    );
}

/// A Python parent starts a Rust child and a Rust parent Python children,
/// each waiting (suspended) for the other's result.
async fn python_and_rust_children(srv: TestServer) {
    crate::wasm::deploy(&srv, "child-echo", tidebase_fixtures::CHILD_ECHO, "").await;
    deploy_probe(&srv, "probe", "").await;
    let parent = start(&srv, "probe", json!({"mode": "parent"})).await;
    let d = wait_status(&srv, &parent, "completed").await;
    assert_eq!(d["run"]["result"], json!({"value": 21, "doubled": 42}));

    // `fanout-parent` (Rust) runs `child-echo`, now the Python probe.
    deploy_probe(&srv, "child-echo", "").await;
    crate::wasm::deploy(&srv, "fanout-parent", tidebase_fixtures::FANOUT_PARENT, "").await;
    let rust = start(
        &srv,
        "fanout-parent",
        json!({"values": [5, 7], "sleepMs": 0}),
    )
    .await;
    let d = wait_status(&srv, &rust, "completed").await;
    assert_eq!(d["run"]["result"]["sum"], 24, "{}", d["run"]["result"]);
    let (_, runs) = srv.get("/runs").await;
    let python_children = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metadata"]["parentRunId"] == rust.as_str() && r["result"]["by"] == "python")
        .count();
    assert_eq!(python_children, 2, "{runs:#}");
}

/// The stable-JSON vectors shared with the Rust SDK, as step inputs: the
/// hashes the Python component records are the vectors' (Python's own
/// `json.dumps` + SHA-256), and the same workflow function driven by the
/// real Python SDK over HTTP records the same hashes.
async fn input_hashes_match_the_python_sdk(srv: TestServer) {
    let vectors: Value =
        serde_json::from_str(include_str!("../../guest-sdk/stable-json/vectors.json")).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["input"].as_str().unwrap_or("null").to_string())
        .collect();
    let input = json!({"mode": "hashes", "inputs": texts});
    deploy_probe(&srv, "probe", "").await;
    let wasm_run = start(&srv, "probe", input.clone()).await;
    let wasm = wait_status(&srv, &wasm_run, "completed").await;

    let sdk = sdk_run(&srv, "probe-sdk", &input).await;
    let sdk = srv.detail(&sdk).await;
    assert_eq!(sdk["run"]["status"], "completed", "{sdk:#}");
    for (i, case) in cases.iter().enumerate() {
        let name = format!("h{i}");
        assert_eq!(
            step(&wasm, &name)["inputHash"],
            case["hash"],
            "component, {case}"
        );
        assert_eq!(step(&sdk, &name)["inputHash"], case["hash"], "SDK, {case}");
    }
}

/// Runs the probe in a Python process through the real `tidebase` SDK
/// (`tests/python-guests/sdk_run.py`) under `workflow`; returns the run id.
async fn sdk_run(srv: &TestServer, workflow: &str, input: &Value) -> String {
    let python = std::env::var("TIDEBASE_SDK_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(Path::new(ROOT).join("tests/python-guests/sdk_run.py"))
        .arg(&srv.base)
        .arg(workflow)
        .arg(input.to_string());
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{python} sdk_run.py failed (it needs the SDK: pip install tidebase==0.7.0, \
         or TIDEBASE_SDK_PYTHON naming a Python that has it):\n{}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// HTTP from a Python step goes out through the broker (`wasi:http`): the
/// upstream gets the JSON body, the step records the response; outside a
/// step the request is refused with class `egress_denied`.
async fn http_goes_through_the_broker(srv: TestServer) {
    use crate::egress::{Reply, Upstream, connect};
    let up = Upstream::start(|hit| Reply::status(201, format!("got {}", text(&hit.body)))).await;
    connect(&srv, "local", &up.origin, None).await;
    deploy_probe(&srv, "probe", "?allow=local").await;
    let id = start(
        &srv,
        "probe",
        json!({"mode": "fetch", "url": up.url("/items")}),
    )
    .await;
    let d = wait_status(&srv, &id, "completed").await;
    assert_eq!(
        d["run"]["result"],
        json!({"status": 201, "body": "got {\"n\": 1}", "ok": true})
    );
    let hits = up.hits();
    assert_eq!(
        (hits.len(), hits[0].method.as_str(), hits[0].path.as_str()),
        (1, "POST", "/items")
    );
    assert_eq!(hits[0].headers["content-type"], "application/json");
    assert_eq!(hits[0].headers["idempotency-key"], "probe-post");

    let id = start(
        &srv,
        "probe",
        json!({"mode": "fetch", "url": up.url("/x"), "outside": true}),
    )
    .await;
    let d = wait_status(&srv, &id, "failed").await;
    assert_eq!(
        d["run"]["failureClass"], "egress_denied",
        "{}",
        d["run"]["error"]
    );
    assert_eq!(d["run"]["error"]["name"], "EgressDenied");
    assert_eq!(up.hits().len(), 1, "the refused request left the host");
}

backend_tests!(
    http_goes_through_the_broker = Opts {
        compile_cache: true,
        ..Opts::egress()
    },
    gate_suspends_and_replay_skips_checkpoints = Opts::python(),
    retries_then_failure = Opts::python(),
    the_sandbox_is_closed = Opts::python(),
    limits_stop_runaway_guests = Opts::python(),
    python_and_rust_children = Opts::python(),
    input_hashes_match_the_python_sdk = Opts::python(),
);

/// `tidebase-host run` killed in the middle of a step: `--run-id` resumes
/// the run, the checkpointed step replays and only the interrupted one runs
/// again. Then the `report` example end to end from the CLI: deploy, run to
/// its gate, `gates approve`, resume.
async fn cli_crash_resume_and_gates(srv: TestServer) {
    let probe = component(PROBE).await;
    let probe = probe.to_str().unwrap();
    let data = data_dir();
    let input = json!({"mode": "crash", "spinMs": 1500}).to_string();
    let mut child = host(
        &srv,
        &data,
        &["run", probe, "--workflow", "crashy", "--input", &input],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn run");
    // Killed once its progress says the second step is executing.
    let stderr = child.stderr.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            seen += &line;
            seen.push('\n');
            if line.contains("step slow: executing") {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    child.kill().expect("kill run");
    child.wait().unwrap();
    let run_id = crate::cli::run_id_in(&seen);
    let again = output(host(
        &srv,
        &data,
        &[
            "run",
            probe,
            "--workflow",
            "crashy",
            "--run-id",
            &run_id,
            "--takeover",
        ],
    ))
    .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let result: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(result, json!({"a": 1, "slow": 2}));
    let d = srv.detail(&run_id).await;
    assert_eq!(
        step(&d, "a")["attempt"],
        1,
        "the checkpointed step ran again"
    );
    let progress = text(&again.stderr);
    assert!(
        progress.contains("step a: replayed from checkpoint")
            && progress.contains("step slow: executing"),
        "only the interrupted step runs again:\n{progress}"
    );

    let report = component("examples/report-py/report.py").await;
    let report = report.to_str().unwrap();
    let deployed = output(host(
        &srv,
        &data,
        &["deploy", report, "--name", "report-py"],
    ))
    .await;
    assert_eq!(
        deployed.status.code(),
        Some(0),
        "{}",
        text(&deployed.stderr)
    );
    let input = json!({"topic": "tides"}).to_string();
    let args = [
        "run",
        report,
        "--workflow",
        "report-py",
        "--input",
        &input,
        "--no-wait",
    ];
    let first = output(host(&srv, &data, &args)).await;
    let stderr = text(&first.stderr);
    assert_eq!(first.status.code(), Some(3), "stops at the gate:\n{stderr}");
    let run_id = crate::cli::run_id_in(&stderr);
    crate::cli::approve_report_as_ops(&srv, &data, &run_id).await;
    let done = output(host(
        &srv,
        &data,
        &[
            "run",
            report,
            "--workflow",
            "report-py",
            "--run-id",
            &run_id,
        ],
    ))
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    let result: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        (result["approved"].clone(), result["approvedBy"].clone()),
        (json!(true), json!("ops"))
    );
    assert!(
        result["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("# tides\n")),
        "{result}"
    );
    let d = wait_status(&srv, &run_id, "completed").await;
    for name in ["plan", "fetch-sources", "write-report"] {
        assert_eq!(step(&d, name)["attempt"], 1, "step {name} re-executed");
    }
}

backend_tests!(cli_crash_resume_and_gates);

/// `build` without componentize-py fails and says how to install it.
#[test]
fn build_without_componentize_py_says_how_to_install_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidebase-host"))
        .arg("build")
        .arg(Path::new(ROOT).join(PROBE))
        .arg("-o")
        .arg(scratch().join("never.wasm"))
        .env("TIDEBASE_COMPONENTIZE_PY", "/nonexistent/componentize-py")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("pip install componentize-py=="), "{stderr}");
}
