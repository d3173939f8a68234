//! Deployed components (`components`, `deployments`) and the recorded
//! answers of wasm host calls made outside steps (`host_calls`).

use crate::clock::Micros;
use crate::model::Deployment;
use crate::store::Result;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait DeploymentRows {
    /// Store component bytes under their digest (a no-op if already stored).
    async fn put_component(&mut self, digest: &str, bytes: &[u8], now: Micros) -> Result<()>;
    async fn component(&mut self, digest: &str) -> Result<Option<Vec<u8>>>;
    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()>;
    /// Deployments newest first; one workflow's, or all.
    async fn deployments(&mut self, workflow: Option<&str>) -> Result<Vec<Deployment>>;
    /// The deployment a run pinned to `digest` executes under.
    async fn deployment_for(&mut self, workflow: &str, digest: &str) -> Result<Option<Deployment>>;
}

#[async_trait]
pub trait HostCallRows {
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
