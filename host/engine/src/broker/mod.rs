//! The v0.7 credential broker for SDK clients (broker.md): agent identity
//! and sessions, run-bound grants, proxied calls and their audit. It stands
//! on the egress core (`crate::egress`): one vault, one address guard, one
//! sender and one receipt table serve both the wasm door and the SDK door.
//!
//! Identity, one file per rule: registration (`agents`), challenges
//! (`challenge`), proofs (`prove`), sessions (`sessions`), rate limits
//! (`rate`), and the audit ledger (`ledger`).

mod agents;
mod challenge;
mod ledger;
mod prove;
mod rate;
mod refusal;
mod sessions;

pub use agents::{IDENTITY_KINDS, NewAgent};
pub use challenge::Challenge;
pub use ledger::{AuditEntry, AuditFilters, LedgerQuery, LedgerScope, audit_limit};
pub use prove::Proof;
pub use rate::RateClass;
pub use refusal::AuthRefusal;
pub use sessions::SessionGrant;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

/// Equal secrets: lengths first, then the bytes in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// SHA-256 of `text` as lowercase hex: how tokens and spent challenges are
/// stored.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
