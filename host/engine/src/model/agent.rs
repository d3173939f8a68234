use crate::clock::Micros;
use serde::Serialize;
use serde_json::Value;

/// An agent identity as stored. `principal` is `""` for an agent of no
/// tenant, so that (principal, name) is a real key.
#[derive(Clone, Debug)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub principal: String,
    /// `dev_token`, `keypair`, `cloud_key` or `spire`.
    pub identity_kind: String,
    /// SPKI PEM of the agent's Ed25519 key (keypair and cloud_key kinds).
    pub public_key: Option<String>,
    /// `active`; the schema also allows `disabled` and `revoked`.
    pub status: String,
    pub metadata: Value,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// An agent on the wire (broker.md §2.1): no key, metadata or timestamps.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub agent_id: String,
    pub name: String,
    /// `null` for an agent of no tenant.
    pub principal: Option<String>,
    pub identity_kind: String,
    pub status: String,
}

impl From<&AgentRecord> for Agent {
    fn from(r: &AgentRecord) -> Agent {
        Agent {
            agent_id: r.id.clone(),
            name: r.name.clone(),
            principal: principal_of(&r.principal),
            identity_kind: r.identity_kind.clone(),
            status: r.status.clone(),
        }
    }
}

/// A stored principal (`""`: none) as the API shows it.
pub fn principal_of(stored: &str) -> Option<String> {
    (!stored.is_empty()).then(|| stored.to_string())
}

/// An agent session row; the token itself is never stored.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: String,
    pub agent_id: String,
    /// SHA-256 hex of the session token.
    pub token_hash: String,
    pub expires_at: Micros,
    pub revoked_at: Option<Micros>,
    pub created_at: Micros,
}
