//! Agent sessions (broker.md §4.5): bearer tokens of 15 minutes, stored
//! only as their SHA-256 digest, valid while not revoked, not expired and
//! their agent active.

use super::{AgentSession, sha256_hex};
use crate::clock::iso;
use crate::model::{AgentRecord, SessionRecord, principal_of};
use crate::{Engine, Result, ids};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// Lifetime of a session.
const SESSION_MICROS: i64 = 15 * 60 * 1_000_000;
const TOKEN_PREFIX: &str = "tdb_ags_";

/// A proof's answer: the session token, shown this once.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionGrant {
    pub agent_id: String,
    pub session_token: String,
    pub expires_at: String,
}

impl Engine {
    /// A new session of `agent`.
    pub(crate) async fn open_session(&self, agent: &AgentRecord) -> Result<SessionGrant> {
        let token = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let now = self.now();
        let session = SessionRecord {
            id: ids::new_id("ags"),
            agent_id: agent.id.clone(),
            token_hash: sha256_hex(&token),
            expires_at: now + SESSION_MICROS,
            revoked_at: None,
            created_at: now,
        };
        let mut w = self.write().await?;
        w.tx.insert_session(&session).await?;
        self.commit(w).await?;
        Ok(SessionGrant {
            agent_id: agent.id.clone(),
            session_token: token,
            expires_at: iso(session.expires_at),
        })
    }

    /// The live session `token` opens, with its agent's principal now.
    pub async fn session(&self, token: &str) -> Result<Option<AgentSession>> {
        let agent = self
            .read()
            .await?
            .session_agent(&sha256_hex(token), self.now())
            .await?;
        Ok(agent.map(|a| AgentSession {
            principal: principal_of(&a.principal),
            agent_id: a.id,
        }))
    }
}
