//! Runs as queue items (dedupe, claim selection, counts) and queue
//! configuration (`queue_configs`).

use crate::clock::Micros;
use crate::model::{QueueConfig, QueueCounts, Run};
use crate::store::Result;
use async_trait::async_trait;

/// Which runs a claim may return: external workers never see runs pinned to
/// a deployed component; the host's wasm worker sees only those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimant {
    External,
    Wasm,
}

#[async_trait]
pub trait QueueRows {
    /// Insert a run unless its `(queue, dedupe key)` is held by an active run
    /// (the partial unique index decides). Returns whether it was inserted.
    async fn insert_run_unless_active(&mut self, run: &Run) -> Result<bool>;
    /// The run holding a dedupe key (see `RunStatus::HOLDS_DEDUPE_KEY`).
    async fn active_run_by_key(&mut self, queue: &str, key: &str) -> Result<Option<Run>>;
    /// Ready runs of a queue (`queued`, `run_at <= now`), highest priority
    /// first then oldest `run_at`. With `lock`, rows are locked and rows
    /// locked by others skipped (Postgres).
    async fn ready_queue_runs(
        &mut self,
        queue: &str,
        now: Micros,
        limit: i64,
        who: Claimant,
        lock: bool,
    ) -> Result<Vec<Run>>;
    /// Names of queues that have ready runs for `who`, sorted.
    async fn queues_with_ready_runs(&mut self, now: Micros, who: Claimant) -> Result<Vec<String>>;
    /// Runs of a queue in status `running`.
    async fn running_in_queue(&mut self, queue: &str) -> Result<i64>;
    /// Runs of a queue (any status) claimed after `since`.
    async fn claimed_since(&mut self, queue: &str, since: Micros) -> Result<i64>;
    /// Per-status counts of every queue that has runs, sorted by name.
    async fn queue_counts(&mut self) -> Result<Vec<QueueCounts>>;
    /// Move a queued run's `run_at` from `expected` to `to` (nothing else);
    /// false when the run is no longer queued at `expected`.
    async fn push_run_at(&mut self, run_id: &str, expected: Micros, to: Micros) -> Result<bool>;
}

#[async_trait]
pub trait QueueConfigRows {
    async fn queue_config(&mut self, name: &str) -> Result<Option<QueueConfig>>;
    /// All configured queues, sorted by name.
    async fn queue_configs(&mut self) -> Result<Vec<QueueConfig>>;
    /// Insert or fully replace a queue's configuration.
    async fn put_queue_config(&mut self, config: &QueueConfig) -> Result<()>;
}
