use serde::Serialize;

/// The audit record of one egress decision, allowed or denied, through
/// either door (a wasm step's call, or a proxied use of a grant). Names the
/// target without its query (query values may carry data or, for a
/// query-injected credential, the secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub id: String,
    pub run_id: String,
    /// The grant a proxied SDK call went through; `None` for wasm egress.
    pub grant_id: Option<String>,
    /// The agent that made a proxied SDK call; `None` for wasm egress.
    pub agent_id: Option<String>,
    pub step: Option<String>,
    pub attempt: Option<i32>,
    /// The resource that admitted or refused the call, if one covered it.
    pub resource: Option<String>,
    pub method: String,
    /// Host, with the port when the URL names one.
    pub host: String,
    pub path: String,
    /// `allowed` or `denied`.
    pub decision: String,
    pub reason: Option<String>,
    /// The refusal class (`egress_denied`, `egress_timeout`, …) of a call
    /// that did not deliver a response.
    pub class: Option<String>,
    pub status: Option<u16>,
    /// Response body bytes received from the upstream.
    pub bytes: i64,
    pub duration_ms: i64,
    /// ISO-8601 UTC, millisecond precision.
    pub at: String,
}
