//! The broker's identity tables: `agents`, `agent_sessions`, and the abuse
//! stores `consumed_challenges` and `rate_limits`.

use crate::clock::Micros;
use crate::model::{AgentRecord, SessionRecord};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait AgentRows {
    /// Insert `a`; or, when an agent with its (principal, name) exists,
    /// give that one `a`'s kind, key and metadata, status `active` and
    /// `a.updated_at`, keeping its id. The agent as stored afterwards.
    async fn upsert_agent(&mut self, a: &AgentRecord) -> Result<AgentRecord>;
    async fn agent(&mut self, id: &str) -> Result<Option<AgentRecord>>;
    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()>;
    /// The agent of the session whose token hashes to `token_hash`, if
    /// that session is not revoked, expires after `now`, and its agent is
    /// `active`.
    async fn session_agent(&mut self, token_hash: &str, now: Micros)
    -> Result<Option<AgentRecord>>;
}

#[async_trait]
pub trait AbuseRows {
    /// Record a spent challenge until `expires_at`; `false` when it was
    /// recorded already.
    async fn consume_challenge(&mut self, hash: &str, expires_at: Micros) -> Result<bool>;
    /// Count one request in `bucket` for the window starting at
    /// `window_start`, in one atomic statement: the count goes up within
    /// the same window and restarts at 1 in a new one. The count after.
    async fn count_request(&mut self, bucket: &str, window_start: Micros) -> Result<i64>;
    /// Forget challenges that expired before `now` and windows that
    /// started before `windows_before`.
    async fn sweep_abuse(&mut self, now: Micros, windows_before: Micros) -> Result<()>;
}
