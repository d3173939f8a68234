//! Rows behind deployed components and the wasm worker loop.

use super::Result;
use crate::clock::Micros;
use crate::model::{Deployment, Run};
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait WasmTx {
    /// Store component bytes under their digest (a no-op if already stored).
    async fn put_component(&mut self, digest: &str, bytes: &[u8], now: Micros) -> Result<()>;
    async fn component(&mut self, digest: &str) -> Result<Option<Vec<u8>>>;
    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()>;
    /// Deployments newest first; one workflow's, or all.
    async fn deployments(&mut self, workflow: Option<&str>) -> Result<Vec<Deployment>>;
    /// The deployment a run pinned to `digest` executes under.
    async fn deployment_for(&mut self, workflow: &str, digest: &str) -> Result<Option<Deployment>>;
    /// Wasm runs that may be picked up now: pending, or running with no live
    /// lease and not parked into the future. Locked (and skipped by other
    /// claimers) on Postgres.
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
    /// Recorded answers of a run's outside-step host calls, by call key.
    async fn host_calls(&mut self, run_id: &str) -> Result<Vec<(String, Value)>>;
    async fn insert_host_call(
        &mut self,
        run_id: &str,
        key: &str,
        answer: &Value,
        now: Micros,
    ) -> Result<()>;
}
