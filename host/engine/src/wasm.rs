//! Rules for runs executed by the host's own wasm worker loop: deployment
//! and digest pinning, claiming, lease fencing, suspension
//! (parking) and the events that wake a parked run.

use super::write::Write;
use super::{Engine, EngineError, Entity, LeaseLost, Result};
use crate::clock::Micros;
use crate::ids;
use crate::model::{Deployment, Fenced, Run, RunStatus};
use crate::store::{ClaimedRun, NewStep, WasmClaim};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Sandbox limits and egress grants a deploy may set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeployLimits {
    pub memory_limit_bytes: Option<i64>,
    pub cpu_limit_ms: Option<i64>,
    /// Names of the resources the workflow may call; each must exist.
    pub allow: Vec<String>,
    /// Per-call egress timeout ([`super::limits::EGRESS_TIMEOUT_MS`]) and
    /// response cap ([`super::limits::EGRESS_MAX_BYTES`]); `None`: the
    /// broker's defaults.
    pub egress_timeout_ms: Option<i64>,
    pub egress_max_bytes: Option<i64>,
}

impl DeployLimits {
    /// From the user's units (`memoryMb`, `cpuMs`), already checked against
    /// [`super::limits::MEMORY_MB`] and [`super::limits::CPU_MS`].
    pub fn from_flags(memory_mb: Option<i64>, cpu_ms: Option<i64>) -> DeployLimits {
        DeployLimits {
            memory_limit_bytes: memory_mb.map(|mb| mb.saturating_mul(1 << 20)),
            cpu_limit_ms: cpu_ms,
            ..DeployLimits::default()
        }
    }

    /// The limits as a deployment records them: grants sorted and
    /// deduplicated (so their order makes no new version), egress limits
    /// range-checked.
    fn normalized(mut self) -> Result<DeployLimits> {
        self.allow.sort();
        self.allow.dedup();
        if let Some(ms) = self.egress_timeout_ms {
            super::limits::EGRESS_TIMEOUT_MS.check("egressTimeoutMs", ms)?;
        }
        if let Some(bytes) = self.egress_max_bytes {
            super::limits::EGRESS_MAX_BYTES.check("egressMaxBytes", bytes)?;
        }
        Ok(self)
    }

    fn of(d: &Deployment) -> DeployLimits {
        DeployLimits {
            memory_limit_bytes: d.memory_limit_bytes,
            cpu_limit_ms: d.cpu_limit_ms,
            allow: d.allow.clone(),
            egress_timeout_ms: d.egress_timeout_ms,
            egress_max_bytes: d.egress_max_bytes,
        }
    }
}

/// Decides whether bytes are a component this host can run; the wasm
/// runtime is one. The message of a refusal says what is wrong.
#[async_trait::async_trait]
pub trait ComponentCheck: Send + Sync {
    async fn check(&self, bytes: &[u8]) -> std::result::Result<(), String>;
}

/// Whether `run` admits `owner` as its writer ([`Run::fence`]).
pub(crate) fn check_fence(run: &Run, owner: &str) -> Result<()> {
    match run.fence(owner) {
        Ok(()) => Ok(()),
        Err(Fenced::Cancelled) => Err(EngineError::RunCancelled(None)),
        Err(Fenced::LeaseLost) => Err(EngineError::LeaseLost(LeaseLost::Run {
            owner: run.lease_owner.clone(),
        })),
    }
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Engine {
    /// Store a component content-addressed and make it the current version
    /// of `workflow`. Runs already started keep their own digest.
    pub async fn deploy(
        &self,
        workflow: &str,
        bytes: &[u8],
        limits: DeployLimits,
    ) -> Result<Deployment> {
        let Some(components) = &self.components else {
            return Err(EngineError::WasmDisabled);
        };
        super::limits::check_name("workflow name", workflow)?;
        let limits = limits.normalized()?;
        components
            .check(bytes)
            .await
            .map_err(EngineError::InvalidComponent)?;
        let digest = digest_of(bytes);
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.lock_key(&format!("deploy:{workflow}")).await?;
        for name in &limits.allow {
            if w.tx.resource(None, name, false).await?.is_none() {
                return Err(EngineError::BadRequest(format!(
                    "allow names {name:?}, which is no resource"
                )));
            }
        }
        w.tx.put_component(&digest, bytes, now).await?;
        let latest = w.tx.deployments(Some(workflow)).await?.into_iter().next();
        // Redeploying the same bytes and limits is a no-op, not a new version.
        if let Some(same) = latest
            .as_ref()
            .filter(|d| d.digest == digest && DeployLimits::of(d) == limits)
        {
            return Ok(same.clone());
        }
        let deployment = Deployment {
            id: ids::new_id("dep"),
            workflow_name: workflow.to_string(),
            version: latest.map_or(Ok(1), |d| super::limits::next_version(d.version))?,
            digest,
            memory_limit_bytes: limits.memory_limit_bytes,
            cpu_limit_ms: limits.cpu_limit_ms,
            allow: limits.allow,
            egress_timeout_ms: limits.egress_timeout_ms,
            egress_max_bytes: limits.egress_max_bytes,
            created_at: now,
        };
        w.tx.insert_deployment(&deployment).await?;
        // Runs created before the first deploy (e.g. children started by a
        // parent) are executed by it rather than left waiting forever.
        w.wasm_work |= w.tx.adopt_pending(workflow, &deployment.digest).await? > 0;
        self.commit(w).await?;
        Ok(deployment)
    }

    pub async fn deployments(&self, workflow: Option<&str>) -> Result<Vec<Deployment>> {
        Ok(self.read().await?.deployments(workflow).await?)
    }

    /// The deployment (and so the limits) each run executes under, in
    /// order. Each distinct workflow and digest is read once, so a claim of
    /// many runs of one workflow costs one read, not one per run. Not
    /// cached across calls: a redeploy of the same digest with new limits
    /// (from any replica) must be seen by the next claim.
    pub async fn deployments_of(&self, runs: &[&Run]) -> Result<Vec<Result<Deployment>>> {
        if runs.is_empty() {
            return Ok(Vec::new()); // an idle claim takes no connection
        }
        let mut read = self.read().await?;
        let mut seen: Vec<Deployment> = Vec::new();
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            let digest = run.component_digest.as_deref().unwrap_or_default();
            let known = seen
                .iter()
                .find(|d| d.workflow_name == run.workflow_name && d.digest == digest)
                .cloned();
            let found = match known {
                Some(d) => Some(d),
                None => {
                    let read_now = read.deployment_for(&run.workflow_name, digest).await?;
                    seen.extend(read_now.clone());
                    read_now
                }
            };
            out.push(found.ok_or(EngineError::NotFound(Entity::Deployment)));
        }
        Ok(out)
    }

    pub async fn component_bytes(&self, digest: &str) -> Result<Vec<u8>> {
        self.read()
            .await?
            .component(digest)
            .await?
            .ok_or(EngineError::NotFound(Entity::Component))
    }

    /// Pin a new run of a deployed workflow to the current digest.
    pub(crate) async fn pin_component(&self, w: &mut Write, run: &mut Run) -> Result<()> {
        let current =
            w.tx.deployments(Some(&run.workflow_name))
                .await?
                .into_iter()
                .next();
        run.component_digest = current.map(|d| d.digest);
        w.wasm_work |= run.component_digest.is_some();
        Ok(())
    }

    /// Take the run lease on up to `limit` runnable wasm runs (all, or only
    /// `root` and its descendants), as [`Run::claim`] says: a woken parked
    /// run continues its attempt (`run.resumed`), anything else starts a new
    /// one (`run.started`).
    pub async fn claim_wasm_runs(
        &self,
        owner: &str,
        limit: i64,
        root: Option<&str>,
    ) -> Result<Vec<ClaimedRun>> {
        let now = self.now();
        let claim = WasmClaim {
            owner,
            now,
            lease_expires_at: self.lease_expiry(now),
            limit,
            root,
            payload: json!({"leaseOwner": owner}),
        };
        let claimed = self.store.claim_wasm_runs(&claim).await?;
        for c in &claimed {
            self.feed.notify(&c.run.id);
        }
        Ok(claimed)
    }

    /// Lock the run and check that it admits `owner` (`Run::fence`).
    pub(crate) async fn fence_run(&self, w: &mut Write, run_id: &str, owner: &str) -> Result<Run> {
        let run =
            w.tx.run(run_id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        check_fence(&run, owner)?;
        Ok(run)
    }

    /// Make a failed wasm run claimable again: its checkpoints replay and it
    /// continues from the first step without one (the CLI's `--run-id`).
    pub async fn reopen_run(&self, run_id: &str) -> Result<Run> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut run =
            w.tx.run(run_id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status == RunStatus::Failed {
            run.status = RunStatus::Pending;
            run.clear_lease();
            run.parked_until = None;
            run.updated_at = now;
            w.tx.update_run(&run).await?;
        }
        self.commit(w).await?;
        Ok(run)
    }

    /// Drop whatever lease a run holds, fencing its holder out (an explicit
    /// operator takeover of a run whose worker died).
    pub async fn release_lease(&self, run_id: &str) -> Result<()> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut run =
            w.tx.run(run_id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        run.clear_lease();
        run.parked_until = None;
        run.updated_at = now;
        w.tx.update_run(&run).await?;
        self.commit(w).await
    }

    /// Suspend a run: release its lease so it holds no worker, and make it
    /// claimable again at `until` (or earlier, when woken).
    /// `steps`: whole new steps of the activation, written first.
    pub async fn park(
        &self,
        run_id: &str,
        owner: &str,
        until: Micros,
        steps: &[NewStep],
    ) -> Result<()> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut run = self.fence_run(&mut w, run_id, owner).await?;
        self.write_new_steps(&mut w, steps).await?;
        run.clear_lease();
        // A wake that arrived while the activation ran (claiming cleared the
        // mark) means the wait may already be over: retry right away.
        run.parked_until = Some(if run.parked_until.is_some() {
            now
        } else {
            until.max(now)
        });
        run.updated_at = now;
        w.tx.update_run(&run).await?;
        self.commit(w).await?;
        super::group_commit::count_completed(steps);
        Ok(())
    }

    /// A run's wait may be over: a gate on it resolved, or one of its
    /// children finished.
    pub(crate) async fn wake(&self, w: &mut Write, run_id: &str, now: Micros) -> Result<()> {
        w.tx.wake(run_id, now).await?;
        w.touch(run_id);
        w.wasm_work = true;
        Ok(())
    }

    /// Wake the parent of a run that just finished.
    pub(crate) async fn wake_parent(&self, w: &mut Write, run: &Run, now: Micros) -> Result<()> {
        if let Some(parent) = run.metadata.get("parentRunId").and_then(|p| p.as_str()) {
            self.wake(w, parent, now).await?;
        }
        Ok(())
    }

    /// Resolves after a commit that made a wasm run claimable.
    pub async fn wasm_work(&self) {
        self.wasm_ready.notified().await
    }

    /// Earliest future wake-up of a parked wasm run.
    pub async fn next_wake(&self) -> Result<Option<Micros>> {
        let now = self.now();
        Ok(self.read().await?.next_wake(now).await?)
    }
}
