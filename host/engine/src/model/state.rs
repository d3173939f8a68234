use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveState {
    pub run_id: String,
    pub value: Value,
    pub version: i32,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateStream {
    pub id: String,
    pub run_id: Option<String>,
    pub name: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub current_version: i32,
    pub current_value: Value,
    pub metadata: Value,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
    #[serde(serialize_with = "ts::req")]
    pub updated_at: Micros,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateVersion {
    pub id: String,
    pub stream_id: String,
    pub run_id: Option<String>,
    pub step_id: Option<String>,
    pub version: i32,
    pub value: Value,
    pub patch: Option<Value>,
    pub label: Option<String>,
    pub reason: Option<String>,
    pub importance: String,
    pub metadata: Value,
    pub created_by: Option<String>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}

impl StateVersion {
    /// The shape used inside event payloads and deliveries.
    pub fn public(&self) -> Value {
        json!({
            "id": self.id,
            "streamId": self.stream_id,
            "runId": self.run_id,
            "version": self.version,
            "label": self.label,
            "reason": self.reason,
            "importance": self.importance,
            "createdAt": crate::clock::iso(self.created_at),
        })
    }
}
