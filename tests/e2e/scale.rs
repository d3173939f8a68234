//! Suspended wasm runs hold no instance and no worker slot: a `serve`
//! process with 1,000 runs parked at gates stays flat in memory, and
//! resolving the gates completes every one of them.

use crate::harness::TestServer;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Serve {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    async fn start(srv: &TestServer, data_dir: &std::path::Path) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tidebase-host"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--database-url",
                &srv.db_url,
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env("TIDEBASE_RECONCILER", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let s = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while s
            .http
            .get(format!("{}/health", s.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn start_runs(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let run = self
                .post("/runs/report", json!({"input": {"topic": format!("t{i}")}}))
                .await;
            ids.push(run["run"]["id"].as_str().unwrap().to_string());
        }
        ids
    }
}

/// Pending gates of the given runs, once every run is parked at one.
async fn wait_all_parked(srv: &TestServer, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut gates = Vec::with_capacity(ids.len());
    for id in ids {
        loop {
            let d = srv.detail(id).await;
            let gate = d["gates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["status"] == "pending")
                .cloned();
            if let (Some(g), true) = (gate, d["run"]["leaseOwner"].is_null()) {
                gates.push(g);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never parked at its gate"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    gates
}

async fn thousand_suspended_runs_stay_flat(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&srv, dir.path()).await;
    let bytes = std::fs::read(tidebase_fixtures::REPORT).unwrap();
    let r = serve
        .http
        .post(format!("{}/workflows/report", serve.base))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let mut ids = serve.start_runs(100).await;
    let mut gates = wait_all_parked(&srv, &ids).await;
    let warm = serve.rss_kib();
    let more = serve.start_runs(900).await;
    gates.extend(wait_all_parked(&srv, &more).await);
    ids.extend(more);
    let parked = serve.rss_kib();
    let per_run = (parked.saturating_sub(warm)) as f64 * 1024.0 / 900.0;
    eprintln!(
        "serve RSS {warm} KiB with 100 parked runs, {parked} KiB with 1000 ({per_run:.0} bytes per parked run)"
    );
    assert!(
        parked < warm + 32 * 1024,
        "900 more parked runs grew RSS from {warm} KiB to {parked} KiB"
    );

    for (id, gate) in ids.iter().zip(&gates) {
        let path = format!("/runs/{id}/gates/{}/resolve", gate["id"].as_str().unwrap());
        serve
            .post(
                &path,
                json!({"token": gate["resolveToken"], "decision": "approved"}),
            )
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    for id in &ids {
        while srv.detail(id).await["run"]["status"] != "completed" {
            assert!(
                Instant::now() < deadline,
                "run {id} did not complete after its gate was approved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

backend_tests!(thousand_suspended_runs_stay_flat);
