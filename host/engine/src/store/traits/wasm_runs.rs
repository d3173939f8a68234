//! Runs as the wasm worker loop sees them: parked, woken (claims are
//! `Store::claim_wasm_runs`).

use crate::clock::Micros;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait WasmRunRows {
    /// Pin never-started runs of `workflow` that no component claimed yet.
    async fn adopt_pending(&mut self, workflow: &str, digest: &str) -> Result<u64>;
    /// Pull a parked run's wake-up time forward to `now`.
    async fn wake(&mut self, run_id: &str, now: Micros) -> Result<()>;
    /// Earliest future wake-up among parked wasm runs, to size the idle wait.
    async fn next_wake(&mut self, now: Micros) -> Result<Option<Micros>>;
}
