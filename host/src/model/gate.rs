use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::{Value, json};

/// The full gate, token and inline channel secrets included (as v0.5 returns it).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub id: String,
    pub run_id: String,
    pub name: String,
    pub prompt: String,
    pub data: Value,
    pub status: String,
    pub decision: Option<String>,
    pub actor: Option<String>,
    pub decision_payload: Option<Value>,
    pub capability: Value,
    pub channels: Value,
    pub resolve_token: String,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
    #[serde(serialize_with = "ts::opt")]
    pub resolved_at: Option<Micros>,
    /// Server-side timeout for wasm gates (v0.5 validates and discards it).
    #[serde(skip)]
    pub timeout_ms: Option<i64>,
}

impl Gate {
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// The shape used in events and channel deliveries.
    pub fn public(&self, public_url: &str) -> Value {
        json!({
            "id": self.id,
            "runId": self.run_id,
            "name": self.name,
            "prompt": self.prompt,
            "data": self.data,
            "status": self.status,
            "decision": self.decision,
            "actor": self.actor,
            "capability": self.capability,
            "resolveUrl": format!("{public_url}/runs/{}/gates/{}/resolve", self.run_id, self.id),
            "resolveToken": self.resolve_token,
        })
    }
}
