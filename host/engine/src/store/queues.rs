//! Rows behind queues, schedules, the reconciler and outbound webhooks.

use super::Result;
use crate::clock::Micros;
use crate::model::{
    CallOutcome, Delivery, QueueConfig, QueueCounts, RecoveryAttempt, Run, Schedule,
};
use async_trait::async_trait;

/// Which runs a claim may return: external workers never see runs pinned to
/// a deployed component; the host's wasm worker sees only those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimant {
    External,
    Wasm,
}

#[async_trait]
pub trait QueueTx {
    /// Insert a run unless its `(queue, dedupe key)` is held by an active run
    /// (the partial unique index decides). Returns whether it was inserted.
    async fn insert_run_unless_active(&mut self, run: &Run) -> Result<bool>;
    /// The `queued` or `running` run holding a dedupe key.
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
    /// `running` runs (not wasm) whose lease expired before `now`, oldest
    /// first: queue runs, and runs with a recovery webhook whose last
    /// recovery attempt is not after `nudged_since` (the others need nothing).
    async fn expired_leases(
        &mut self,
        now: Micros,
        nudged_since: Micros,
        limit: i64,
    ) -> Result<Vec<Run>>;
    /// `pending`/`queued`/`running` runs whose deadline passed before `now`.
    async fn overdue_runs(&mut self, now: Micros, limit: i64) -> Result<Vec<Run>>;
    /// Move a queued run's `run_at` from `expected` to `to` (nothing else);
    /// false when the run is no longer queued at `expected`.
    async fn push_run_at(&mut self, run_id: &str, expected: Micros, to: Micros) -> Result<bool>;

    async fn queue_config(&mut self, name: &str) -> Result<Option<QueueConfig>>;
    /// All configured queues, sorted by name.
    async fn queue_configs(&mut self) -> Result<Vec<QueueConfig>>;
    /// Insert or fully replace a queue's configuration.
    async fn put_queue_config(&mut self, config: &QueueConfig) -> Result<()>;

    async fn schedule(&mut self, name: &str, lock: bool) -> Result<Option<Schedule>>;
    /// All schedules, sorted by name.
    async fn schedules(&mut self) -> Result<Vec<Schedule>>;
    /// Insert or fully replace a schedule.
    async fn put_schedule(&mut self, schedule: &Schedule) -> Result<()>;
    async fn delete_schedule(&mut self, name: &str) -> Result<bool>;
    /// Enabled schedules with `next_run_at <= now`.
    async fn due_schedules(&mut self, now: Micros) -> Result<Vec<Schedule>>;

    async fn insert_recovery_attempt(&mut self, attempt: &RecoveryAttempt) -> Result<()>;
    /// Record an attempt's outcome (status, response, error, completion).
    async fn finish_recovery_attempt(&mut self, attempt: &RecoveryAttempt) -> Result<()>;
    /// When the newest recovery attempt of a run was created.
    async fn latest_recovery_attempt_at(&mut self, run_id: &str) -> Result<Option<Micros>>;

    /// Record a `pending` channel delivery.
    async fn insert_delivery(&mut self, delivery: &Delivery) -> Result<()>;
    /// Take a pending delivery for sending until `until`, unless another
    /// sender holds it; returns it when taken.
    async fn claim_delivery(
        &mut self,
        id: &str,
        now: Micros,
        until: Micros,
    ) -> Result<Option<Delivery>>;
    async fn finish_delivery(&mut self, id: &str, outcome: &CallOutcome, now: Micros)
    -> Result<()>;
    /// Pending deliveries created before `before` that no sender holds.
    async fn stale_deliveries(
        &mut self,
        before: Micros,
        now: Micros,
        limit: i64,
    ) -> Result<Vec<Delivery>>;
}
