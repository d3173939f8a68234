//! The broker's one path for a request: decide it, open the credential,
//! send it, redact the answer, and record the receipt of the decision.

use super::policy::{self, Target};
use super::redact::Redactor;
use super::resources::STATIC;
use super::send::{self, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS, Plan};
use super::{
    EgressCaller, EgressClass, EgressRefusal, EgressRequest, EgressResponse, Injection, Receipt,
    Vault,
};
use crate::clock::iso;
use crate::ids;
use crate::model::{Deployment, ResourceRecord};
use crate::{Engine, EngineError, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A decision that delivers no response.
fn denied(reason: String) -> EgressRefusal {
    EgressRefusal {
        class: EgressClass::Denied,
        reason,
    }
}

pub(crate) type Decided = std::result::Result<EgressResponse, EgressRefusal>;

impl Engine {
    /// This engine encrypts and opens resource secrets with `vault` (none:
    /// no secret can be vaulted or opened).
    pub fn with_vault(mut self, vault: impl Into<Option<Vault>>) -> Engine {
        self.parts_mut().vault = vault.into().map(Arc::new);
        self
    }

    /// Decide, send and record one request of `caller`'s step attempt. A
    /// refusal is [`EngineError::EgressRefused`]; a caller that lost its
    /// run lease is refused as any write of it would be, without a receipt.
    pub async fn egress(&self, caller: EgressCaller, req: EgressRequest) -> Result<EgressResponse> {
        // Nothing leaves the process before the checkpoints that led to it.
        caller.pending.flush().await?;
        let started = Instant::now();
        let mut receipt = self.new_receipt(&caller.run_id, &req.method);
        receipt.step = Some(caller.step.clone());
        receipt.attempt = Some(caller.attempt);
        let decided = self.broker(&caller, req, &mut receipt).await?;
        finish_receipt(&mut receipt, started, decided.as_ref().err());
        let mut w = self.write().await?;
        self.record_receipt(&mut w, &receipt).await?;
        self.commit(w).await?;
        decided.map_err(|refusal| {
            caller.note_refusal(&refusal);
            EngineError::EgressRefused(refusal)
        })
    }

    /// A receipt of an allowed call of `method` on `run_id`, to be filled
    /// in as the call is decided and sent.
    pub(crate) fn new_receipt(&self, run_id: &str, method: &str) -> Receipt {
        Receipt {
            id: ids::new_id("rcpt"),
            run_id: run_id.to_string(),
            grant_id: None,
            agent_id: None,
            step: None,
            attempt: None,
            resource: None,
            method: method.to_ascii_uppercase(),
            host: String::new(),
            path: String::new(),
            decision: "allowed".into(),
            reason: None,
            class: None,
            status: None,
            bytes: 0,
            duration_ms: 0,
            at: iso(self.now()),
        }
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
        if resource.provider != STATIC {
            let why = format!(
                "resource {} keeps its credential in {}, which wasm egress cannot reach",
                resource.name, resource.provider
            );
            return Ok(Err(denied(why)));
        }
        let credential = match self.credential(resource) {
            Ok(c) => c,
            Err(why) => return Ok(Err(denied(why))),
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
        Ok(send_redacted(plan, req, receipt).await.0)
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
        crate::wasm::check_fence(&run, &caller.owner)?;
        let Some(digest) = &run.component_digest else {
            return Ok(None);
        };
        let Some(deployment) = r.deployment_for(&run.workflow_name, digest).await? else {
            return Ok(None);
        };
        let mut granted = Vec::new();
        for name in &deployment.allow {
            granted.extend(r.resource(None, name, false).await?);
        }
        Ok(Some((deployment, granted)))
    }

    /// The injection rule and secret of `r`, opened by the vault; why not,
    /// when it cannot be.
    pub(crate) fn credential(
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
        let secret = (vault.open(r.principal.as_deref(), name, sealed))
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or_else(|| {
                format!("resource {name}'s secret does not open with this server's master key")
            })?;
        let injection = Injection::from_json(&r.injection)
            .ok_or_else(|| format!("resource {name} has no valid injection rule"))?;
        Ok(Some((injection, secret)))
    }
}

/// Send `plan` and meter it into `receipt`; the answer (or the refusal's
/// reason) has the plan's secret redacted. Also says whether the target's
/// address passed the address guard.
pub(crate) async fn send_redacted(
    plan: Plan,
    req: EgressRequest,
    receipt: &mut Receipt,
) -> (Decided, bool) {
    let redactor = match &plan.credential {
        Some((injection, secret)) => Redactor::new(injection.secret_part(secret).as_bytes()),
        None => Redactor::none(),
    };
    let (answer, meter) = send::exchange(plan, req).await;
    receipt.status = meter.status;
    receipt.bytes = i64::try_from(meter.bytes).unwrap_or(i64::MAX);
    let decided = match answer {
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
    };
    (decided, meter.vetted)
}

/// Complete a receipt once its call is decided: how long it took and, for
/// a call that delivered no response, why.
pub(crate) fn finish_receipt(
    receipt: &mut Receipt,
    started: Instant,
    refusal: Option<&EgressRefusal>,
) {
    receipt.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    if let Some(refusal) = refusal {
        if refusal.class == EgressClass::Denied {
            receipt.decision = "denied".into();
        }
        receipt.reason = Some(refusal.reason.clone());
        receipt.class = Some(refusal.class.as_str().into());
    }
}
