use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    pub run_id: String,
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: Value,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEdge {
    pub id: String,
    pub parent_run_id: String,
    pub child_run_id: String,
    pub name: String,
    pub edge_type: String,
    pub metadata: Value,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub run_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub config: Value,
    pub events: Value,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    pub id: String,
    pub run_id: String,
    pub step_id: Option<String>,
    pub kind: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub label: Option<String>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub metadata: Value,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}
