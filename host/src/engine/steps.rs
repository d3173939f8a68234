//! Step checkpoints: the begin decision procedure, fenced complete and fail.

use super::{Engine, EngineError, Result};
use crate::ids;
use crate::model::{ResumeContract, RunStatus, Step, classify_failure};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct StepBegin {
    pub name: String,
    pub input_hash: String,
    pub input: Value,
    pub options: Value,
    pub lease_owner: Option<String>,
}

/// The answer to a step begin (semantics §5).
#[derive(Clone, Debug)]
pub enum StepAction {
    Cancelled,
    InputMismatch { step: Step, expected: String, actual: String },
    Return { step: Step },
    Locked { step: Step },
    Execute { step: Step, lease_owner: String },
}

impl StepAction {
    pub fn to_json(&self) -> Value {
        match self {
            StepAction::Cancelled => json!({"action": "cancelled"}),
            StepAction::InputMismatch { step, expected, actual } => json!({
                "action": "input_mismatch", "step": step,
                "expectedInputHash": expected, "actualInputHash": actual,
            }),
            StepAction::Return { step } => {
                json!({"action": "return", "step": step, "output": step.output})
            }
            StepAction::Locked { step } => json!({"action": "locked", "step": step}),
            StepAction::Execute { step, lease_owner } => {
                json!({"action": "execute", "step": step, "leaseOwner": lease_owner})
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct StepFail {
    pub lease_owner: String,
    pub error: Option<Value>,
    pub retryable: bool,
    pub resume_decision: Option<String>,
}

/// Checks that settle a begin without taking a lease: drift and replay.
fn settled(existing: Option<&Step>, input_hash: &str) -> Option<StepAction> {
    let step = existing?;
    if step.input_hash != input_hash {
        return Some(StepAction::InputMismatch {
            step: step.clone(),
            expected: step.input_hash.clone(),
            actual: input_hash.to_string(),
        });
    }
    (step.status == "completed").then(|| StepAction::Return { step: step.clone() })
}

impl Engine {
    pub async fn begin_step(&self, run_id: &str, req: StepBegin) -> Result<StepAction> {
        // Fast path without a transaction: cancellation, drift and replay of a
        // completed checkpoint are answered from one read, writing nothing.
        {
            let mut r = self.read().await?;
            let run = r.run(run_id, false).await?.ok_or_else(EngineError::run_not_found)?;
            if run.status == RunStatus::Cancelled {
                return Ok(StepAction::Cancelled);
            }
            let existing = r.step_by_name(run_id, &req.name, false).await?;
            if let Some(action) = settled(existing.as_ref(), &req.input_hash) {
                return Ok(action);
            }
        }
        let now = self.now();
        let mut w = self.write().await?;
        // Serialise first begins of the same step before any row exists.
        w.tx.lock_key(&format!("{run_id}:step:{}", req.name)).await?;
        let existing = w.tx.step_by_name(run_id, &req.name, true).await?;
        if let Some(action) = settled(existing.as_ref(), &req.input_hash) {
            return Ok(action);
        }
        let owner = req.lease_owner.unwrap_or_else(ids::lease_owner);
        if let Some(step) = &existing
            && step.live_lease_owner(now).is_some_and(|h| h != owner)
        {
            return Ok(StepAction::Locked { step: step.clone() });
        }
        let input = if req.input.is_null() { json!({}) } else { req.input };
        let step = match existing {
            Some(mut step) => {
                step.input_hash = req.input_hash;
                step.input = input;
                step.resume_contract = ResumeContract::from_options(&req.options);
                step.options = req.options;
                step.status = "running".into();
                step.attempt += 1;
                step.started_at = step.started_at.or(Some(now));
                step.lease_owner = Some(owner.clone());
                step.lease_expires_at = Some(self.lease_expiry(now));
                step.updated_at = now;
                w.tx.update_step(&step).await?;
                step
            }
            None => {
                let step = Step {
                    id: ids::new_id("step"),
                    run_id: run_id.to_string(),
                    name: req.name,
                    input_hash: req.input_hash,
                    input,
                    resume_contract: ResumeContract::from_options(&req.options),
                    options: req.options,
                    status: "running".into(),
                    output: None,
                    error: None,
                    lease_owner: Some(owner.clone()),
                    lease_expires_at: Some(self.lease_expiry(now)),
                    attempt: 1,
                    started_at: Some(now),
                    completed_at: None,
                    created_at: now,
                    updated_at: now,
                };
                w.tx.insert_step(&step).await?;
                step
            }
        };
        let payload = json!({
            "stepId": step.id, "name": step.name, "attempt": step.attempt,
            "resumeContract": step.resume_contract,
        });
        w.event(run_id, "step.started", payload, now).await?;
        self.commit(w).await?;
        Ok(StepAction::Execute { step, lease_owner: owner })
    }

    /// Load a step for a fenced write: only its current lease owner may
    /// complete or fail it.
    async fn fenced_step(
        &self,
        w: &mut super::write::Write,
        run_id: &str,
        step_id: &str,
        owner: &str,
    ) -> Result<Step> {
        match w.tx.step(run_id, step_id, true).await? {
            Some(step) if step.lease_owner.as_deref() == Some(owner) => Ok(step),
            _ => Err(EngineError::Conflict(json!({"error": "step not found or lease lost"}))),
        }
    }

    pub async fn complete_step(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        output: Value,
    ) -> Result<Step> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut step = self.fenced_step(&mut w, run_id, step_id, owner).await?;
        step.status = "completed".into();
        step.output = Some(output);
        step.error = None;
        step.lease_owner = None;
        step.lease_expires_at = None;
        step.completed_at = Some(now);
        step.updated_at = now;
        w.tx.update_step(&step).await?;
        let payload = json!({
            "stepId": step.id, "name": step.name,
            "checkpointInvariant": step.resume_contract.checkpoint_invariant,
            "verifiedBy": step.resume_contract.verified_by,
        });
        w.event(run_id, "step.completed", payload, now).await?;
        self.commit(w).await?;
        Ok(step)
    }

    pub async fn fail_step(&self, run_id: &str, step_id: &str, req: StepFail) -> Result<Step> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut step = self.fenced_step(&mut w, run_id, step_id, &req.lease_owner).await?;
        let (decision, status) =
            classify_failure(&step.resume_contract, req.retryable, req.resume_decision.as_deref());
        step.status = status.into();
        step.error = req.error.clone();
        step.lease_owner = None;
        step.lease_expires_at = None;
        step.updated_at = now;
        w.tx.update_step(&step).await?;
        let mut payload = json!({
            "stepId": step.id, "name": step.name, "retryable": req.retryable,
            "resumeDecision": decision, "resumeContract": step.resume_contract,
        });
        if let Some(error) = req.error {
            payload["error"] = error;
        }
        w.event(run_id, "step.failed", payload, now).await?;
        self.commit(w).await?;
        Ok(step)
    }
}
