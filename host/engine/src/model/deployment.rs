use super::ts;
use crate::clock::Micros;
use serde::Serialize;

/// One deployed version of a workflow: a content-addressed component plus
/// its sandbox limits and egress grants.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub workflow_name: String,
    pub version: i32,
    pub digest: String,
    pub memory_limit_bytes: Option<i64>,
    pub cpu_limit_ms: Option<i64>,
    /// Names of the resources its runs may call through the broker.
    pub allow: Vec<String>,
    /// Per-call egress timeout and response cap; `None`: the defaults.
    pub egress_timeout_ms: Option<i64>,
    pub egress_max_bytes: Option<i64>,
    #[serde(serialize_with = "ts::req")]
    pub created_at: Micros,
}
