//! The store's commit ceiling: single-row autocommit inserts per second
//! through this store's own pool or writer, with its pragmas. The bench
//! states its results as a share of it, because absolute rates move between
//! machines and the ceiling moves with them.

use super::Result;
use super::sql::{SqlStore, q};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one ceiling measurement did.
#[derive(Clone, Debug, Default)]
pub struct CeilingSample {
    pub commits: u64,
    pub elapsed: Duration,
    /// One per commit, in no order.
    pub latencies: Vec<Duration>,
}

impl CeilingSample {
    pub fn commits_per_sec(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A table of its own, so the probe touches nothing of the engine's.
const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS commit_ceiling (id TEXT PRIMARY KEY, payload TEXT NOT NULL)";
const INSERT: &str = "INSERT INTO commit_ceiling (id, payload) VALUES ($1, $2)";
const DROP: &str = "DROP TABLE IF EXISTS commit_ceiling";

impl SqlStore {
    /// `concurrency` tasks, each inserting one `payload_bytes` row per
    /// autocommit statement for `duration`; the table is dropped afterwards.
    pub async fn commit_ceiling(
        self: &Arc<Self>,
        concurrency: usize,
        duration: Duration,
        payload_bytes: usize,
    ) -> Result<CeilingSample> {
        self.probe_statement(CREATE).await?;
        let payload = "x".repeat(payload_bytes);
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..concurrency.max(1))
            .map(|k| {
                let (store, payload, stop) = (self.clone(), payload.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let id = format!("{k}-{}", latencies.len());
                        store.probe_insert(&id, &payload).await?;
                        latencies.push(t.elapsed());
                    }
                    Result::Ok(latencies)
                })
            })
            .collect();
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut sample = CeilingSample::default();
        for task in tasks {
            let latencies = task
                .await
                .map_err(|e| super::StoreError::other(format!("ceiling task: {e}")))??;
            sample.commits += latencies.len() as u64;
            sample.latencies.extend(latencies);
        }
        sample.elapsed = t0.elapsed();
        self.probe_statement(DROP).await?;
        Ok(sample)
    }

    /// One autocommit insert, written as every write is.
    async fn probe_insert(&self, id: &str, payload: &str) -> Result<()> {
        let insert = q(INSERT).bind(id.to_string()).bind(payload.to_string());
        self.write_once(insert).await?;
        Ok(())
    }

    async fn probe_statement(&self, sql: &str) -> Result<()> {
        self.write_once(q(sql)).await?;
        Ok(())
    }
}
