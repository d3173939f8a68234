//! The engine's decision procedures under a manual clock, over an embedded
//! SQLite store: no Postgres, no wasm, a few seconds in all.

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tidebase_engine::clock::{Clock, Micros};
use tidebase_engine::config::Settings;
use tidebase_engine::{Engine, Enqueue, NewRun};
use tidebase_store_sql::{ConnectOptions, connect};

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}

/// At exactly `leaseExpiresAt` a queue run's lease has expired, for the
/// reconciler and for the run's owner check alike; one microsecond
/// earlier it holds for both.
#[tokio::test]
async fn a_lease_expires_at_its_expiry_instant() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ConnectOptions {
        database_url: Some(format!("sqlite://{}/t.db", dir.path().display())),
        data_dir: dir.path().to_path_buf(),
        auto_migrate: true,
        max_connections: 2,
    };
    let store = connect(&opts).await.unwrap();
    let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000_000_000)));
    let engine = Engine::new(store, clock.clone(), Settings::default());
    let mut req = Enqueue::new("q", NewRun::named("w", json!({})));
    req.max_attempts = Some(2);
    engine.enqueue(req).await.unwrap();
    let queues = ["q".to_string()];
    let claimed = engine
        .claim_queued(Some(&queues), "w1", 1, false)
        .await
        .unwrap();
    let run = &claimed[0];
    let expires = run.lease_expires_at.unwrap();

    clock.0.store(expires - 1, Ordering::SeqCst);
    assert_eq!(run.live_lease_owner(expires - 1), Some("w1"));
    assert_eq!(engine.reconcile_sweeps().await.unwrap().requeued, 0);

    clock.0.store(expires, Ordering::SeqCst);
    assert_eq!(run.live_lease_owner(expires), None);
    assert_eq!(engine.reconcile_sweeps().await.unwrap().requeued, 1);
}
