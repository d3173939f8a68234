use super::ts;
use crate::clock::Micros;
use serde::Serialize;
use serde_json::{Value, json};

/// A run-bound grant as stored (broker.md §6, §12).
#[derive(Clone, Debug, PartialEq)]
pub struct GrantRecord {
    pub id: String,
    pub run_id: String,
    /// The agent that requested it (and alone may use it).
    pub agent_id: Option<String>,
    pub resource_id: Option<String>,
    /// The full requested resource string, e.g. `github:repo:acme/app`.
    pub resource: String,
    pub action: String,
    pub scopes: Vec<String>,
    pub reason: Option<String>,
    /// `proxy` or `mint`.
    pub mode: String,
    /// One of [`GrantStatus`]'s names.
    pub status: String,
    /// The approval gate, when policy required one.
    pub gate_id: Option<String>,
    pub max_uses: i32,
    pub used_count: i32,
    pub ttl_seconds: i32,
    /// The policy decision at request time (§12).
    pub policy: Value,
    pub issued_at: Option<Micros>,
    /// Pending: end of the approval window; active: end of the TTL.
    pub expires_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// Grant statuses (`approved` exists in the schema but is never written).
pub mod grant_status {
    pub const PENDING: &str = "pending";
    pub const ACTIVE: &str = "active";
    pub const DENIED: &str = "denied";
    pub const EXPIRED: &str = "expired";
    pub const REVOKED: &str = "revoked";
    pub const USED: &str = "used";
    /// Statuses the reconciler expires and a resource revocation revokes.
    pub const LIVE: [&str; 3] = [PENDING, "approved", ACTIVE];
    /// Statuses nothing changes any more.
    pub const TERMINAL: [&str; 3] = [USED, EXPIRED, REVOKED];
}

/// A grant as the API returns it (§2.3), in the field order upstream emits.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub grant_id: String,
    pub run_id: String,
    pub resource: String,
    pub action: String,
    pub status: String,
    pub mode: String,
    #[serde(serialize_with = "ts::opt")]
    pub expires_at: Option<Micros>,
    pub gate_id: Option<String>,
}

impl GrantRecord {
    pub fn is_live(&self) -> bool {
        grant_status::LIVE.contains(&self.status.as_str())
    }

    pub fn view(&self) -> Grant {
        Grant {
            grant_id: self.id.clone(),
            run_id: self.run_id.clone(),
            resource: self.resource.clone(),
            action: self.action.clone(),
            status: self.status.clone(),
            mode: self.mode.clone(),
            expires_at: self.expires_at,
            gate_id: self.gate_id.clone(),
        }
    }

    /// The payload of a `grant.*` event (§2.4): the grant as it is now,
    /// with `agent_id` the agent the event is about. Never a token, hash,
    /// secret or connection reference.
    pub fn receipt(&self, agent_id: Option<&str>) -> Value {
        json!({
            "grantId": self.id,
            "resource": self.resource,
            "action": self.action,
            "agentId": agent_id,
            "mode": self.mode,
            "status": self.status,
            "gateId": self.gate_id,
            "expiresAt": self.expires_at.map(crate::clock::iso),
        })
    }
}
