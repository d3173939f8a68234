use super::{ResumeContract, ts};
use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    pub run_id: String,
    pub name: String,
    pub input_hash: String,
    pub input: Value,
    pub options: Value,
    /// Derived from `options` on every read; never stored.
    pub resume_contract: ResumeContract,
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub lease_owner: Option<String>,
    #[serde(serialize_with = "ts::opt")]
    pub lease_expires_at: Option<Micros>,
    pub attempt: i32,
    #[serde(serialize_with = "ts::opt")]
    pub started_at: Option<Micros>,
    #[serde(serialize_with = "ts::opt")]
    pub completed_at: Option<Micros>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
}

impl Step {
    pub fn live_lease_owner(&self, now: Micros) -> Option<&str> {
        super::lease::live_owner(&self.lease_owner, self.lease_expires_at, now)
    }
}
