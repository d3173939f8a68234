//! The host's own worker loop: claims runs of deployed workflows, runs one
//! activation each in the wasm runtime, and records the outcome through the
//! engine. A run waiting on a gate, sleep or child holds no instance and no
//! slot: its lease is released and it is claimed again when woken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tidebase_engine::model::{Deployment, Run, RunStatus};
use tidebase_engine::store::ClaimedRun;
use tidebase_engine::{ActivationOutcome, Ended, Engine};
use tidebase_wasm::{Progress, Runtime, panicked};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, watch};

/// Longest idle wait between claim attempts; commits in this process that
/// make a wasm run claimable wake the loop at once.
const IDLE: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Worker {
    engine: Engine,
    runtime: Arc<Runtime>,
    owner: String,
    slots: Arc<Semaphore>,
    slot_count: usize,
    /// Only this run and its descendants (the CLI's `run`), or every run.
    root: Option<String>,
    progress: Option<Progress>,
}

impl Worker {
    pub fn new(engine: Engine, runtime: Arc<Runtime>, slots: usize) -> Worker {
        let owner = format!("wasm-worker-{}", uuid::Uuid::new_v4());
        let slot_count = slots.max(1);
        let slots = Arc::new(Semaphore::new(slot_count));
        Worker {
            engine,
            runtime,
            owner,
            slots,
            slot_count,
            root: None,
            progress: None,
        }
    }

    /// Execute only `run_id` and the child runs it starts.
    pub fn only_tree(mut self, run_id: &str) -> Worker {
        self.root = Some(run_id.to_string());
        self
    }

    /// Report each durable effect (for the CLI's stderr).
    pub fn with_progress(mut self, progress: Progress) -> Worker {
        self.progress = Some(progress);
        self
    }

    /// Claim and execute until `stop` turns true; waits for running
    /// activations before returning.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if self.slots.available_permits() == 0 {
                // Busy: resume claiming the moment an activation ends.
                tokio::select! {
                    free = self.slots.acquire() => drop(free),
                    _ = stop.changed() => continue,
                }
            }
            let claimed = self.claim(self.slots.available_permits() as i64).await;
            let idle = claimed.is_empty();
            let deployments = self.deployments(&claimed).await;
            for (run, deployment) in claimed.into_iter().zip(deployments) {
                let permit = self
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let me = self.clone();
                tokio::spawn(async move {
                    me.execute(run, deployment).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = self.engine.wasm_work() => {}
                    _ = tokio::time::sleep(self.idle_wait().await) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Every permit back means every in-flight activation recorded its outcome.
        let _ = self.slots.acquire_many(self.slot_count as u32).await;
    }

    /// How long to sleep when nothing is claimable: until the next parked
    /// run is due, at most [`IDLE`] (which also covers other replicas'
    /// commits and queued runs becoming ready).
    async fn idle_wait(&self) -> Duration {
        let now = self.engine.now();
        match self.engine.next_wake().await {
            Ok(Some(at)) => Duration::from_micros((at - now).max(1_000) as u64).min(IDLE),
            _ => IDLE,
        }
    }

    /// Runs to execute now: woken or new runs first, then queued runs of
    /// deployed workflows under their queues' caps and rate limits.
    async fn claim(&self, free: i64) -> Vec<ClaimedRun> {
        if free == 0 {
            return Vec::new();
        }
        let mut runs = match self
            .engine
            .claim_wasm_runs(&self.owner, free, self.root.as_deref())
            .await
        {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming wasm runs failed");
                return Vec::new();
            }
        };
        let left = free - runs.len() as i64;
        // Queue runs belong to the server's worker, not to a CLI `run`.
        if left > 0 && self.root.is_none() {
            match self
                .engine
                .claim_queued(None, &self.owner, left, true)
                .await
            {
                // Whether they have anything recorded is not known: read it.
                Ok(queued) => runs.extend(queued.into_iter().map(|run| ClaimedRun {
                    run,
                    recorded: true,
                })),
                Err(e) => tracing::warn!(error = %e, "claiming queued wasm runs failed"),
            }
        }
        runs
    }

    /// The deployment each claimed run executes under, read once per claim
    /// (`Engine::deployments_of`); a run without one is retried later.
    async fn deployments(&self, claimed: &[ClaimedRun]) -> Vec<Result<Deployment, String>> {
        let runs: Vec<&Run> = claimed.iter().map(|c| &c.run).collect();
        match self.engine.deployments_of(&runs).await {
            Ok(found) => found
                .into_iter()
                .map(|d| d.map_err(|e| e.to_string()))
                .collect(),
            Err(e) => claimed.iter().map(|_| Err(e.to_string())).collect(),
        }
    }

    /// One activation of a claimed run under its deployment, and its
    /// bookkeeping.
    async fn execute(&self, claimed: ClaimedRun, deployment: Result<Deployment, String>) {
        let (engine, run) = (&self.engine, &claimed.run);
        let deployment = match deployment {
            Ok(d) => d,
            Err(why) => return self.record(run, ActivationOutcome::Retry(why).into()).await,
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        // Stopped when this function returns or unwinds: a dead activation
        // must not keep its run's lease alive.
        let watch = AbortOnDrop(self.watch_cancel(&run.id, cancelled.clone()));
        let heartbeat = AbortOnDrop(self.heartbeat(&run.id));
        // The activation is its own task, so a panic in it (a host bug) ends
        // here as a `JoinError` and fails the run instead of leaving it
        // `running` with a live lease.
        let mut activation = {
            let (runtime, engine) = (self.runtime.clone(), engine.clone());
            let (claimed, owner, progress) =
                (claimed.clone(), self.owner.clone(), self.progress.clone());
            AbortOnDrop(tokio::spawn(async move {
                runtime
                    .activate(&engine, &claimed, &deployment, &owner, cancelled, progress)
                    .await
            }))
        };
        let ended = match (&mut activation.0).await {
            Ok(ended) => ended,
            Err(e) if e.is_panic() => panicked(e.into_panic()).into(),
            Err(e) => ActivationOutcome::Retry(format!("activation task ended: {e}")).into(),
        };
        drop((watch, heartbeat));
        self.record(run, ended).await;
    }

    async fn record(&self, run: &Run, ended: Ended) {
        let recorded = self.engine.record_outcome(&run.id, &self.owner, ended);
        if let Err(e) = recorded.await {
            tracing::warn!(run_id = %run.id, error = %e, "recording wasm outcome failed");
        }
    }

    /// Flip `flag` when this run is cancelled in this process, so host calls
    /// and the epoch check stop the guest promptly. (A cancellation by
    /// another replica clears the lease, which fences the next checkpoint.)
    fn watch_cancel(&self, run_id: &str, flag: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
        let (engine, run_id) = (self.engine.clone(), run_id.to_string());
        let mut cancels = engine.cancellations();
        tokio::spawn(async move {
            loop {
                match cancels.recv().await {
                    Ok(id) if id == run_id => break,
                    Ok(_) => continue,
                    // Missed announcements: ask the store instead.
                    Err(RecvError::Lagged(_)) => {
                        if engine
                            .get_run(&run_id)
                            .await
                            .is_ok_and(|r| r.status == RunStatus::Cancelled)
                        {
                            break;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
            flag.store(true, Ordering::Relaxed);
        })
    }

    /// Keep the run lease alive while a long activation runs.
    fn heartbeat(&self, run_id: &str) -> tokio::task::JoinHandle<()> {
        let (engine, run_id, owner) = (self.engine.clone(), run_id.to_string(), self.owner.clone());
        let every = Duration::from_millis((engine.settings.lease_ms / 3).max(50) as u64);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match engine.heartbeat(&run_id, &owner).await {
                    // Lost, cancelled or gone: the activation's own writes
                    // are fenced and will stop it.
                    Err(e) if e.ends_lease() => return,
                    // A busy store is no reason to let a live lease lapse.
                    Err(e) => {
                        tracing::warn!(run = %run_id, error = %e, "lease renewal failed; retrying")
                    }
                    Ok(_) => {}
                }
            }
        })
    }
}

/// Aborts a task when the execution that started it ends, however it ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
