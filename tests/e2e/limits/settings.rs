//! Deploy limits over HTTP and the CLI, and `serve` settings at startup.

use super::assert_param_refused;
use crate::cli::{host, output, text};
use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

backend_tests!(
    deploy_limits_are_checked = Opts::wasm(),
    cli_deploy_flags_are_checked = Opts::wasm(),
);

async fn deploy_limits_are_checked(srv: TestServer) {
    let bytes = std::fs::read(tidebase_fixtures::REPORT).unwrap();
    let deploy = |query: String| {
        let rb = srv
            .request(Method::POST, &format!("/workflows/report{query}"))
            .body(bytes.clone());
        TestServer::send(rb)
    };
    for (query, field) in [
        ("?memoryMb=0", "memoryMb"),
        ("?memoryMb=-1", "memoryMb"),
        ("?memoryMb=257", "memoryMb"),
        ("?memoryMb=9223372036854775807", "memoryMb"),
        ("?memoryMb=99999999999999999999999", "memoryMb"),
        ("?memoryMb=lots", "memoryMb"),
        ("?cpuMs=0", "cpuMs"),
        ("?cpuMs=3600001", "cpuMs"),
        ("?cpuMs=9223372036854775807", "cpuMs"),
        ("?memoryMb=64&cpuMs=-5", "cpuMs"),
    ] {
        let r = deploy(query.to_string()).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let b = r.json();
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{field}\"")),
            "{query}: {b}"
        );
        assert_eq!(b["issues"][0]["path"], json!([field]), "{b}");
        let issue = &b["issues"][0];
        assert!(
            issue["minimum"].is_i64() && issue["maximum"].is_i64(),
            "{query}: range given: {b}"
        );
    }
    assert_param_refused(&srv, Method::POST, "/workflows/re%00port", "name").await;
    let (_, list) = srv.get("/workflows").await;
    assert_eq!(list["deployments"], json!([]), "nothing deployed");
    let r = deploy("?memoryMb=256&cpuMs=3600000".into()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["deployment"]["memoryLimitBytes"], 256 << 20);
}

async fn cli_deploy_flags_are_checked(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--memory-mb", "0"),
        ("--memory-mb", "-1"),
        ("--memory-mb", "8796093022208"),
        ("--memory-mb", "99999999999999999999"),
        ("--cpu-ms", "9223372036854775807"),
        ("--cpu-ms", "0"),
    ] {
        // `--flag=value`, so that clap does not read "-1" as a flag.
        let arg = format!("{flag}={value}");
        let args = ["deploy", tidebase_fixtures::REPORT, &arg];
        let out = output(host(&srv, dir.path(), &args)).await;
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("between"),
            "{flag} {value}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (_, list) = srv.get("/workflows").await;
    assert_eq!(list["deployments"], json!([]), "nothing deployed");
    let args = [
        "deploy",
        tidebase_fixtures::REPORT,
        "--memory-mb",
        "256",
        "--cpu-ms",
        "3600000",
    ];
    let ok = output(host(&srv, dir.path(), &args)).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    // A verb other than serve checks its environment too.
    let mut cmd = host(&srv, dir.path(), &["runs", "list"]);
    cmd.env("TIDEBASE_LEASE_MS", "9223372036854775807");
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TIDEBASE_LEASE_MS") && stderr.contains("between 100 and 86400000"),
        "{stderr}"
    );
}

/// `serve` refuses out-of-range settings at startup, naming the setting and
/// its range, instead of starting and panicking on the first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_out_of_range_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    for (var, value) in [
        ("TIDEBASE_LEASE_MS", "9223372036854775807"),
        ("TIDEBASE_LEASE_MS", "9223372036854775"),
        ("TIDEBASE_LEASE_MS", "0"),
        ("TIDEBASE_RECONCILE_MS", "18446744073709551615"),
        ("TIDEBASE_WEBHOOK_TIMEOUT_MS", "-1"),
        ("TIDEBASE_WASM_WORKERS", "4294967296"),
        ("PORT", "70000"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidebase-host"))
            .args(["serve", "--bind", "127.0.0.1", "--database-url", &db])
            .env("TIDEBASE_RECONCILER", "0")
            .env(var, value)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a server that started anyway is killed and the test fails.
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("serve started with {var}={value}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_ne!(status.code(), Some(0), "{var}={value}: {stderr}");
        let named = var == "PORT" || stderr.contains(var);
        assert!(named && stderr.contains(value), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
