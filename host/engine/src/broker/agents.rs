//! Agent registration (an upsert on principal and name) and lookup
//! (broker.md §3.1, §3.2).

use super::AuthRefusal;
use crate::model::{Agent, AgentRecord};
use crate::{Engine, EngineError, Entity, Result, ids, limits};
use serde_json::Value;

/// The identity kinds an agent may register with (§4.1).
pub const IDENTITY_KINDS: [&str; 4] = ["dev_token", "keypair", "cloud_key", "spire"];

/// A `POST /agents` body.
#[derive(Clone, Debug)]
pub struct NewAgent {
    pub name: String,
    /// `None`: the agent belongs to no tenant.
    pub principal: Option<String>,
    pub identity_kind: String,
    /// Not checked here: a key that does not parse fails the proof.
    pub public_key: Option<String>,
    /// A JSON object.
    pub metadata: Value,
}

impl NewAgent {
    fn check(&self) -> Result<()> {
        limits::check_name("name", &self.name)?;
        if let Some(p) = &self.principal {
            limits::check_name("principal", p)?;
        }
        limits::check_opt_text("publicKey", self.public_key.as_deref())?;
        if !IDENTITY_KINDS.contains(&self.identity_kind.as_str()) {
            return Err(EngineError::BadRequest(format!(
                "identityKind must be one of {}",
                IDENTITY_KINDS.join(", ")
            )));
        }
        if !self.metadata.is_object() {
            return Err(EngineError::BadRequest("metadata must be an object".into()));
        }
        Ok(())
    }
}

impl Engine {
    /// Register `a`, or update the agent of the same principal and name
    /// (same id; its sessions stay valid). No event is written.
    pub async fn register_agent(&self, a: NewAgent) -> Result<Agent> {
        a.check()?;
        let now = self.now();
        let record = AgentRecord {
            id: ids::new_id("agent"),
            name: a.name,
            principal: a.principal.unwrap_or_default(),
            identity_kind: a.identity_kind,
            public_key: a.public_key,
            status: "active".into(),
            metadata: a.metadata,
            created_at: now,
            updated_at: now,
        };
        let mut w = self.write().await?;
        let stored = w.tx.upsert_agent(&record).await?;
        self.commit(w).await?;
        Ok(Agent::from(&stored))
    }

    pub async fn agent(&self, id: &str) -> Result<Agent> {
        let found = self.read().await?.agent(id).await?;
        found
            .map(|a| Agent::from(&a))
            .ok_or(EngineError::NotFound(Entity::Agent))
    }

    /// The agent a challenge or proof names: 404 when unknown, 403 when
    /// not active.
    pub(crate) async fn active_agent(&self, id: &str) -> Result<AgentRecord> {
        let agent = self.read().await?.agent(id).await?;
        let agent = agent.ok_or(EngineError::NotFound(Entity::Agent))?;
        if agent.status != "active" {
            return Err(EngineError::Auth(AuthRefusal::AgentInactive));
        }
        Ok(agent)
    }
}
