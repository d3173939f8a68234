//! Runs as the wasm worker loop sees them: claimable, parked, woken.

use crate::clock::Micros;
use crate::model::Run;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait WasmRunRows {
    /// Wasm runs that may be picked up now: pending, or running with no
    /// live lease (none, or expired: `model::lease_expired`) and not parked
    /// into the future. Locked (and skipped by other claimers) on Postgres.
    async fn ready_wasm_runs(
        &mut self,
        now: Micros,
        limit: i64,
        root: Option<&str>,
    ) -> Result<Vec<Run>>;
    /// Pin never-started runs of `workflow` that no component claimed yet.
    async fn adopt_pending(&mut self, workflow: &str, digest: &str) -> Result<u64>;
    /// Pull a parked run's wake-up time forward to `now`.
    async fn wake(&mut self, run_id: &str, now: Micros) -> Result<()>;
    /// Earliest future wake-up among parked wasm runs, to size the idle wait.
    async fn next_wake(&mut self, now: Micros) -> Result<Option<Micros>>;
}
