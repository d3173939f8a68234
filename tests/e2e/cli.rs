//! The command line as a user drives it: `tidebase-host run` crash-resume,
//! a process killed while waiting at a gate, `gates approve`, `--no-wait`.

use crate::harness::{TestServer, count_events};
use crate::wasm::{wait_status, wait_suspended_at_gate};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};

pub fn host(srv: &TestServer, data_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidebase-host"));
    cmd.args(args)
        .arg("--database-url")
        .arg(&srv.db_url)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL");
    cmd
}

pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("spawn tidebase-host"))
        .await
        .unwrap()
}

/// `tidebase-host run COMPONENT --input INPUT --no-wait`: stops at the
/// first pending gate (exit code 3).
pub async fn run_no_wait(
    srv: &TestServer,
    data_dir: &std::path::Path,
    component: &str,
    input: &Value,
) -> Output {
    let input = input.to_string();
    let args = ["run", component, "--input", &input, "--no-wait"];
    output(host(srv, data_dir, &args)).await
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `gates approve <run> approve-report --actor ops`, which must succeed.
pub async fn approve_report_as_ops(srv: &TestServer, data_dir: &std::path::Path, run_id: &str) {
    let args = [
        "gates",
        "approve",
        run_id,
        "approve-report",
        "--actor",
        "ops",
    ];
    let approve = output(host(srv, data_dir, &args)).await;
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve.stderr));
}

/// The run id named in `run`'s progress output.
pub fn run_id_in(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")
                .filter(|r| r.starts_with("run_") && !r.contains(' '))
        })
        .unwrap_or_else(|| panic!("no run id in output:\n{stderr}"))
        .to_string()
}

fn steps(detail: &Value) -> Vec<(String, i64)> {
    detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["attempt"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A run that fails after two checkpoints resumes with `--run-id`: the
/// checkpointed steps are not executed again and the result is right.
async fn crash_resume_replays_checkpoints(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let input = json!({"seed": 1, "failAt": "b", "crash": "trap"}).to_string();
    let first = output(host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::FLAKY, "--input", &input],
    ))
    .await;
    let stderr = text(&first.stderr);
    assert_eq!(
        first.status.code(),
        Some(1),
        "a trapped run exits 1:\n{stderr}"
    );
    let run_id = run_id_in(&stderr);
    let resume = format!("--run-id {run_id}");
    assert!(
        stderr.contains("resume with: tidebase-host run") && stderr.contains(&resume),
        "{stderr}"
    );
    let before = srv.detail(&run_id).await;
    assert_eq!(before["run"]["failureClass"], "trap");
    assert_eq!(steps(&before), [("a".into(), 1), ("b".into(), 2)]);

    let second = output(host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::FLAKY, "--run-id", &run_id],
    ))
    .await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let result: Value = serde_json::from_slice(&second.stdout).expect("result JSON on stdout");
    assert_eq!(result, json!({"a": 2, "b": 20, "c": 22, "bAttempts": 2}));
    let after = srv.detail(&run_id).await;
    assert_eq!(
        steps(&after),
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)],
        "no checkpointed step re-ran"
    );
    assert!(text(&second.stderr).contains("step a: replayed from checkpoint"));
}

/// `run` killed while it waits at a gate: the gate is approved from the CLI
/// and `--run-id` finishes the run without re-executing earlier steps.
async fn killed_run_resumes_after_cli_approval(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let input = json!({"topic": "kill"}).to_string();
    let mut cmd = host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::REPORT, "--input", &input],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    let run_id = loop {
        let (_, list) = srv.get("/runs").await;
        if let Some(r) = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["workflowName"] == "report")
        {
            break r["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    wait_suspended_at_gate(&srv, &run_id).await;
    child.kill().expect("kill run process");
    child.wait().unwrap();

    approve_report_as_ops(&srv, dir.path(), &run_id).await;
    let again = output(host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::REPORT, "--run-id", &run_id],
    ))
    .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let result: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (result["approved"].clone(), result["approvedBy"].clone()),
        (json!(true), json!("ops"))
    );
    let d = wait_status(&srv, &run_id, "completed").await;
    assert_eq!(
        steps(&d),
        [
            ("plan".into(), 1),
            ("fetch-sources".into(), 1),
            ("write-report".into(), 1)
        ]
    );
}

/// `--no-wait` stops at a pending gate with exit code 3 and says how to resolve it.
async fn no_wait_exits_at_gate(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let out = run_no_wait(
        &srv,
        dir.path(),
        tidebase_fixtures::REPORT,
        &json!({"topic": "later"}),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let run_id = run_id_in(&stderr);
    assert!(
        stderr.contains(&format!(
            "tidebase-host gates approve {run_id} approve-report"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("/resolve") && stderr.contains("\"token\""),
        "HTTP instructions: {stderr}"
    );
    let d = srv.detail(&run_id).await;
    assert_eq!(d["gates"][0]["status"], "pending");
}

/// Bad input: a missing file and malformed JSON fail with a message and a
/// non-zero exit, creating no run.
async fn bad_cli_input_is_refused(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let missing = output(host(&srv, dir.path(), &["run", "/nonexistent/x.wasm"])).await;
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        text(&missing.stderr).contains("cannot read"),
        "{}",
        text(&missing.stderr)
    );
    let bad = output(host(
        &srv,
        dir.path(),
        &["run", tidebase_fixtures::REPORT, "--input", "{nope"],
    ))
    .await;
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        text(&bad.stderr).contains("not valid JSON"),
        "{}",
        text(&bad.stderr)
    );
    let not_wasm = dir.path().join("x.wasm");
    std::fs::write(&not_wasm, b"not a component").unwrap();
    let junk = output(host(
        &srv,
        dir.path(),
        &["deploy", not_wasm.to_str().unwrap()],
    ))
    .await;
    assert_ne!(junk.status.code(), Some(0));
    assert!(
        text(&junk.stderr).contains("not a runnable workflow"),
        "{}",
        text(&junk.stderr)
    );
    let (_, list) = srv.get("/runs").await;
    assert!(
        list["runs"].as_array().unwrap().is_empty(),
        "no run was created"
    );
}

/// `gates approve` goes through the engine's operator resolution, which
/// never reads the resolve token: one approval wins and records its actor;
/// approving again, approving a timed-out gate and approving an unknown gate
/// fail with a message and a non-zero exit.
async fn cli_approval_resolves_once(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let run = srv.running_run("gated", "w1").await;
    let (s, b) = srv
        .post(
            &format!("/runs/{run}/gates/begin"),
            json!({"name": "ship", "prompt": "ship it?"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let approve = |run: &str, gate: &str, actor: &str| {
        host(
            &srv,
            dir.path(),
            &["gates", "approve", run, gate, "--actor", actor],
        )
    };
    let first = output(approve(&run, "ship", "alice")).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let printed: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(printed["gate"]["status"], "approved");
    assert!(
        printed["gate"].get("resolveToken").is_none(),
        "the operator path hands out no token: {printed}"
    );
    let gate = &srv.detail(&run).await["gates"][0];
    assert_eq!(
        (gate["status"].as_str(), gate["actor"].as_str()),
        (Some("approved"), Some("alice"))
    );

    let second = output(approve(&run, "ship", "bob")).await;
    let stderr = text(&second.stderr);
    assert_ne!(second.status.code(), Some(0), "a second approval: {stderr}");
    assert!(stderr.contains("gate ship is already approved"), "{stderr}");
    let d = srv.detail(&run).await;
    assert_eq!(d["gates"][0]["actor"], "alice", "the first decision stands");
    assert_eq!(
        count_events(d["events"].as_array().unwrap(), "gate.resolved"),
        1
    );

    let unknown = output(approve(&run, "nope", "alice")).await;
    let stderr = text(&unknown.stderr);
    assert_ne!(unknown.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("gate not found"), "{stderr}");

    // A host-executed run whose gate times out: stopped at the gate, then
    // approved after its deadline.
    let out = run_no_wait(
        &srv,
        dir.path(),
        tidebase_fixtures::STAGES,
        &json!({"stages": 1, "timeoutMs": 200}),
    )
    .await;
    let stderr = text(&out.stderr);
    let timed = run_id_in(&stderr);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let late = output(approve(&timed, "stage-1", "alice")).await;
    let stderr = text(&late.stderr);
    assert_ne!(late.status.code(), Some(0), "a late approval: {stderr}");
    assert!(stderr.contains("gate stage-1 timed out"), "{stderr}");
    let gate = &srv.detail(&timed).await["gates"][0];
    assert_eq!(
        (gate["status"].as_str(), gate["actor"].as_str()),
        (Some("timed_out"), None)
    );
}

backend_tests!(
    crash_resume_replays_checkpoints,
    killed_run_resumes_after_cli_approval,
    no_wait_exits_at_gate,
    bad_cli_input_is_refused,
    cli_approval_resolves_once,
);

/// With `TIDEBASE_AUTO_MIGRATE=0` an unmigrated database makes `serve` fail
/// fast naming the pending migrations; `migrate` applies them, after which
/// `serve` starts. Checked on an empty SQLite file and an empty Postgres database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_explicit_when_auto_migrate_is_off() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let admin = crate::harness::admin_url();
    let pg_name = format!("tb_e2e_mig_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {pg_name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let urls = [
        format!("sqlite://{}/m.db", dir.path().display()),
        crate::harness::database_url(&admin, &pg_name),
    ];
    for url in &urls {
        let bin = env!("CARGO_BIN_EXE_tidebase-host");
        let serve = |extra: &[&str]| {
            let mut cmd = Command::new(bin);
            cmd.args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--database-url",
                url,
            ])
            .args(extra)
            .env("TIDEBASE_AUTO_MIGRATE", "0")
            .env("TIDEBASE_RECONCILER", "0");
            cmd
        };
        let refused = output(serve(&[])).await;
        let stderr = text(&refused.stderr);
        assert_ne!(
            refused.status.code(),
            Some(0),
            "{url}: serve started on an unmigrated database"
        );
        assert!(
            stderr.contains("pending migrations") && stderr.contains("core"),
            "{url}: {stderr}"
        );
        let mut migrate = Command::new(bin);
        migrate.args(["migrate", "--database-url", url]);
        let migrated = output(migrate).await;
        assert_eq!(
            migrated.status.code(),
            Some(0),
            "{url}: {}",
            text(&migrated.stderr)
        );
        assert!(
            text(&migrated.stderr).contains("applied"),
            "{}",
            text(&migrated.stderr)
        );
        let mut again = Command::new(bin);
        again.args(["migrate", "--database-url", url]);
        assert!(text(&output(again).await.stderr).contains("up to date"));
        // Migrated: serve now starts (and is stopped right away).
        let mut child = serve(&[]).stderr(Stdio::piped()).spawn().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "{url}: serve exited after migrate"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    conn.close().await.ok();
    crate::harness::drop_pg_database(&admin, &pg_name)
        .await
        .ok();
}
