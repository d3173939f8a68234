//! The v0.7 credential broker for SDK clients (broker.md): agent identity
//! and sessions, run-bound grants, proxied calls and their audit. It stands
//! on the egress core (`crate::egress`): one vault, one address guard, one
//! sender and one receipt table serve both the wasm door and the SDK door.

pub mod actions;
mod custody;
mod grant_refusal;
mod grants;
mod proxy;

pub use custody::{Backend, Credential, Custody};
pub use grant_refusal::{GrantRefusal, ProxyFailure};
pub use grants::{DEFAULT_TTL_S, GrantRequest, MAX_USES, MODES, TTL_S};
pub use proxy::{Proxied, ProxyCall};

/// A live agent session, as authentication found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSession {
    pub agent_id: String,
    /// The agent's tenant at lookup time; `None` for an agent without one.
    pub principal: Option<String>,
}

/// Who is calling, as authentication decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No API key is configured: core routes are open.
    Open,
    /// The bearer is the API key.
    Admin,
    /// The bearer is a proved agent session (grant and audit routes only).
    Agent(AgentSession),
}
