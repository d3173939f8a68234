//! The runs the reconciler's sweeps act on.

use crate::clock::Micros;
use crate::model::Run;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait SweepRows {
    /// `running` runs (not wasm) whose lease has expired at `now`
    /// (`model::lease_expired`), oldest first: queue runs, and runs with a
    /// recovery webhook whose last recovery attempt is not after
    /// `nudged_since` (the others need nothing).
    async fn expired_leases(
        &mut self,
        now: Micros,
        nudged_since: Micros,
        limit: i64,
    ) -> Result<Vec<Run>>;
    /// `pending`/`queued`/`running` runs whose deadline passed before `now`.
    async fn overdue_runs(&mut self, now: Micros, limit: i64) -> Result<Vec<Run>>;
}
