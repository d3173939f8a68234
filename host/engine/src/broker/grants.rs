//! Run-bound grants (broker.md §3.7, §3.9, §6): the request with its checks
//! in upstream's order, approval through an ordinary gate, revocation (by
//! the tenant's agents, or with the resource), and expiry.
//!
//! Differences from upstream: a refused request claims nothing (the run is
//! claimed for the caller's tenant only when a grant is issued); revoking
//! is for agents of the run's tenant; a pending grant whose approval window
//! passed is expired, not activated, by a late approval.

use super::actions::{self, Effect};
use super::{AgentSession, GrantRefusal};
use crate::clock::Micros;
use crate::gates::GateBegin;
use crate::ids;
use crate::model::RunStatus;
use crate::model::{Gate, GrantRecord, grant_status as status};
use crate::write::Write;
use crate::{Engine, EngineError, Entity, Result, limits};
use serde_json::json;

/// Default lifetime of an issued grant, in seconds.
pub const DEFAULT_TTL_S: i64 = 120;
/// `ttlSeconds` of a grant request.
pub const TTL_S: limits::Range = limits::Range::new(1, 3600);
/// `maxUses` of a grant request.
pub const MAX_USES: limits::Range = limits::Range::new(1, 100);
/// Grants the reconciler expires per tick.
pub(crate) const EXPIRY_BATCH: i64 = 200;
/// `proxy` or `mint`.
pub const MODES: [&str; 2] = ["proxy", "mint"];

const SECOND: Micros = 1_000_000;

/// What an agent asks for (§3.7).
#[derive(Clone, Debug)]
pub struct GrantRequest {
    /// `<resource name>[:<anything>]`.
    pub resource: String,
    pub action: String,
    pub reason: Option<String>,
    pub scopes: Vec<String>,
    /// One of [`MODES`].
    pub mode: String,
    pub ttl_seconds: i64,
    pub max_uses: i64,
}

impl GrantRequest {
    /// The limits on a grant request, whichever door it came through.
    pub fn check(&self) -> Result<()> {
        limits::check_name("resource", &self.resource)?;
        limits::check_name("action", &self.action)?;
        limits::check_opt_text("reason", self.reason.as_deref())?;
        for scope in &self.scopes {
            limits::check_nonempty("scopes", scope)?;
        }
        if !MODES.contains(&self.mode.as_str()) {
            return Err(EngineError::BadRequest("mode must be proxy or mint".into()));
        }
        TTL_S.check("ttlSeconds", self.ttl_seconds)?;
        MAX_USES.check("maxUses", self.max_uses)?;
        Ok(())
    }
}

/// The grant `grant_id` of `run_id`, locked until `w` ends; 404 when
/// there is none.
pub(crate) async fn locked_grant(
    w: &mut Write,
    run_id: &str,
    grant_id: &str,
) -> Result<GrantRecord> {
    (w.tx.grant(run_id, grant_id, true).await?).ok_or(EngineError::NotFound(Entity::Grant))
}

/// Whether the run's tenant (`None`: unclaimed) admits `session`.
fn same_tenant(owner: Option<&str>, session: &AgentSession) -> bool {
    owner == session.principal.as_deref()
}

impl Engine {
    /// Request a grant on `run_id` for `session`'s agent (§3.7).
    pub async fn request_grant(
        &self,
        session: &AgentSession,
        run_id: &str,
        req: GrantRequest,
    ) -> Result<GrantRecord> {
        req.check()?;
        let refuse = |r: GrantRefusal| Err(EngineError::Grant(r));
        let now = self.now();
        let mut w = self.write().await?;
        let name = req.resource.split(':').next().unwrap_or_default();
        let principal = session.principal.as_deref();
        // The resource row before the run's: a resource revocation locks
        // them in that order (it appends to the runs of its grants).
        let resource = w.tx.resource(principal, name, true).await?;
        let run =
            w.tx.run(run_id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status == RunStatus::Cancelled {
            return Err(EngineError::RunCancelled(None));
        }
        let owner = w.tx.grant_principal(run_id).await?;
        if owner.is_some() && !same_tenant(owner.as_deref(), session) {
            return refuse(GrantRefusal::CrossTenant);
        }
        let resource = match resource {
            Some(r) if r.status == crate::egress::ACTIVE => r,
            _ => return refuse(GrantRefusal::ResourceNotConnected),
        };
        let denied: Vec<String> = (req.scopes.iter())
            .filter(|s| !resource.scopes.is_empty() && !resource.scopes.contains(s))
            .cloned()
            .collect();
        if !denied.is_empty() {
            return refuse(GrantRefusal::ScopesExceedCeiling(denied));
        }
        let decision = actions::decide(&req.action, &req.mode);
        if decision.effect == Effect::Deny {
            let reason = decision.reason;
            return refuse(GrantRefusal::PolicyDenied { reason });
        }
        // Only Nango and OpenBao mint, and this build cannot reach either.
        if decision.mode == "mint" {
            return refuse(GrantRefusal::MintUnavailable);
        }
        let gate_id = decision.requires_approval().then(|| ids::new_id("gate"));
        let window = match &gate_id {
            Some(_) => self.settings.grant_approval_ttl_s,
            None => req.ttl_seconds,
        };
        let approval = GateBegin {
            name: format!("grant:{}:{}", req.action, uuid::Uuid::new_v4()),
            prompt: format!("Approve {} on {}", req.action, req.resource),
            data: json!({"reason": req.reason}),
            channels: json!([]),
            capability: json!({
                "name": req.resource, "scopes": req.scopes, "reason": req.reason,
            }),
            timeout_ms: None,
        };
        let grant = GrantRecord {
            id: ids::new_id("grant"),
            run_id: run_id.into(),
            agent_id: Some(session.agent_id.clone()),
            resource_id: Some(resource.id.clone()),
            resource: req.resource,
            action: req.action,
            scopes: req.scopes,
            reason: req.reason,
            mode: decision.mode.clone(),
            status: match gate_id {
                Some(_) => status::PENDING,
                None => status::ACTIVE,
            }
            .into(),
            gate_id: gate_id.clone(),
            // Both checked against ranges far inside i32.
            max_uses: req.max_uses as i32,
            used_count: 0,
            ttl_seconds: req.ttl_seconds as i32,
            policy: json!({
                "provider": self.backend(&resource).name(),
                "effect": decision.effect.as_str(),
                "matchedRule": decision.matched_rule,
                "requiresApproval": decision.requires_approval(),
                "forcedProxy": decision.forced_proxy,
                "requestedMode": req.mode,
                "scopesCeiling": resource.scopes,
            }),
            issued_at: gate_id.is_none().then_some(now),
            expires_at: Some(now.saturating_add(window.saturating_mul(SECOND))),
            revoked_at: None,
            created_at: now,
            updated_at: now,
        };
        w.tx.insert_grant(&grant).await?;
        if owner.is_none()
            && let Some(p) = principal
        {
            w.tx.claim_run_for(run_id, p).await?;
        }
        let agent = grant.agent_id.as_deref();
        self.grant_event(&mut w, &grant, "grant.requested", agent, now)
            .await?;
        match gate_id {
            Some(id) => {
                // Approval gates reach no channel until they are resolved.
                w.quiet = true;
                self.open_gate(&mut w, run_id, id, approval, now).await?;
            }
            None => {
                self.grant_event(&mut w, &grant, "grant.approved", agent, now)
                    .await?
            }
        }
        self.commit(w).await?;
        Ok(grant)
    }

    /// Revoke a grant that is not final yet (§3.9), for an agent of the
    /// run's tenant.
    pub async fn revoke_grant(
        &self,
        session: &AgentSession,
        run_id: &str,
        grant_id: &str,
    ) -> Result<GrantRecord> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut grant = locked_grant(&mut w, run_id, grant_id).await?;
        let owner = w.tx.grant_principal(run_id).await?;
        if !same_tenant(owner.as_deref(), session) {
            return Err(EngineError::Grant(GrantRefusal::CrossTenant));
        }
        if status::TERMINAL.contains(&grant.status.as_str()) {
            return Err(EngineError::Grant(GrantRefusal::GrantFinal(grant.status)));
        }
        grant.status = status::REVOKED.into();
        grant.revoked_at = Some(now);
        grant.updated_at = now;
        w.tx.update_grant(&grant).await?;
        let revoker = Some(session.agent_id.as_str());
        self.grant_event(&mut w, &grant, "grant.revoked", revoker, now)
            .await?;
        self.commit(w).await?;
        Ok(grant)
    }

    /// Append a `grant.*` event whose payload is `grant`'s receipt about
    /// `agent_id`.
    pub(crate) async fn grant_event(
        &self,
        w: &mut Write,
        grant: &GrantRecord,
        kind: &str,
        agent_id: Option<&str>,
        now: Micros,
    ) -> Result<()> {
        w.event(&grant.run_id, kind, grant.receipt(agent_id), now)
            .await?;
        Ok(())
    }

    /// Revoke the live grants through a resource being revoked (§3.6):
    /// how many there were.
    pub(crate) async fn revoke_grants_of(
        &self,
        w: &mut Write,
        resource_id: &str,
        now: Micros,
    ) -> Result<usize> {
        let grants = w.tx.live_grants_of_resource(resource_id).await?;
        for mut grant in grants.iter().cloned() {
            grant.status = status::REVOKED.into();
            grant.revoked_at = Some(now);
            grant.updated_at = now;
            w.tx.update_grant(&grant).await?;
            let mut payload = grant.receipt(grant.agent_id.as_deref());
            payload["cause"] = json!("resource_revoked");
            w.event(&grant.run_id, "grant.revoked", payload, now)
                .await?;
        }
        Ok(grants.len())
    }

    /// Decide the grants waiting on `gate`, which was just resolved in
    /// `w` (§6.3): approved activates them for their TTL; any other
    /// decision denies them. A grant whose approval window passed expires.
    pub(crate) async fn settle_grants(
        &self,
        w: &mut Write,
        gate: &Gate,
        now: Micros,
    ) -> Result<()> {
        let waiting = w.tx.pending_grants_of_gate(&gate.run_id, &gate.id).await?;
        for mut grant in waiting {
            let (new_status, kind) = if grant.expires_at.is_some_and(|t| t < now) {
                (status::EXPIRED, "grant.expired")
            } else if gate.decision.as_deref() == Some("approved") {
                grant.issued_at = Some(now);
                let ttl = i64::from(grant.ttl_seconds) * SECOND;
                grant.expires_at = Some(now.saturating_add(ttl));
                (status::ACTIVE, "grant.approved")
            } else {
                (status::DENIED, "grant.denied")
            };
            grant.status = new_status.into();
            grant.updated_at = now;
            w.tx.update_grant(&grant).await?;
            self.grant_event(w, &grant, kind, grant.agent_id.as_deref(), now)
                .await?;
        }
        Ok(())
    }

    /// The reconciler's grant expiry (§10.1): live grants past `expires_at`,
    /// each in its own transaction; how many expired.
    pub(crate) async fn expire_grants(&self, now: Micros) -> Result<usize> {
        let due = self.read().await?.expired_grants(now, EXPIRY_BATCH).await?;
        let mut expired = 0;
        for seen in due {
            let mut w = self.write().await?;
            let Some(mut grant) = w.tx.grant(&seen.run_id, &seen.id, true).await? else {
                continue;
            };
            if !grant.is_live() || grant.expires_at.is_none_or(|t| t >= now) {
                continue;
            }
            grant.status = status::EXPIRED.into();
            grant.updated_at = now;
            w.tx.update_grant(&grant).await?;
            self.grant_event(
                &mut w,
                &grant,
                "grant.expired",
                grant.agent_id.as_deref(),
                now,
            )
            .await?;
            self.commit(w).await?;
            expired += 1;
        }
        Ok(expired)
    }
}
