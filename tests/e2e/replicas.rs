//! Two `serve` processes on one Postgres: claims stay disjoint, a due
//! schedule fires once, and when one replica is killed (SIGKILL) in the
//! middle of wasm runs the other finishes every run exactly once.

use crate::harness::{Backend, Opts, TestServer, count_events};
use crate::serve::{Api, Serve};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const STEPS: usize = 150;

fn replica_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TIDEBASE_LEASE_MS", "1500"),
        ("TIDEBASE_RECONCILE_MS", "100"),
        ("TIDEBASE_WASM_WORKERS", "4"),
    ]
}

async fn claim(serve: &Api, owner: &str) -> Vec<String> {
    let body = json!({"queues": ["shared"], "limit": 3, "leaseOwner": owner});
    let res = serve.post("/queues/claim", body).await;
    res["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres() {
    let srv = TestServer::start_with(Backend::Postgres, Opts::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Serve::start(&srv, dir.path(), &replica_env()).await;

    // Wasm runs that take a while: many checkpointed steps each.
    let bytes = std::fs::read(tidebase_fixtures::STEPS).unwrap();
    let r = a
        .http
        .post(format!("{}/workflows/steps", a.base))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let mut runs = Vec::new();
    for _ in 0..8 {
        runs.push(
            a.post("/runs/steps", json!({"input": {"steps": STEPS}}))
                .await["run"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Only replica A exists yet, so every lease seen now is A's.
    let deadline = Instant::now() + Duration::from_secs(60);
    let a_owner = loop {
        let (_, list) = srv.get("/runs").await;
        let leased = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| r["leaseOwner"].as_str().map(String::from));
        if let Some(owner) = leased {
            break owner;
        }
        assert!(Instant::now() < deadline, "replica A never started a run");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Killed before B starts: with group commit A finishes these runs in
    // about the time a replica takes to start.
    drop(a); // SIGKILL: no graceful shutdown, leases stay held until they expire
    let b = Serve::start(&srv, dir.path(), &replica_env()).await;

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut taken_over = 0;
    for id in &runs {
        let detail = loop {
            let d = srv.detail(id).await;
            if d["run"]["status"] == "completed" {
                break d;
            }
            assert_ne!(d["run"]["status"], "failed", "{id}: {}", d["run"]["error"]);
            assert!(
                Instant::now() < deadline,
                "run {id} not finished by the surviving replica"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let events = detail["events"].as_array().unwrap();
        assert_eq!(
            count_events(events, "run.completed"),
            1,
            "{id} completed more than once"
        );
        assert_eq!(
            detail["run"]["result"]["sum"],
            json!(STEPS * (STEPS - 1) / 2)
        );
        let mut done = HashSet::new();
        for e in events.iter().filter(|e| e["type"] == "step.completed") {
            assert!(
                done.insert(e["payload"]["name"].as_str().unwrap().to_string()),
                "{id}: a step checkpointed twice"
            );
        }
        assert_eq!(
            done.len(),
            STEPS,
            "{id}: every step checkpointed exactly once"
        );
        let owners: HashSet<&str> = events
            .iter()
            .filter(|e| e["type"] == "run.started")
            .filter_map(|e| e["payload"]["leaseOwner"].as_str())
            .collect();
        if owners.contains(a_owner.as_str()) && owners.len() > 1 {
            taken_over += 1;
        }
    }
    assert!(
        taken_over >= 1,
        "no run was in flight on the killed replica: the kill tested nothing"
    );

    // Queue claims through both replicas never overlap.
    let c = Serve::start(&srv, dir.path(), &replica_env()).await;
    for i in 0..24 {
        b.post(
            "/queues/shared/enqueue",
            json!({"workflowName": "sdk-job", "input": {"i": i}}),
        )
        .await;
    }
    let mut handles = Vec::new();
    for (i, serve) in [&b, &c, &b, &c].into_iter().enumerate() {
        let probe = serve.api.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..4 {
                got.extend(claim(&probe, &format!("claimer-{i}")).await);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a run was claimed twice across replicas"
    );
    assert_eq!(all.len(), 24, "every queued run claimed once");

    // A due schedule fires exactly once although both replicas tick every
    // 100 ms. Its cron's next regular fire is months away, so a minute
    // boundary inside the check window cannot add a legitimate second fire.
    let sched = b
        .put(
            "/schedules/tick",
            json!({"cron": "0 0 1 1 *", "workflowName": "sdk-job", "queue": "sched"}),
        )
        .await;
    assert_eq!(sched["schedule"]["name"], "tick");
    let mut s = srv.engine.get_schedule("tick").await.unwrap();
    s.next_run_at = Some(srv.engine.now() - 60_000_000);
    let mut tx = srv.engine.store().write().await.unwrap();
    tx.put_schedule(&s).await.unwrap();
    tx.commit().await.unwrap();
    let fired = |list: &Value| {
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["queue"] == "sched")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while fired(&srv.get("/runs").await.1) == 0 {
        assert!(Instant::now() < deadline, "the due schedule never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more ticks of both replicas pass; still one run for that fire time.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fired(&srv.get("/runs").await.1),
        1,
        "the schedule fired more than once"
    );
}
