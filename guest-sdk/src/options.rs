//! Option builders for steps, gates and state writes.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::bindings::tidebase::workflow::types as wit;
use crate::error::Error;
use tidebase_stable_json::input_hash;

/// Serializes `value`, remembering the first failure so that builders can stay
/// infallible; the operation that consumes the options reports it.
fn capture<T: Serialize + ?Sized>(value: &T, failure: &mut Option<Error>) -> Option<Value> {
    match serde_json::to_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            failure.get_or_insert(e.into());
            None
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How a failed step may be resumed (the protocol's `replay` option).
///
/// When unset, the server infers it: `Auto` for steps without side effects or with
/// only `read`, or with an idempotency key; `Manual` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Safe to run again automatically.
    Auto,
    /// A person must review the step before it runs again.
    Manual,
    /// Never run again: the failure is final.
    Never,
}

impl From<Replay> for wit::ReplayPolicy {
    fn from(replay: Replay) -> Self {
        match replay {
            Replay::Auto => wit::ReplayPolicy::Auto,
            Replay::Manual => wit::ReplayPolicy::Manual,
            Replay::Never => wit::ReplayPolicy::Never,
        }
    }
}

/// Options of [`Run::step_with`](crate::Run::step_with), mirroring the keyword
/// arguments of the Python SDK's `run.step`.
///
/// ```
/// use std::time::Duration;
/// use tidebase_guest::{Replay, StepOptions};
///
/// let options = StepOptions::new()
///     .input(&serde_json::json!({"to": "ops@example.com"}))
///     .retries(2)
///     .timeout(Duration::from_secs(30))
///     .side_effects(["email.send"])
///     .idempotency_key("welcome-mail:42")
///     .replay(Replay::Auto)
///     .checkpoint_invariant("the mail was accepted by the relay");
/// ```
#[derive(Clone, Debug, Default)]
pub struct StepOptions {
    input: Option<Value>,
    input_hash: Option<String>,
    retries: u32,
    timeout: Option<Duration>,
    side_effects: Vec<String>,
    idempotency_key: Option<String>,
    replay: Option<Replay>,
    checkpoint_invariant: Option<Value>,
    verified_by: Option<Value>,
    credentials: Option<Value>,
    failure: Option<Error>,
}

impl StepOptions {
    /// No options: no input, no retries, inferred replay policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// The step input. It is recorded with the checkpoint and its hash is checked
    /// on replay: resuming with a different input is an `input_mismatch` error.
    pub fn input<T: Serialize + ?Sized>(mut self, input: &T) -> Self {
        self.input = capture(input, &mut self.failure);
        self
    }

    /// Overrides the input hash, which is otherwise the SHA-256 of the input's
    /// stable JSON (see [`input_hash`](crate::input_hash)).
    pub fn input_hash(mut self, hash: impl Into<String>) -> Self {
        self.input_hash = Some(hash.into());
        self
    }

    /// Extra attempts after the first one fails (default 0).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Informative timeout, recorded as `timeoutMs` (not enforced, as in the Python SDK).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Declared side effects, e.g. `["read"]` or `["email.send"]`.
    pub fn side_effects<I, S>(mut self, effects: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.side_effects = effects.into_iter().map(Into::into).collect();
        self
    }

    /// Key that makes the step's side effects safe to repeat.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Explicit resume policy.
    pub fn replay(mut self, replay: Replay) -> Self {
        self.replay = Some(replay);
        self
    }

    /// What must hold for the checkpoint to stay valid (any JSON, usually a sentence).
    pub fn checkpoint_invariant<T: Serialize + ?Sized>(mut self, invariant: &T) -> Self {
        self.checkpoint_invariant = capture(invariant, &mut self.failure);
        self
    }

    /// How the step's result is verified (any JSON).
    pub fn verified_by<T: Serialize + ?Sized>(mut self, verifier: &T) -> Self {
        self.verified_by = capture(verifier, &mut self.failure);
        self
    }

    /// Credentials the step uses, for audit (normally a JSON array).
    pub fn credentials<T: Serialize + ?Sized>(mut self, credentials: &T) -> Self {
        self.credentials = capture(credentials, &mut self.failure);
        self
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The WIT options, with the input hash always filled in.
    pub(crate) fn to_wit(&self) -> Result<wit::StepOptions, Error> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string);
        Ok(wit::StepOptions {
            input: json(&self.input),
            input_hash: Some(
                self.input_hash
                    .clone()
                    .unwrap_or_else(|| input_hash(self.input.as_ref())),
            ),
            retries: self.retries,
            timeout_ms: self.timeout.map(millis),
            side_effects: self.side_effects.clone(),
            idempotency_key: self.idempotency_key.clone(),
            replay: self.replay.map(Into::into),
            checkpoint_invariant: json(&self.checkpoint_invariant),
            verified_by: json(&self.verified_by),
            credentials: json(&self.credentials),
        })
    }
}

/// Options of [`Run::gate_with`](crate::Run::gate_with).
///
/// ```
/// use std::time::Duration;
/// use tidebase_guest::GateOptions;
///
/// let options = GateOptions::new()
///     .data(&serde_json::json!({"amount": 120}))
///     .capability(&serde_json::json!({"scope": "payments.refund"}))
///     .timeout(Duration::from_secs(3600));
/// ```
#[derive(Clone, Debug, Default)]
pub struct GateOptions {
    data: Option<Value>,
    capability: Option<Value>,
    timeout: Option<Duration>,
    failure: Option<Error>,
}

impl GateOptions {
    /// No data, no capability, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Context shown to the approver with the prompt (a JSON object by convention).
    pub fn data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        self.data = capture(data, &mut self.failure);
        self
    }

    /// Opaque audit description of what approval grants.
    pub fn capability<T: Serialize + ?Sized>(mut self, capability: &T) -> Self {
        self.capability = capture(capability, &mut self.failure);
        self
    }

    /// Stop waiting after this long (at most 100 years); the gate is then
    /// recorded as `timed_out` and the gate call fails with a `TimeoutError`,
    /// in this and every later execution of the run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn to_wit(&self, name: &str, prompt: &str) -> Result<wit::GateRequest, Error> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        Ok(wit::GateRequest {
            name: name.to_owned(),
            prompt: prompt.to_owned(),
            data: self.data.as_ref().map(Value::to_string),
            capability: self.capability.as_ref().map(Value::to_string),
            timeout_ms: self.timeout.map(millis),
        })
    }
}

/// Informative weight of a recorded state version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    /// Not worth keeping long.
    Transient,
    /// An ordinary update (default of set and patch).
    Normal,
    /// A point worth returning to.
    Checkpoint,
    /// A major point (default of save).
    Milestone,
}

impl From<Importance> for wit::Importance {
    fn from(importance: Importance) -> Self {
        match importance {
            Importance::Transient => wit::Importance::Transient,
            Importance::Normal => wit::Importance::Normal,
            Importance::Checkpoint => wit::Importance::Checkpoint,
            Importance::Milestone => wit::Importance::Milestone,
        }
    }
}

/// Options of live-state writes ([`State::set_with`](crate::State::set_with),
/// [`patch_with`](crate::State::patch_with), [`save_with`](crate::State::save_with)),
/// mirroring the Python SDK's keyword options.
///
/// ```
/// use tidebase_guest::{Importance, StateOptions};
///
/// let options = StateOptions::new()
///     .stream("drafts")
///     .reason("outline ready")
///     .importance(Importance::Checkpoint)
///     .created_by("planner");
/// ```
#[derive(Clone, Debug, Default)]
pub struct StateOptions {
    stream: Option<String>,
    label: Option<String>,
    reason: Option<String>,
    importance: Option<Importance>,
    metadata: Option<Value>,
    created_by: Option<String>,
    failure: Option<Error>,
}

impl StateOptions {
    /// No options: stream `run`, default importance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Version stream to record in (default `run`).
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// Label that makes the recorded version a snapshot.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Why the state changed.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Informative weight of the version.
    pub fn importance(mut self, importance: Importance) -> Self {
        self.importance = Some(importance);
        self
    }

    /// Free-form metadata.
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.metadata = capture(metadata, &mut self.failure);
        self
    }

    /// Author of the change (`createdBy`).
    pub fn created_by(mut self, author: impl Into<String>) -> Self {
        self.created_by = Some(author.into());
        self
    }

    pub(crate) fn to_wit(&self) -> Result<wit::StateOptions, Error> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        Ok(wit::StateOptions {
            stream: self.stream.clone(),
            label: self.label.clone(),
            reason: self.reason.clone(),
            importance: self.importance.map(Into::into),
            metadata: self.metadata.as_ref().map(Value::to_string),
            created_by: self.created_by.clone(),
        })
    }
}
