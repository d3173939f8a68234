//! What the broker refuses about resources, grants and proxied calls, as
//! values the HTTP door renders with upstream's status, `error` text and
//! `code` (broker.md §1.7).

use std::fmt;

/// Why a proxied call failed after its use was reserved (or, for a
/// fail-closed backend, before). The `failure` of `grant.use_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFailure {
    /// The backend cannot serve: not configured, not in this build, no
    /// secret or no base URL to proxy to.
    BackendNotConfigured,
    /// The stored credential could not be decrypted.
    ProviderError,
    /// The target is outside the resource, or an internal address.
    SsrfBlocked,
    /// The upstream could not be reached, broke off or timed out.
    UpstreamUnreachable,
    /// The upstream's answer is over the 1 MiB cap (our addition:
    /// upstream truncates).
    UpstreamTooLarge,
}

impl ProxyFailure {
    pub fn code(self) -> &'static str {
        match self {
            ProxyFailure::BackendNotConfigured => "backend_not_configured",
            ProxyFailure::ProviderError => "provider_error",
            ProxyFailure::SsrfBlocked => "ssrf_blocked",
            ProxyFailure::UpstreamUnreachable => "upstream_unreachable",
            ProxyFailure::UpstreamTooLarge => "upstream_too_large",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantRefusal {
    /// A grant route called with anything but an agent session.
    SessionRequired,
    /// The run brokers for another tenant.
    CrossTenant,
    /// No connected resource of the caller's tenant has that name.
    ResourceNotConnected,
    /// Requested scopes outside the resource's ceiling, in request order.
    ScopesExceedCeiling(Vec<String>),
    /// The policy denies the action; the reason names the rule.
    PolicyDenied { reason: String },
    /// Mint mode without a backend that can mint.
    MintUnavailable,
    /// The grant is not active, expired, used up, or another agent's.
    GrantUnusable,
    /// A revoke of a grant nothing changes any more; its status.
    GrantFinal(String),
    /// The proxied method is outside what the grant's action permits.
    CallDenied(String),
    /// A resource secret of no recognised shape, or one that cannot be
    /// injected; says why.
    BadSecret(String),
    /// A secret was given but there is no master key to vault it.
    CustodyUnavailable,
    /// A proxied call that failed, at the backend named `provider`.
    Proxy {
        failure: ProxyFailure,
        provider: String,
        message: String,
    },
}

impl fmt::Display for GrantRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantRefusal::SessionRequired => f.write_str(
                "grant operations require a proved agent session token, not the admin key",
            ),
            GrantRefusal::CrossTenant => f.write_str("run is owned by a different principal"),
            GrantRefusal::ResourceNotConnected => f.write_str("resource not connected"),
            GrantRefusal::ScopesExceedCeiling(_) => {
                f.write_str("requested scopes exceed resource ceiling")
            }
            GrantRefusal::PolicyDenied { .. } => f.write_str("action denied by policy"),
            GrantRefusal::MintUnavailable => {
                f.write_str("mint mode requires a credential backend that can mint; use proxy mode")
            }
            GrantRefusal::GrantUnusable => f.write_str(
                "grant not active, expired, revoked, exhausted, or not owned by this agent",
            ),
            GrantRefusal::GrantFinal(status) => write!(f, "grant is already {status}"),
            GrantRefusal::CallDenied(message)
            | GrantRefusal::BadSecret(message)
            | GrantRefusal::Proxy { message, .. } => f.write_str(message),
            GrantRefusal::CustodyUnavailable => {
                f.write_str("credential custody not configured: set TIDEBASE_MASTER_KEY")
            }
        }
    }
}

impl GrantRefusal {
    /// The machine-readable `code` of the answer, where upstream has one.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            GrantRefusal::SessionRequired => "session_required",
            GrantRefusal::CrossTenant => "cross_tenant",
            GrantRefusal::PolicyDenied { .. } => "policy_denied",
            GrantRefusal::MintUnavailable => "mint_unavailable",
            GrantRefusal::CallDenied(_) => "call_denied",
            GrantRefusal::BadSecret(_) => "bad_secret",
            GrantRefusal::CustodyUnavailable => "custody_unavailable",
            GrantRefusal::Proxy { failure, .. } => failure.code(),
            GrantRefusal::ResourceNotConnected
            | GrantRefusal::ScopesExceedCeiling(_)
            | GrantRefusal::GrantUnusable
            | GrantRefusal::GrantFinal(_) => return None,
        })
    }
}
