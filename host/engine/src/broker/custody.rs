//! Where a resource's credential lives (broker.md §7): which backend serves
//! a resource, per use, from its provider and the server's configuration
//! (§7.1), and the credential shapes the broker API vaults (§7.3). The
//! vault itself is the egress vault: one for both doors.

use super::GrantRefusal;
use crate::egress::{Injection, STATIC, Vault};
use crate::model::ResourceRecord;
use crate::{Engine, EngineError, Result};
use serde_json::Value;

/// The credential backends this server has, decided from its environment
/// at start (upstream reads some of these per request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custody {
    /// Simulate calls of resources no real backend serves: outside
    /// production, or with `TIDEBASE_ALLOW_DEV_REFERENCE=1`.
    pub dev_reference: bool,
    /// `NANGO_SECRET_KEY` is set. This build has no Nango client, so such
    /// resources then fail closed, naming that.
    pub nango: bool,
    /// `OPENBAO_ADDR` and `OPENBAO_TOKEN` are set; as for `nango`.
    pub openbao: bool,
    /// `TIDEBASE_KMS` names a key service other than `local`, which this
    /// build does not implement: no secret can be vaulted or opened.
    pub unsupported_kms: Option<String>,
}

impl Default for Custody {
    /// Development: simulated calls allowed, no delegated backends.
    fn default() -> Self {
        Custody {
            dev_reference: true,
            nango: false,
            openbao: false,
            unsupported_kms: None,
        }
    }
}

/// The backend that serves one use of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The vault opens the resource's sealed secret.
    Vault,
    /// Simulated: nothing is sent and no secret is touched (§8.2).
    DevReference,
    /// Every use is refused before it is counted.
    Closed { provider: String, reason: String },
}

impl Backend {
    /// The backend's name in answers and the policy snapshot.
    pub fn name(&self) -> &str {
        match self {
            Backend::Vault => "vault",
            Backend::DevReference => "dev-reference",
            Backend::Closed { provider, .. } => provider,
        }
    }
}

fn closed(provider: &str, reason: &str) -> Backend {
    Backend::Closed {
        provider: provider.into(),
        reason: reason.into(),
    }
}

impl Engine {
    /// The backend that serves `r` now (§7.1). No backend of this build can
    /// mint: Nango and OpenBao need the network.
    pub fn backend(&self, r: &ResourceRecord) -> Backend {
        let custody = &self.settings.custody;
        let dev = custody.dev_reference;
        match r.provider.as_str() {
            STATIC if self.vault.is_some() || custody.unsupported_kms.is_some() => Backend::Vault,
            STATIC if dev => Backend::DevReference,
            STATIC => closed(
                "vault",
                "TIDEBASE_MASTER_KEY/KMS not configured for custody",
            ),
            "nango" if custody.nango => {
                closed("nango", "nango backend is not available in this build")
            }
            "nango" if dev => Backend::DevReference,
            "nango" => closed("nango", "NANGO_SECRET_KEY not configured"),
            "openbao" if custody.openbao => {
                closed("openbao", "openbao backend is not available in this build")
            }
            "openbao" if dev => Backend::DevReference,
            "openbao" => closed("openbao", "OPENBAO_ADDR/OPENBAO_TOKEN not configured"),
            other => Backend::Closed {
                provider: other.into(),
                reason: format!("unknown provider '{other}'"),
            },
        }
    }

    /// The vault to seal a new secret with: 503 `custody_unavailable`
    /// without a master key, 500 for a key service this build lacks.
    pub(crate) fn custody_vault(&self) -> Result<&Vault> {
        if let Some(kms) = &self.settings.custody.unsupported_kms {
            return Err(EngineError::Internal(anyhow::anyhow!(
                "TIDEBASE_KMS={kms} is not implemented; only local master keys are"
            )));
        }
        self.vault
            .as_deref()
            .ok_or(EngineError::Grant(GrantRefusal::CustodyUnavailable))
    }
}

/// A credential as the broker API gives it (§7.3).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer { token: String },
    Header { name: String, value: String },
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential {
    /// A bare string is a bearer token; objects name their scheme (extra
    /// keys are ignored). `None` for anything else.
    pub fn parse(v: &Value) -> Option<Credential> {
        let text = |key: &str| v.get(key)?.as_str().map(String::from);
        if let Some(token) = v.as_str() {
            return Some(Credential::Bearer {
                token: token.into(),
            });
        }
        Some(match v.get("scheme")?.as_str()? {
            "bearer" => Credential::Bearer {
                token: text("token")?,
            },
            "header" => Credential::Header {
                name: text("name")?,
                value: text("value")?,
            },
            "basic" => Credential::Basic {
                username: text("username")?,
                password: text("password")?,
            },
            _ => return None,
        })
    }

    /// The egress broker's injection rule and the secret it injects.
    pub(crate) fn into_injection(self) -> (Injection, String) {
        match self {
            Credential::Bearer { token } => (Injection::default(), token),
            Credential::Header { name, value } => (
                Injection::Header {
                    name,
                    format: "{secret}".into(),
                },
                value,
            ),
            Credential::Basic { username, password } => {
                (Injection::Basic, format!("{username}:{password}"))
            }
        }
    }
}
