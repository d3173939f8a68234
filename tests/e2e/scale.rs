//! Suspended wasm runs hold no instance and no worker slot: a `serve`
//! process with 1,000 runs parked at gates stays flat in memory, and
//! resolving the gates completes every one of them.

use crate::harness::TestServer;
use crate::serve::Serve;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
    let serve = Serve::start(&srv, dir.path(), &[("TIDEBASE_RECONCILER", "0")]).await;
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
