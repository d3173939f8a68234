//! Brokered egress: the only way out of the sandbox. A step's HTTP request
//! reaches [`Engine::egress`], which decides it against the resources the
//! workflow's deployment grants (`policy`), vets the address (`ssrf`),
//! injects the vaulted secret (`vault`) in place of any guest credential,
//! sends it within the deployment's limits (`send`), redacts the secret
//! from what comes back (`redact`), and records a receipt of every decision
//! (`receipts`). The wasm door only carries requests in and answers out.

pub(crate) mod broker;
mod caller;
pub(crate) mod policy;
mod receipts;
mod redact;
mod resources;
pub(crate) mod send;
mod ssrf;
mod vault;

pub use crate::model::Receipt;
pub use caller::EgressCaller;
pub use caller::Refusals;
pub(crate) use caller::refusal_class;
pub use receipts::{AuditPage, AuditQuery};
pub(crate) use resources::{ACTIVE, STATIC};
pub use resources::{Injection, NewResource, PROVIDERS, Resource};
pub use send::{DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS};
pub use vault::{DEFAULT_KEY_LABEL, Vault};

use std::fmt;

/// Why a brokered call delivered no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressClass {
    /// Refused by policy or by the address rules.
    Denied,
    /// The upstream did not answer in time.
    Timeout,
    /// The response body was over the cap.
    TooLarge,
    /// Allowed, but the upstream could not be reached or broke off.
    Unreachable,
    /// Made outside step code.
    OutsideStep,
}

impl EgressClass {
    /// The failure class a step or run that failed from it is given.
    pub fn as_str(self) -> &'static str {
        match self {
            EgressClass::Denied | EgressClass::OutsideStep => "egress_denied",
            EgressClass::Timeout => "egress_timeout",
            EgressClass::TooLarge => "egress_too_large",
            EgressClass::Unreachable => "egress_unreachable",
        }
    }

    /// The error name the guest SDK gives a call refused with this class.
    pub fn guest_error_name(self) -> &'static str {
        match self {
            EgressClass::Denied | EgressClass::OutsideStep => "EgressDenied",
            EgressClass::Timeout => "EgressTimeout",
            EgressClass::TooLarge => "EgressTooLarge",
            EgressClass::Unreachable => "EgressUnreachable",
        }
    }

    pub(crate) fn is_class(text: &str) -> bool {
        matches!(
            text,
            "egress_denied" | "egress_timeout" | "egress_too_large" | "egress_unreachable"
        )
    }
}

/// A call the broker did not complete, and why. The reason never holds a
/// secret.
#[derive(Clone, Debug)]
pub struct EgressRefusal {
    pub class: EgressClass,
    pub reason: String,
}

impl fmt::Display for EgressRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A guest's HTTP request.
pub struct EgressRequest {
    pub method: String,
    /// Absolute http(s) URL.
    pub url: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// The upstream's answer with the secret redacted and framing headers
/// (`content-length`, `transfer-encoding`, …) removed.
#[derive(Clone, Debug)]
pub struct EgressResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}
