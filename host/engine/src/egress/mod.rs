//! Brokered egress: the only way out of the sandbox. A step's HTTP request
//! reaches [`Engine::egress`], which decides it against the resources the
//! workflow's deployment grants (`policy`), vets the address (`ssrf`),
//! injects the vaulted secret (`vault`) in place of any guest credential,
//! sends it within the deployment's limits (`send`), redacts the secret
//! from what comes back (`redact`), and records a receipt of every decision
//! (`receipts`). The wasm door only carries requests in and answers out.

mod caller;
mod policy;
mod receipts;
mod redact;
mod resources;
mod send;
mod ssrf;
mod vault;

pub use crate::model::Receipt;
pub use caller::EgressCaller;
pub(crate) use caller::{RefusalMark, refusal_class};
pub use receipts::{AuditPage, AuditQuery};
pub use resources::{Injection, NewResource, Resource};
pub use send::{DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS};
pub use vault::Vault;

use super::{Engine, EngineError, Result};
use crate::clock::iso;
use crate::ids;
use crate::model::{Deployment, ResourceRecord};
use policy::Target;
use redact::Redactor;
use send::Plan;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A decision that delivers no response.
fn denied(reason: String) -> EgressRefusal {
    EgressRefusal {
        class: EgressClass::Denied,
        reason,
    }
}

type Decided = std::result::Result<EgressResponse, EgressRefusal>;

impl Engine {
    /// This engine encrypts and opens resource secrets with `vault`.
    pub fn with_vault(mut self, vault: Vault) -> Engine {
        self.vault = Some(Arc::new(vault));
        self
    }

    /// Decide, send and record one request of `caller`'s step attempt. A
    /// refusal is [`EngineError::EgressRefused`]; a caller that lost its
    /// run lease is refused as any write of it would be, without a receipt.
    pub async fn egress(&self, caller: EgressCaller, req: EgressRequest) -> Result<EgressResponse> {
        let started = Instant::now();
        let mut receipt = Receipt {
            id: ids::new_id("rcpt"),
            run_id: caller.run_id.clone(),
            step: Some(caller.step.clone()),
            attempt: Some(caller.attempt),
            resource: None,
            method: req.method.to_ascii_uppercase(),
            host: String::new(),
            path: String::new(),
            decision: "allowed".into(),
            reason: None,
            class: None,
            status: None,
            bytes: 0,
            duration_ms: 0,
            at: iso(self.now()),
        };
        let decided = self.broker(&caller, req, &mut receipt).await?;
        receipt.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let Err(refusal) = &decided {
            if refusal.class == EgressClass::Denied {
                receipt.decision = "denied".into();
            }
            receipt.reason = Some(refusal.reason.clone());
            receipt.class = Some(refusal.class.as_str().into());
        }
        self.record_receipt(&receipt).await?;
        decided.map_err(|refusal| {
            caller.refusals.set(refusal.class);
            EngineError::EgressRefused(refusal)
        })
    }

    async fn broker(
        &self,
        caller: &EgressCaller,
        req: EgressRequest,
        receipt: &mut Receipt,
    ) -> Result<Decided> {
        let target = match Target::parse(&req.method, &req.url) {
            Ok(t) => t,
            Err(why) => return Ok(Err(denied(why))),
        };
        receipt.method.clone_from(&target.method);
        receipt.host.clone_from(&target.host);
        receipt.path.clone_from(&target.path);
        let Some((deployment, granted)) = self.grants(caller).await? else {
            let why = "this run has no deployment, so it is granted no resources";
            return Ok(Err(denied(why.into())));
        };
        let resource = match policy::admit(&granted, &target) {
            Ok(r) => r,
            Err((r, why)) => {
                receipt.resource = r.map(|r| r.name.clone());
                return Ok(Err(denied(why)));
            }
        };
        receipt.resource = Some(resource.name.clone());
        let credential = match self.credential(resource) {
            Ok(c) => c,
            Err(why) => return Ok(Err(denied(why))),
        };
        let redactor = match &credential {
            Some((_, secret)) => Redactor::new(secret.as_bytes()),
            None => Redactor::none(),
        };
        let plan = Plan {
            url: target.url,
            method: target.method,
            credential,
            idempotency_key: caller.idempotency_key.clone(),
            timeout: Duration::from_millis(
                deployment
                    .egress_timeout_ms
                    .unwrap_or(DEFAULT_TIMEOUT_MS)
                    .max(1) as u64,
            ),
            max_bytes: deployment
                .egress_max_bytes
                .unwrap_or(DEFAULT_MAX_BYTES)
                .max(0) as u64,
            allow_private: self.settings.allow_private_egress,
        };
        let (answer, meter) = send::exchange(plan, req).await;
        receipt.status = meter.status;
        receipt.bytes = i64::try_from(meter.bytes).unwrap_or(i64::MAX);
        Ok(match answer {
            Ok(a) => Ok(EgressResponse {
                status: a.status,
                headers: (a.headers.into_iter())
                    .map(|(name, value)| (name, redactor.bytes(&value)))
                    .collect(),
                body: redactor.bytes(&a.body),
            }),
            Err(mut refusal) => {
                refusal.reason = redactor.text(&refusal.reason);
                Err(refusal)
            }
        })
    }

    /// The deployment `caller`'s run executes under and the resources it
    /// grants (those that exist), read while the caller holds the run
    /// lease; `None` for a run without a deployment.
    async fn grants(
        &self,
        caller: &EgressCaller,
    ) -> Result<Option<(Deployment, Vec<ResourceRecord>)>> {
        let mut r = self.read().await?;
        let run = r
            .run(&caller.run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        super::wasm::check_fence(&run, &caller.owner)?;
        let Some(digest) = &run.component_digest else {
            return Ok(None);
        };
        let Some(deployment) = r.deployment_for(&run.workflow_name, digest).await? else {
            return Ok(None);
        };
        let mut granted = Vec::new();
        for name in &deployment.allow {
            granted.extend(r.resource(name, false).await?);
        }
        Ok(Some((deployment, granted)))
    }

    /// The injection rule and secret of `r`, opened by the vault; why not,
    /// when it cannot be.
    fn credential(
        &self,
        r: &ResourceRecord,
    ) -> std::result::Result<Option<(Injection, String)>, String> {
        let Some(sealed) = &r.sealed else {
            return Ok(None);
        };
        let name = &r.name;
        let vault = self.vault.as_ref().ok_or_else(|| {
            format!("this server has no master key to open resource {name}'s secret")
        })?;
        let secret = (vault.open(name, sealed))
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or_else(|| {
                format!("resource {name}'s secret does not open with this server's master key")
            })?;
        let injection = Injection::from_json(&r.injection)
            .ok_or_else(|| format!("resource {name} has no valid injection rule"))?;
        Ok(Some((injection, secret)))
    }
}
