//! Step checkpoints: the begin decision procedure, fenced complete and fail.
//!
//! Two doors use these rules. SDK workers speak the v0.5 protocol (begin,
//! then complete or fail: two commits). Wasm runs execute under the run lease
//! inside this process, so they check without writing and record the whole
//! attempt in one commit when it ends ([`Engine::checkpoint_step`]).

use super::telemetry;
use super::write::Write;
use super::{Engine, EngineError, LeaseLost, NewUsage, Result, limits};
use crate::clock::Micros;
use crate::ids;
use crate::model::{ResumeContract, RunStatus, Step, classify_failure};
use crate::store::NewStep;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct StepBegin {
    /// Id for the step row if this begin creates it (the wasm door names
    /// attempts before they are recorded); `None` generates one.
    pub id: Option<String>,
    pub name: String,
    pub input_hash: String,
    pub input: Value,
    pub options: Value,
    pub lease_owner: Option<String>,
}

impl StepBegin {
    /// The limits on a begin, whichever door it came through.
    pub fn check(&self) -> Result<()> {
        limits::check_name("name", &self.name)?;
        limits::check_nonempty("inputHash", &self.input_hash)?;
        limits::check_opt_text("leaseOwner", self.lease_owner.as_deref())?;
        Ok(())
    }
}

/// The answer to a step begin (semantics §5).
#[derive(Clone, Debug)]
pub enum StepAction {
    Cancelled,
    InputMismatch {
        step: Step,
        expected: String,
        actual: String,
    },
    Return {
        step: Step,
    },
    Locked {
        step: Step,
    },
    Execute {
        step: Step,
        lease_owner: String,
    },
}

/// The wire form of a step begin's answer (`http-api.md`), written straight
/// to the response: a replay's step is not built into a `Value` first.
impl Serialize for StepAction {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            StepAction::Cancelled => map.serialize_entry("action", "cancelled")?,
            StepAction::InputMismatch {
                step,
                expected,
                actual,
            } => {
                map.serialize_entry("action", "input_mismatch")?;
                map.serialize_entry("step", step)?;
                map.serialize_entry("expectedInputHash", expected)?;
                map.serialize_entry("actualInputHash", actual)?;
            }
            StepAction::Return { step } => {
                map.serialize_entry("action", "return")?;
                map.serialize_entry("step", step)?;
                map.serialize_entry("output", &step.output)?;
            }
            StepAction::Locked { step } => {
                map.serialize_entry("action", "locked")?;
                map.serialize_entry("step", step)?;
            }
            StepAction::Execute { step, lease_owner } => {
                map.serialize_entry("action", "execute")?;
                map.serialize_entry("step", step)?;
                map.serialize_entry("leaseOwner", lease_owner)?;
            }
        }
        map.end()
    }
}

#[derive(Clone, Debug)]
pub struct StepFail {
    pub lease_owner: String,
    pub error: Option<Value>,
    pub retryable: bool,
    pub resume_decision: Option<String>,
}

/// How a wasm step attempt ended.
#[derive(Clone, Debug)]
pub enum StepOutcome {
    Completed(Value),
    Failed { error: Value, retryable: bool },
}

/// Mark an attempt completed; returns its `step.completed` payload.
fn mark_completed(step: &mut Step, output: Value, now: Micros) -> Value {
    step.status = "completed".into();
    step.output = Some(output);
    step.error = None;
    step.lease_owner = None;
    step.lease_expires_at = None;
    step.completed_at = Some(now);
    step.updated_at = now;
    json!({
        "stepId": step.id, "name": step.name,
        "checkpointInvariant": step.resume_contract.checkpoint_invariant,
        "verifiedBy": step.resume_contract.verified_by,
    })
}

fn started_payload(step: &Step) -> Value {
    json!({
        "stepId": step.id, "name": step.name, "attempt": step.attempt,
        "resumeContract": step.resume_contract,
    })
}

/// Whether a step begin is answered without a new attempt.
#[derive(Clone, Debug)]
pub enum Settled {
    Done(StepAction),
    Open(Option<Step>),
}

/// Checks that settle a begin without taking a lease: drift and replay.
pub fn settled(existing: Option<&Step>, input_hash: &str) -> Option<StepAction> {
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
    /// Cancellation, drift and replay of a completed checkpoint, answered
    /// from plain reads: replaying writes nothing. `Open` carries the step
    /// row, if any, that a new attempt would continue.
    pub async fn settle_step(&self, run_id: &str, name: &str, input_hash: &str) -> Result<Settled> {
        let mut r = self.read().await?;
        let (status, existing) = r
            .run_status_and_step(run_id, name)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        if status == RunStatus::Cancelled {
            return Ok(Settled::Done(StepAction::Cancelled));
        }
        Ok(match settled(existing.as_ref(), input_hash) {
            Some(action) => Settled::Done(action),
            None => Settled::Open(existing),
        })
    }

    /// Every step of a run (the wasm door caches them per activation: under
    /// the run lease nobody else writes them).
    pub async fn steps_of(&self, run_id: &str) -> Result<Vec<Step>> {
        Ok(self.read().await?.steps(run_id).await?)
    }

    /// The row of a step's first execution attempt, leased to `owner`.
    fn first_attempt(&self, run_id: &str, req: StepBegin, owner: &str, now: Micros) -> Step {
        Step {
            id: req.id.unwrap_or_else(|| ids::new_id("step")),
            run_id: run_id.to_string(),
            name: req.name,
            input_hash: req.input_hash,
            input: if req.input.is_null() {
                json!({})
            } else {
                req.input
            },
            resume_contract: ResumeContract::from_options(&req.options),
            options: req.options,
            status: "running".into(),
            output: None,
            error: None,
            lease_owner: Some(owner.to_string()),
            lease_expires_at: Some(self.lease_expiry(now)),
            attempt: 1,
            started_at: Some(now),
            completed_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// A new execution attempt of a step: a fresh row or the next attempt of
    /// an existing one, leased to `owner`, with its `step.started` event.
    async fn start_attempt(
        &self,
        w: &mut Write,
        existing: Option<Step>,
        run_id: &str,
        req: StepBegin,
        owner: &str,
        now: Micros,
    ) -> Result<(Step, bool)> {
        let (step, fresh) = match existing {
            Some(mut step) => {
                step.input_hash = req.input_hash;
                step.input = if req.input.is_null() {
                    json!({})
                } else {
                    req.input
                };
                step.resume_contract = ResumeContract::from_options(&req.options);
                step.options = req.options;
                step.status = "running".into();
                step.attempt = step.attempt.saturating_add(1);
                step.started_at = step.started_at.or(Some(now));
                step.lease_owner = Some(owner.to_string());
                step.lease_expires_at = Some(self.lease_expiry(now));
                step.updated_at = now;
                (step, false)
            }
            None => (self.first_attempt(run_id, req, owner, now), true),
        };
        w.event(run_id, "step.started", started_payload(&step), now)
            .await?;
        Ok((step, fresh))
    }

    async fn save_step(&self, w: &mut Write, step: &Step, fresh: bool) -> Result<()> {
        if fresh {
            w.tx.insert_step(step).await?;
        } else {
            w.tx.update_step(step).await?;
        }
        Ok(())
    }

    /// Mark an attempt completed and append `step.completed`.
    async fn finish_completed(
        &self,
        w: &mut Write,
        step: &mut Step,
        output: Value,
        now: Micros,
    ) -> Result<()> {
        let payload = mark_completed(step, output, now);
        w.event(&step.run_id, "step.completed", payload, now)
            .await?;
        Ok(())
    }

    /// Mark an attempt failed (classified per the resume contract) and append `step.failed`.
    async fn finish_failed(
        &self,
        w: &mut Write,
        step: &mut Step,
        error: Option<Value>,
        retryable: bool,
        given_decision: Option<&str>,
        now: Micros,
    ) -> Result<()> {
        let (decision, status) = classify_failure(&step.resume_contract, retryable, given_decision);
        step.status = status.into();
        step.error = error.clone();
        step.lease_owner = None;
        step.lease_expires_at = None;
        step.updated_at = now;
        let mut payload = json!({
            "stepId": step.id, "name": step.name, "retryable": retryable,
            "resumeDecision": decision, "resumeContract": step.resume_contract,
        });
        if let Some(error) = error {
            payload["error"] = error;
        }
        w.event(&step.run_id, "step.failed", payload, now).await?;
        Ok(())
    }

    pub async fn begin_step(&self, run_id: &str, req: StepBegin) -> Result<StepAction> {
        req.check()?;
        let existing = match self.settle_step(run_id, &req.name, &req.input_hash).await? {
            Settled::Done(action) => return Ok(action),
            Settled::Open(existing) => existing,
        };
        if existing.is_none() {
            // First begin: insert-if-absent decides the single executor.
            let owner = req.lease_owner.clone().unwrap_or_else(ids::lease_owner);
            let now = self.now();
            let step = self.first_attempt(run_id, req.clone(), &owner, now);
            if self
                .store
                .insert_step_if_absent(&step, &started_payload(&step), now)
                .await?
                .is_some()
            {
                self.feed.notify(run_id);
                self.begun.remember(&step);
                return Ok(StepAction::Execute {
                    step,
                    lease_owner: owner,
                });
            }
            // Another begin created it first: decide under the step lock.
        }
        let now = self.now();
        let mut w = self.write().await?;
        // Serialise first begins of the same step before any row exists.
        w.tx.lock_key(&format!("{run_id}:step:{}", req.name))
            .await?;
        let existing = w.tx.step_by_name(run_id, &req.name, true).await?;
        if let Some(action) = settled(existing.as_ref(), &req.input_hash) {
            return Ok(action);
        }
        let owner = req.lease_owner.clone().unwrap_or_else(ids::lease_owner);
        if let Some(step) = &existing
            && step.live_lease_owner(now).is_some_and(|h| h != owner)
        {
            return Ok(StepAction::Locked { step: step.clone() });
        }
        let (step, fresh) = self
            .start_attempt(&mut w, existing, run_id, req, &owner, now)
            .await?;
        self.save_step(&mut w, &step, fresh).await?;
        self.commit(w).await?;
        self.begun.remember(&step);
        Ok(StepAction::Execute {
            step,
            lease_owner: owner,
        })
    }

    /// Load a step for a fenced write: only its current lease owner may
    /// complete or fail it.
    async fn fenced_step(
        &self,
        w: &mut Write,
        run_id: &str,
        step_id: &str,
        owner: &str,
    ) -> Result<Step> {
        match w.tx.step(run_id, step_id, true).await? {
            Some(step) if step.lease_owner.as_deref() == Some(owner) => Ok(step),
            _ => Err(EngineError::LeaseLost(LeaseLost::Step)),
        }
    }

    /// Complete `owner`'s attempt. The attempt (as this process began it, or
    /// else read) is completed here and written back only if nobody wrote
    /// the row since (one statement on Postgres): the row still leased to
    /// `owner` is the fence. Only if it
    /// changed in between is the decision taken again under its row lock.
    pub async fn complete_step(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        output: Value,
    ) -> Result<Step> {
        let now = self.now();
        let read = match self.begun.take(run_id, step_id) {
            Some(step) if step.lease_owner.as_deref() == Some(owner) => Some(step),
            _ => self.read().await?.step(run_id, step_id, false).await?,
        };
        let read = match read {
            Some(step) if step.lease_owner.as_deref() == Some(owner) => step,
            _ => return Err(EngineError::LeaseLost(LeaseLost::Step)),
        };
        let mut step = read.clone();
        let payload = mark_completed(&mut step, output, now);
        // `step.completed` reaches no channel and ends no run, so the event
        // is all `Write::event` would record beside the row.
        debug_assert!(!super::channels::DELIVERABLE.contains(&"step.completed"));
        let event = ("step.completed", &payload);
        let store = &self.store;
        if store
            .replace_step_if_unchanged(&read, &step, event, now)
            .await?
            .is_some()
        {
            self.feed.notify(run_id);
            // The attempt began when the row was last written: at its begin.
            telemetry::step_attempt("completed", read.updated_at, now);
            return Ok(step);
        }
        let output = step.output.take().unwrap_or(Value::Null);
        self.complete_step_locked(run_id, step_id, owner, output)
            .await
    }

    /// [`Engine::complete_step`] deciding under the step's row lock.
    async fn complete_step_locked(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        output: Value,
    ) -> Result<Step> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut step = self.fenced_step(&mut w, run_id, step_id, owner).await?;
        // The attempt began when the row was last written: at its begin.
        let began = step.updated_at;
        self.finish_completed(&mut w, &mut step, output, now)
            .await?;
        w.tx.update_step(&step).await?;
        self.commit(w).await?;
        telemetry::step_attempt("completed", began, now);
        Ok(step)
    }

    pub async fn fail_step(&self, run_id: &str, step_id: &str, req: StepFail) -> Result<Step> {
        self.begun.take(run_id, step_id);
        let now = self.now();
        let mut w = self.write().await?;
        let mut step = self
            .fenced_step(&mut w, run_id, step_id, &req.lease_owner)
            .await?;
        let began = step.updated_at;
        let decision = req.resume_decision.as_deref();
        self.finish_failed(&mut w, &mut step, req.error, req.retryable, decision, now)
            .await?;
        w.tx.update_step(&step).await?;
        self.commit(w).await?;
        telemetry::step_attempt("failed", began, now);
        Ok(step)
    }

    /// A step's first attempt, completed now with `output`: its row and its
    /// `step.started` and `step.completed` events, as recorded whole.
    pub(crate) fn completed_step(
        &self,
        run_id: &str,
        owner: &str,
        req: StepBegin,
        output: Value,
        began: Micros,
    ) -> NewStep {
        let now = self.now();
        let mut step = self.first_attempt(run_id, req, owner, now);
        step.started_at = Some(began);
        let started = started_payload(&step);
        let completed = mark_completed(&mut step, output, now);
        NewStep {
            step,
            events: vec![("step.started", started), ("step.completed", completed)],
            at: now,
        }
    }

    /// Record a whole step attempt of a wasm run in one commit, fenced by
    /// the run lease: a zombie instance whose lease was taken over (or whose
    /// run was cancelled) cannot write. Returns the stored step; if another
    /// attempt completed it meanwhile, that checkpoint wins and is returned.
    /// `began` is when the guest began the attempt.
    pub async fn checkpoint_step(
        &self,
        run_id: &str,
        owner: &str,
        req: StepBegin,
        outcome: StepOutcome,
        usage: Vec<NewUsage>,
        began: Micros,
    ) -> Result<Step> {
        req.check()?;
        let now = self.now();
        if let (true, StepOutcome::Completed(output)) = (usage.is_empty(), &outcome) {
            // Fast path for a step that completes on its first attempt: one
            // statement, applied only while `owner` holds the run lease and no
            // step of that name exists; otherwise the full path below decides.
            let new = self.completed_step(run_id, owner, req.clone(), output.clone(), began);
            if self
                .record_new_steps(owner, std::slice::from_ref(&new))
                .await?
            {
                return Ok(new.step);
            }
        }
        let mut w = self.write().await?;
        self.fence_run(&mut w, run_id, owner).await?;
        let existing = w.tx.step_by_name(run_id, &req.name, true).await?;
        match settled(existing.as_ref(), &req.input_hash) {
            Some(StepAction::Return { step }) => return Ok(step),
            Some(StepAction::InputMismatch {
                expected, actual, ..
            }) => {
                return Err(EngineError::BadRequest(format!(
                    "step {:?} input changed: recorded hash {expected}, now {actual}",
                    req.name
                )));
            }
            _ => {}
        }
        let (mut step, fresh) = self
            .start_attempt(&mut w, existing, run_id, req, owner, now)
            .await?;
        if fresh {
            step.started_at = Some(began);
        }
        let ended = match outcome {
            StepOutcome::Completed(output) => {
                self.finish_completed(&mut w, &mut step, output, now)
                    .await?;
                "completed"
            }
            StepOutcome::Failed { error, retryable } => {
                self.finish_failed(&mut w, &mut step, Some(error), retryable, None, now)
                    .await?;
                "failed"
            }
        };
        self.save_step(&mut w, &step, fresh).await?;
        // Usage the attempt recorded against itself lands with its checkpoint.
        for mut u in usage {
            u.step_id = Some(step.id.clone());
            self.insert_usage(&mut w, run_id, u, now).await?;
        }
        self.commit(w).await?;
        telemetry::step_attempt(ended, began, now);
        Ok(step)
    }
}
