//! One activation of a wasm run, as the wasm door drives it. A run executes
//! its workflow from the top on every activation, so what replays, what is
//! recorded once and what runs fresh is decided here: the door only decodes
//! the guest's arguments and encodes the answers.
//!
//! Under the run lease nobody else writes the run's steps, so the activation
//! keeps them in memory, current with its own checkpoints: begins and
//! replays need no database round trip. Checkpoints of pure steps are
//! grouped ([`super::group_commit`]): every other durable effect of the
//! activation writes them first.

use super::calls::{CallLog, check_guest_step_name};
use super::egress::Refusals;
use super::group_commit::Pending;
use super::steps::settled;
use super::{
    ActivationOutcome, Conflict, EgressCaller, EgressClass, EgressRefusal, Ended, Engine,
    EngineError, GateBegin, HostCall, NewChild, NewUsage, Result, StepAction, StepBegin,
    StepOutcome, input_hash,
};
use crate::clock::Micros;
use crate::model::{Gate, ResumeContract, Run, Step};
use crate::store::ClaimedRun;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Activation {
    engine: Engine,
    run_id: String,
    owner: String,
    /// Numbers the calls made outside steps in call order, which a
    /// deterministic workflow repeats on replay, and replays their answers.
    calls: CallLog,
    /// The run's steps by name.
    steps: HashMap<String, Step>,
    /// Step attempts begun by the guest and not yet completed or failed, by id.
    attempts: HashMap<String, Attempt>,
    /// Step attempts begun so far: orders them, newest last.
    begun: u64,
    /// Egress calls refused during this activation, in or outside steps.
    refusals: Refusals,
    /// Checkpoints of pure steps not written yet.
    pending: Pending,
}

/// A step attempt in progress, with the usage recorded against it (written
/// with the attempt's checkpoint, when the step row exists).
pub struct Attempt {
    req: StepBegin,
    usage: Vec<NewUsage>,
    /// The step's attempt number this is.
    number: i32,
    /// Position among the activation's step attempts.
    order: u64,
    /// Marked by egress calls of this attempt that were refused.
    refusals: Refusals,
    /// When the guest began it (the step's `startedAt`, and its latency).
    began: Micros,
    /// Set once the attempt sends an egress call.
    egressed: AtomicBool,
}

impl Attempt {
    pub fn name(&self) -> &str {
        &self.req.name
    }

    /// Running it again changes nothing outside the run: it declares no
    /// side effects and sent no egress call.
    fn is_pure(&self) -> bool {
        !self.egressed.load(Ordering::Relaxed) && declares_no_side_effects(&self.req)
    }
}

fn declares_no_side_effects(req: &StepBegin) -> bool {
    ResumeContract::from_options(&req.options)
        .side_effects
        .is_empty()
}

/// What beginning a step decided.
pub enum Begun {
    /// The step completed on an earlier attempt: its recorded output.
    Replay(Value),
    /// Run the step's code now, as the attempt with this id.
    Execute(String),
    /// The step's input changed since its checkpoint.
    InputMismatch { expected: String, actual: String },
}

/// What a durable sleep asks of the door.
pub enum Sleep {
    /// Inside step code: suspending would abandon the step attempt, so the
    /// door waits in place for the whole duration.
    InPlace,
    /// The recorded wake-up time has passed.
    Over,
    /// Suspend the run until `at`; `key` names the recorded sleep.
    Until { key: String, at: Micros },
}

impl Engine {
    /// Start an activation of `run_id` under `owner`'s lease from the run's
    /// steps and recorded outside-step calls.
    pub async fn activation(&self, run_id: &str, owner: &str) -> Result<Activation> {
        let steps = self.steps_of(run_id).await?;
        let mut activation = self.blank_activation(run_id, owner);
        activation.steps = steps.into_iter().map(|s| (s.name.clone(), s)).collect();
        activation.calls = self.call_log(run_id, owner).await?;
        Ok(activation)
    }

    /// Start an activation of a run `owner` just claimed: from nothing,
    /// without a read, when the claim saw nothing recorded.
    pub async fn claimed_activation(
        &self,
        claimed: &ClaimedRun,
        owner: &str,
    ) -> Result<Activation> {
        if claimed.recorded {
            self.activation(&claimed.run.id, owner).await
        } else {
            Ok(self.blank_activation(&claimed.run.id, owner))
        }
    }

    /// An activation that starts from nothing recorded, without reading the
    /// store (a run with nothing recorded yet, and the benchmarks' probe,
    /// whose guest makes no durable calls).
    pub fn blank_activation(&self, run_id: &str, owner: &str) -> Activation {
        Activation {
            engine: self.clone(),
            run_id: run_id.to_string(),
            owner: owner.to_string(),
            calls: CallLog::new(run_id, owner, Vec::new()),
            steps: HashMap::new(),
            attempts: HashMap::new(),
            begun: 0,
            refusals: Refusals::default(),
            pending: Pending::new(self, run_id, owner),
        }
    }
}

impl Activation {
    /// The activation's refused egress calls, which explain how it ended
    /// ([`Refusals::explain`]).
    pub fn refusals(&self) -> Refusals {
        self.refusals.clone()
    }

    /// Whether step code is running (between a step's begin and its end).
    pub fn in_step(&self) -> bool {
        !self.attempts.is_empty()
    }

    /// Begin the step `name` with its protocol `options` (which carry its
    /// `input`). The guest SDK always sends the input hash; without one it
    /// is computed here. A refused name or option is refused before the
    /// step's code runs, not at its checkpoint. A step that declares side
    /// effects runs only once every checkpoint before it is written.
    pub async fn begin_step(
        &mut self,
        name: String,
        options: Value,
        hash: Option<String>,
    ) -> Result<Begun> {
        let input = options.get("input").cloned().unwrap_or(Value::Null);
        let hash = hash.unwrap_or_else(|| input_hash(Some(&input)));
        let mut req = StepBegin {
            id: None,
            name,
            input_hash: hash,
            input,
            options,
            lease_owner: None,
        };
        check_guest_step_name(&req.name)?;
        req.check()?;
        let existing = self.steps.get(&req.name);
        Ok(match settled(existing, &req.input_hash) {
            Some(StepAction::Return { step }) => Begun::Replay(step.output.unwrap_or(Value::Null)),
            Some(StepAction::InputMismatch {
                expected, actual, ..
            }) => Begun::InputMismatch { expected, actual },
            Some(_) => unreachable!("settled only replays or refuses"),
            None => {
                // The attempt's id is the step row's id (existing or to be inserted).
                let id = existing.map_or_else(|| crate::ids::new_id("step"), |s| s.id.clone());
                if !declares_no_side_effects(&req) {
                    self.pending.flush().await?;
                }
                req.id = Some(id.clone());
                self.begun += 1;
                let attempt = Attempt {
                    req,
                    usage: Vec::new(),
                    number: existing.map_or(1, |s| s.attempt.saturating_add(1)),
                    order: self.begun,
                    refusals: Refusals::default(),
                    began: self.engine.now(),
                    egressed: AtomicBool::new(false),
                };
                self.attempts.insert(id.clone(), attempt);
                Begun::Execute(id)
            }
        })
    }

    /// The attempt `step_id`, if it is in progress; it ends with
    /// [`Activation::end_attempt`].
    pub fn take_attempt(&mut self, step_id: &str) -> Option<Attempt> {
        self.attempts.remove(step_id)
    }

    /// Checkpoint an attempt with the usage recorded against it. A failure
    /// after a refused egress call names the refusal's class.
    pub async fn end_attempt(
        &mut self,
        attempt: Attempt,
        mut outcome: StepOutcome,
    ) -> Result<Step> {
        if let StepOutcome::Failed { error, .. } = &mut outcome {
            attempt.refusals.classify(error);
        }
        let pure = attempt.is_pure();
        self.checkpoint(attempt.req, outcome, attempt.usage, attempt.began, pure)
            .await
    }

    /// Who brokered HTTP calls are made for: the step attempt begun last
    /// among those in progress, which is no longer pure. Outside step code
    /// there is none, and the call is refused. The call writes the
    /// activation's pending checkpoints before it leaves the process.
    pub fn egress_caller(&self) -> Result<EgressCaller> {
        let Some(attempt) = self.attempts.values().max_by_key(|a| a.order) else {
            let refusal = EgressRefusal {
                class: EgressClass::OutsideStep,
                reason: "HTTP calls are only allowed inside a step: outside steps workflow code \
                    must be deterministic, and a step's checkpoint keeps a resumed run from \
                    calling again"
                    .into(),
            };
            self.refusals.set(&refusal);
            return Err(EngineError::EgressRefused(refusal));
        };
        attempt.egressed.store(true, Ordering::Relaxed);
        let key = attempt.req.options.get("idempotencyKey");
        Ok(EgressCaller {
            run_id: self.run_id.clone(),
            owner: self.owner.clone(),
            step: attempt.req.name.clone(),
            attempt: attempt.number,
            idempotency_key: key.and_then(|k| k.as_str()).map(String::from),
            attempt_refusals: attempt.refusals.clone(),
            refusals: self.refusals.clone(),
            pending: self.pending.clone(),
        })
    }

    /// A state or log call: exactly once per run outside step code.
    pub async fn call(&mut self, call: HostCall) -> Result<Value> {
        self.pending.flush().await?;
        let in_step = self.in_step();
        self.calls.call(&self.engine, call, in_step).await
    }

    /// Record usage: with its step's checkpoint when it names a step attempt
    /// in progress, otherwise as a call. Checked here, not at the
    /// checkpoint: one bad record must not fail the whole step attempt.
    pub async fn record_usage(&mut self, usage: NewUsage) -> Result<()> {
        usage.check()?;
        let attempt = usage
            .step_id
            .as_ref()
            .and_then(|id| self.attempts.get_mut(id));
        if let Some(attempt) = attempt {
            attempt.usage.push(usage);
            return Ok(());
        }
        self.call(HostCall::Usage(usage)).await.map(|_| ())
    }

    /// Begin the gate (idempotent by name); see [`Engine::begin_gate`].
    pub async fn begin_gate(&self, req: GateBegin) -> Result<Gate> {
        self.pending.flush().await?;
        self.engine.begin_gate(&self.run_id, req).await
    }

    /// Start the child (idempotent by edge); see [`Engine::create_child`].
    pub async fn start_child(&self, req: NewChild) -> Result<(Run, bool)> {
        self.pending.flush().await?;
        let (child, _, created) = self.engine.create_child(&self.run_id, req).await?;
        Ok((child, created))
    }

    /// A durable sleep of `duration_ms`: its wake-up time is recorded once
    /// and replayed, so a resumed run does not sleep again.
    pub async fn sleep(&mut self, duration_ms: u64) -> Result<Sleep> {
        if self.in_step() {
            return Ok(Sleep::InPlace);
        }
        let now = self.engine.now();
        let micros = i64::try_from(duration_ms).map_or(i64::MAX, |ms| ms.saturating_mul(1000));
        let key = self.calls.next_key("sleep");
        let fresh = json!({"wakeAt": now.saturating_add(micros)});
        let recorded = self.record_value(&key, fresh).await?;
        self.pending.flush().await?;
        let at = recorded["wakeAt"].as_i64().unwrap_or(now);
        Ok(if self.engine.now() >= at {
            Sleep::Over
        } else {
            Sleep::Until { key, at }
        })
    }

    /// Milliseconds since the Unix epoch, recorded and replayed.
    pub async fn now_ms(&mut self) -> Result<u64> {
        let fresh = (self.engine.now() / 1000).max(0);
        let v = self.recorded("now", json!(fresh)).await?;
        Ok(v.as_u64().unwrap_or(0))
    }

    /// A random u64, recorded and replayed.
    pub async fn random(&mut self) -> Result<u64> {
        let fresh: u64 = rand::random();
        // Recorded as a string: JSON numbers above 2^53 lose precision.
        let v = self.recorded("random", json!(fresh.to_string())).await?;
        Ok(v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// Outside step code: `fresh` recorded once as hidden step `__<kind>:<n>`
    /// and replayed afterwards. Inside step code the step's own checkpoint
    /// captures the effect, so the value is used as is and not numbered
    /// (numbering it would shift every later call once the step replays).
    async fn recorded(&mut self, kind: &'static str, fresh: Value) -> Result<Value> {
        if self.in_step() {
            return Ok(fresh);
        }
        let key = self.calls.next_key(kind);
        self.record_value(&key, fresh).await
    }

    /// The value recorded as hidden step `key`, recording `fresh` first.
    async fn record_value(&mut self, key: &str, fresh: Value) -> Result<Value> {
        let hash = input_hash(None);
        match settled(self.steps.get(key), &hash) {
            Some(StepAction::Return { step }) => return Ok(step.output.unwrap_or(Value::Null)),
            Some(_) => {
                let key = key.to_string();
                return Err(EngineError::Conflict(Conflict::ReplayDiverged { key }));
            }
            None => {}
        }
        let req = StepBegin {
            id: None,
            name: key.to_string(),
            input_hash: hash,
            input: Value::Null,
            options: json!({"replay": "auto"}),
            lease_owner: None,
        };
        let outcome = StepOutcome::Completed(fresh);
        let now = self.engine.now();
        let step = self.checkpoint(req, outcome, Vec::new(), now, true).await?;
        Ok(step.output.unwrap_or(Value::Null))
    }

    /// Record a step attempt and keep the cache current. The first attempt
    /// of a `pure` step that completed without usage joins the pending
    /// group; anything else is written at once, after the group.
    async fn checkpoint(
        &mut self,
        req: StepBegin,
        outcome: StepOutcome,
        usage: Vec<NewUsage>,
        began: Micros,
        pure: bool,
    ) -> Result<Step> {
        let step = match outcome {
            StepOutcome::Completed(output)
                if pure && usage.is_empty() && !self.steps.contains_key(&req.name) =>
            {
                req.check()?;
                let new = self
                    .engine
                    .completed_step(&self.run_id, &self.owner, req, output, began);
                let step = new.step.clone();
                self.pending.add(new).await?;
                step
            }
            outcome => {
                self.pending.flush().await?;
                self.engine
                    .checkpoint_step(&self.run_id, &self.owner, req, outcome, usage, began)
                    .await?
            }
        };
        self.steps.insert(step.name.clone(), step.clone());
        Ok(step)
    }

    /// End the activation: the pending checkpoints go to the transaction
    /// that records the ending ([`Ended`]), or, when `output_follows` (the
    /// guest printed lines that become `log` events after this), are
    /// written now so they precede those lines. A step that completed stays
    /// completed whatever came after it (a trap, a CPU timeout, a
    /// suspension), as it would had each checkpoint been written at once;
    /// only a cancelled run or a lost lease writes nothing, which the fence
    /// would refuse anyway. If the group cannot be written, the outcome
    /// says why: the lease was lost, the run was cancelled, or the store
    /// failed (the run is retried and its pure steps run again).
    pub async fn close(&self, outcome: ActivationOutcome, output_follows: bool) -> Ended {
        if matches!(
            outcome,
            ActivationOutcome::Cancelled | ActivationOutcome::LeaseLost
        ) {
            return outcome.into();
        }
        if !output_follows {
            let unwritten = self.pending.take().await;
            return Ended { outcome, unwritten };
        }
        match self.pending.flush().await {
            Ok(()) => outcome,
            Err(e) if e.is_cancelled() => ActivationOutcome::Cancelled,
            Err(e) if e.is_lease_lost() => ActivationOutcome::LeaseLost,
            Err(e) => ActivationOutcome::Retry(format!("writing step checkpoints: {e}")),
        }
        .into()
    }
}
