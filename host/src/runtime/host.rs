//! The wasm door: each host import decodes its arguments, calls the engine
//! and encodes the answer. Waits (gates, sleeps, children) become a
//! [`Interrupt::Suspend`] trap: the instance is dropped and the run replays
//! up to the same point when it is picked up again.

use super::bindings::{
    Decision, GateOutcome, GateRequest, GuestError, Importance, LogLevel, ReplayPolicy,
    StateOptions, StepOptions, StepStart, tidebase::workflow::host, tidebase::workflow::types,
};
use super::interrupt::Interrupt;
use crate::clock::Micros;
use crate::engine::{
    CallLog, Engine, EngineError, GateBegin, HostCall, NewChild, NewRun, NewUsage, StateWrite,
    StepAction, StepBegin, StepOutcome, WriteMode, check_guest_step_name, limits, settled,
};
use crate::model::{RunStatus, Step, TIMED_OUT};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Result as Wt, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often a sleep inside step code checks for cancellation.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// Receives one line per durable effect, for `tidebase-host run`'s stderr.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A run's view of the host while one activation executes.
pub struct RunCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    engine: Engine,
    run_id: String,
    owner: String,
    /// Numbers the calls made outside steps in call order, which a
    /// deterministic workflow repeats on replay, and replays their answers.
    calls: CallLog,
    /// The run's steps by name, kept current by this activation's
    /// checkpoints: under the run lease nobody else writes them, so begins
    /// and replays need no database round trip.
    steps: HashMap<String, Step>,
    /// Step attempts begun by the guest and not yet completed or failed,
    /// with the usage they recorded against themselves (written with the
    /// attempt's checkpoint, when the step row exists).
    attempts: HashMap<String, (StepBegin, Vec<NewUsage>)>,
    pub(super) cancelled: Arc<AtomicBool>,
    progress: Option<Progress>,
    max_output: usize,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
}

pub struct RunCtxParts {
    pub engine: Engine,
    pub run_id: String,
    pub owner: String,
    pub limits: StoreLimits,
    pub cancelled: Arc<AtomicBool>,
    pub progress: Option<Progress>,
    pub max_output: usize,
    pub log_capacity: usize,
    /// The run's steps as the activation starts.
    pub steps: Vec<Step>,
    /// The run's recorded outside-step calls as the activation starts.
    pub calls: CallLog,
}

impl RunCtx {
    pub fn new(p: RunCtxParts) -> RunCtx {
        let stdout = MemoryOutputPipe::new(p.log_capacity);
        let stderr = MemoryOutputPipe::new(p.log_capacity);
        // No preopened dirs, no env, no network: the builder grants nothing
        // beyond what is configured here.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        RunCtx {
            wasi,
            table: ResourceTable::new(),
            limits: p.limits,
            engine: p.engine,
            run_id: p.run_id,
            owner: p.owner,
            calls: p.calls,
            attempts: HashMap::new(),
            steps: p.steps.into_iter().map(|s| (s.name.clone(), s)).collect(),
            cancelled: p.cancelled,
            progress: p.progress,
            max_output: p.max_output,
            stdout,
            stderr,
        }
    }

    fn say(&self, line: impl AsRef<str>) {
        if let Some(p) = &self.progress {
            p(line.as_ref());
        }
    }

    fn live(&self) -> Wt<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(Interrupt::Cancelled.trap())
        } else {
            Ok(())
        }
    }

    fn check_size(&self, what: &'static str, text: &str) -> Wt<()> {
        if text.len() > self.max_output {
            return Err(Interrupt::OutputLimit {
                what,
                bytes: text.len(),
                limit: self.max_output,
            }
            .trap());
        }
        Ok(())
    }

    /// Whether step code is running (between a step's begin and its end).
    fn in_step(&self) -> bool {
        !self.attempts.is_empty()
    }

    /// Outside step code: `fresh` recorded once as hidden step `__<kind>:<n>`
    /// and replayed afterwards. Inside step code the step's own checkpoint
    /// captures the effect, so the value is used as is and not numbered
    /// (numbering it would shift every later call once the step replays).
    async fn recorded(&mut self, kind: &'static str, fresh: Value) -> Wt<Value> {
        if self.in_step() {
            return Ok(fresh);
        }
        let key = self.calls.next_key(kind);
        self.record_value(&key, fresh).await
    }

    /// The value recorded as hidden step `key`, recording `fresh` first.
    async fn record_value(&mut self, key: &str, fresh: Value) -> Wt<Value> {
        let hash = crate::engine::input_hash(None);
        match settled(self.steps.get(key), &hash) {
            Some(StepAction::Return { step }) => return Ok(step.output.unwrap_or(Value::Null)),
            Some(_) => {
                let msg = format!("recorded value {key} has a different input");
                return Err(wasmtime::Error::msg(msg));
            }
            None => {}
        }
        let req = hidden_step(key, &hash);
        let outcome = StepOutcome::Completed(fresh);
        let step = self
            .checkpoint(req, outcome, Vec::new())
            .await
            .map_err(trap)?;
        Ok(step.output.unwrap_or(Value::Null))
    }

    /// A state, usage or log call: exactly once per run outside step code.
    async fn call(&mut self, call: HostCall) -> Result<Value, EngineError> {
        let in_step = self.in_step();
        self.calls.call(&self.engine, call, in_step).await
    }

    /// Record a step attempt and keep the cache current.
    async fn checkpoint(
        &mut self,
        req: StepBegin,
        outcome: StepOutcome,
        usage: Vec<NewUsage>,
    ) -> Result<Step, EngineError> {
        let step = self
            .engine
            .checkpoint_step(&self.run_id, &self.owner, req, outcome, usage)
            .await?;
        self.steps.insert(step.name.clone(), step.clone());
        Ok(step)
    }
}

fn hidden_step(key: &str, hash: &str) -> StepBegin {
    StepBegin {
        id: None,
        name: key.to_string(),
        input_hash: hash.to_string(),
        input: Value::Null,
        options: json!({"replay": "auto"}),
        lease_owner: None,
    }
}

/// Engine outcomes that end the activation become traps; the rest are
/// answered to the guest as `error`s by the caller.
fn trap(e: EngineError) -> wasmtime::Error {
    if e.is_cancelled() {
        return Interrupt::Cancelled.trap();
    }
    match e {
        EngineError::Conflict(body) if body["error"] == "run lease lost" => {
            Interrupt::LeaseLost.trap()
        }
        EngineError::Store(err) => wasmtime::Error::new(err),
        EngineError::Internal(err) => wasmtime::Error::from_anyhow(err),
        other => wasmtime::Error::msg(other.to_string()),
    }
}

fn guest_error(name: &str, message: impl Into<String>) -> GuestError {
    GuestError {
        name: name.into(),
        message: message.into(),
    }
}

fn parse(what: &str, text: &str) -> Result<Value, GuestError> {
    serde_json::from_str(text)
        .map_err(|e| guest_error("InvalidJson", format!("{what} is not valid JSON: {e}")))
}

fn options_json(o: &StepOptions) -> Result<Value, GuestError> {
    let mut m = serde_json::Map::new();
    if let Some(input) = &o.input {
        m.insert("input".into(), parse("step input", input)?);
    }
    if o.retries > 0 {
        m.insert("retries".into(), json!(o.retries));
    }
    if let Some(t) = o.timeout_ms {
        m.insert("timeoutMs".into(), json!(t));
    }
    if !o.side_effects.is_empty() {
        m.insert("sideEffects".into(), json!(o.side_effects));
    }
    if let Some(k) = &o.idempotency_key {
        m.insert("idempotencyKey".into(), json!(k));
    }
    if let Some(r) = o.replay {
        let r = match r {
            ReplayPolicy::Auto => "auto",
            ReplayPolicy::Manual => "manual",
            ReplayPolicy::Never => "never",
        };
        m.insert("replay".into(), json!(r));
    }
    for (key, v) in [
        ("checkpointInvariant", &o.checkpoint_invariant),
        ("verifiedBy", &o.verified_by),
        ("credentials", &o.credentials),
    ] {
        if let Some(v) = v {
            m.insert(key.into(), parse(key, v)?);
        }
    }
    Ok(Value::Object(m))
}

fn state_write(o: StateOptions) -> Result<StateWrite, GuestError> {
    Ok(StateWrite {
        stream: o.stream,
        label: o.label,
        reason: o.reason,
        importance: o.importance.map(|i| {
            match i {
                Importance::Transient => "transient",
                Importance::Normal => "normal",
                Importance::Checkpoint => "checkpoint",
                Importance::Milestone => "milestone",
            }
            .to_string()
        }),
        metadata: o
            .metadata
            .map(|m| parse("state metadata", &m))
            .transpose()?,
        created_by: o.created_by,
    })
}

/// A guest-visible error from an engine call that did not end the
/// activation. A refusal is a `HostError` prefixed with the import's name
/// (`call`); the engine's message names the field and its limit.
fn answer<T>(call: &str, r: Result<T, EngineError>) -> Wt<Result<T, GuestError>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_refusal() => Ok(Err(guest_error("HostError", format!("{call}: {e}")))),
        Err(e) => Err(trap(e)),
    }
}

/// A usage record from the guest's JSON object. Each field has the type
/// the protocol gives it, as over HTTP: one of another type is refused, not
/// dropped. The engine checks the values ([`NewUsage::check`]).
fn usage_json(text: &str) -> Result<NewUsage, GuestError> {
    let wrong = |key: &str, expected: &str| {
        let message = format!("usage-record: {key}: expected {expected}");
        guest_error("HostError", message)
    };
    let Value::Object(m) = parse("usage", text)? else {
        return Err(wrong("usage", "a JSON object"));
    };
    let s = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(key, "a string")),
    };
    let i = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => limits::json_int(n)
            .map(Some)
            .ok_or_else(|| wrong(key, "an integer")),
        Some(_) => Err(wrong(key, "an integer")),
    };
    let f = |key: &str| match m.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(wrong(key, "a number")),
    };
    let metadata = match m.get("metadata") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(wrong("metadata", "an object")),
    };
    Ok(NewUsage {
        step_id: s("stepId")?,
        kind: s("kind")?,
        provider: s("provider")?,
        model: s("model")?,
        label: s("label")?,
        quantity: f("quantity")?,
        unit: s("unit")?,
        input_tokens: i("inputTokens")?,
        output_tokens: i("outputTokens")?,
        total_tokens: i("totalTokens")?,
        cost_usd: f("costUsd")?,
        metadata,
    })
}

/// A recorded state version as the guest sees it.
fn version(v: Value) -> u32 {
    v.as_u64()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl types::Host for RunCtx {}

impl host::Host for RunCtx {
    async fn step_begin(
        &mut self,
        name: String,
        options: StepOptions,
    ) -> Wt<Result<StepStart, GuestError>> {
        self.live()?;
        let opts = match options_json(&options) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let input = opts.get("input").cloned().unwrap_or(Value::Null);
        let hash = options
            .input_hash
            .clone()
            .unwrap_or_else(|| crate::engine::input_hash(Some(&input)));
        let mut req = StepBegin {
            id: None,
            name: name.clone(),
            input_hash: hash.clone(),
            input,
            options: opts,
            lease_owner: None,
        };
        // Refused before the step's code runs, not at its checkpoint.
        if let Err(e) = check_guest_step_name(&name).and_then(|()| req.check()) {
            return answer("step-begin", Err(e));
        }
        match settled(self.steps.get(&name), &hash) {
            Some(StepAction::Return { step }) => {
                self.say(format!("step {name}: replayed from checkpoint"));
                Ok(Ok(StepStart::Replay(
                    step.output.unwrap_or(Value::Null).to_string(),
                )))
            }
            Some(StepAction::InputMismatch {
                expected, actual, ..
            }) => Ok(Err(guest_error(
                "InputMismatch",
                format!(
                    "step {name}: input changed since its checkpoint (expected hash {expected}, got {actual})"
                ),
            ))),
            Some(_) => Err(wasmtime::Error::msg(format!(
                "step {name}: unexpected begin outcome"
            ))),
            None => {
                self.say(format!("step {name}: executing"));
                // The attempt's id is the step row's id (existing or to be inserted).
                let existing = self.steps.get(&name).map(|s| s.id.clone());
                let id = existing.unwrap_or_else(|| crate::ids::new_id("step"));
                req.id = Some(id.clone());
                self.attempts.insert(id.clone(), (req, Vec::new()));
                Ok(Ok(StepStart::Execute(id)))
            }
        }
    }

    async fn step_complete(
        &mut self,
        step_id: String,
        output: String,
    ) -> Wt<Result<(), GuestError>> {
        self.check_size("step output", &output)?;
        let Some((req, usage)) = self.attempts.remove(&step_id) else {
            return Ok(Err(guest_error(
                "UnknownStep",
                format!("no step attempt {step_id} is in progress"),
            )));
        };
        let output = match parse("step output", &output) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let name = req.name.clone();
        let outcome = StepOutcome::Completed(output);
        let r = self.checkpoint(req, outcome, usage).await;
        let done = answer("step-complete", r.map(|_| ()))?;
        self.say(format!("step {name}: checkpointed"));
        Ok(done)
    }

    async fn step_fail(
        &mut self,
        step_id: String,
        err: GuestError,
        retryable: bool,
    ) -> Wt<Result<(), GuestError>> {
        let Some((req, usage)) = self.attempts.remove(&step_id) else {
            return Ok(Err(guest_error(
                "UnknownStep",
                format!("no step attempt {step_id} is in progress"),
            )));
        };
        let name = req.name.clone();
        let error = json!({"name": err.name, "message": err.message});
        let outcome = StepOutcome::Failed { error, retryable };
        let r = self.checkpoint(req, outcome, usage).await;
        let retry = if retryable { " (will retry)" } else { "" };
        self.say(format!("step {name}: failed: {}{retry}", err.message));
        answer("step-fail", r.map(|_| ()))
    }

    async fn gate(&mut self, request: GateRequest) -> Wt<Result<GateOutcome, GuestError>> {
        self.live()?;
        let data = match request
            .data
            .as_deref()
            .map(|d| parse("gate data", d))
            .transpose()
        {
            Ok(d) => d.unwrap_or(Value::Null),
            Err(e) => return Ok(Err(e)),
        };
        let capability = match request
            .capability
            .as_deref()
            .map(|c| parse("gate capability", c))
            .transpose()
        {
            Ok(c) => c.unwrap_or(Value::Null),
            Err(e) => return Ok(Err(e)),
        };
        let req = GateBegin {
            name: request.name.clone(),
            prompt: request.prompt,
            data,
            channels: json!([]),
            capability,
            // Out of range either way: the engine names the allowed range.
            timeout_ms: request
                .timeout_ms
                .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
        };
        let gate = match answer("gate", self.engine.begin_gate(&self.run_id, req).await)? {
            Ok(gate) => gate,
            Err(e) => return Ok(Err(e)),
        };
        if gate.status == TIMED_OUT {
            self.say(format!("gate {}: timed out", gate.name));
            return Ok(Err(guest_error(
                "TimeoutError",
                format!("gate {} timed out", gate.name),
            )));
        }
        if gate.is_pending() {
            // Parked until the deadline at the latest; the next activation
            // finds the gate decided or records its timeout.
            let deadline = gate.deadline();
            self.say(format!(
                "gate {}: waiting for a decision (resolve token {}, gate id {})",
                gate.name, gate.resolve_token, gate.id
            ));
            let reason = format!("gate {}", gate.name);
            return Err(Interrupt::Suspend {
                until: deadline.unwrap_or(Micros::MAX),
                reason,
            }
            .trap());
        }
        let decision = match gate.status.as_str() {
            "approved" => Decision::Approved,
            "rejected" => Decision::Rejected,
            _ => Decision::Canceled,
        };
        self.say(format!("gate {}: {}", gate.name, gate.status));
        Ok(Ok(GateOutcome {
            gate_id: gate.id,
            decision,
            actor: gate.actor,
            payload: gate
                .decision_payload
                .unwrap_or_else(|| json!({}))
                .to_string(),
        }))
    }

    async fn state_get(&mut self) -> Wt<Option<String>> {
        self.live()?;
        let state = self.call(HostCall::StateGet).await.map_err(trap)?;
        Ok((!state.is_null()).then(|| state.to_string()))
    }

    async fn state_set(
        &mut self,
        value: String,
        options: StateOptions,
    ) -> Wt<Result<u32, GuestError>> {
        self.write_state(WriteMode::Replace, value, options).await
    }

    async fn state_patch(
        &mut self,
        value: String,
        options: StateOptions,
    ) -> Wt<Result<u32, GuestError>> {
        self.write_state(WriteMode::Merge, value, options).await
    }

    async fn state_save(
        &mut self,
        label: String,
        options: StateOptions,
    ) -> Wt<Result<u32, GuestError>> {
        self.live()?;
        let meta = match state_write(options) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let r = self.call(HostCall::StateSave { label, meta }).await;
        Ok(answer("state-save", r)?.map(version))
    }

    async fn usage_record(&mut self, usage: String) -> Wt<Result<(), GuestError>> {
        self.live()?;
        let req = match usage_json(&usage) {
            Ok(req) => req,
            Err(e) => return Ok(Err(e)),
        };
        // Refused here, not at the step's checkpoint: one bad record must
        // not fail the whole step attempt.
        if let Err(e) = req.check() {
            return answer("usage-record", Err(e));
        }
        if let Some((_, pending)) = req
            .step_id
            .as_ref()
            .and_then(|id| self.attempts.get_mut(id))
        {
            pending.push(req);
            return Ok(Ok(()));
        }
        let r = self.call(HostCall::Usage(req)).await;
        Ok(answer("usage-record", r)?.map(|_| ()))
    }

    async fn child(
        &mut self,
        edge: String,
        workflow: String,
        input: String,
    ) -> Wt<Result<String, GuestError>> {
        self.live()?;
        let input = match parse("child input", &input) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let req = NewChild {
            edge_name: edge.clone(),
            run: NewRun::named(workflow, input),
            edge_type: "child".into(),
            edge_metadata: json!({}),
        };
        let created = self.engine.create_child(&self.run_id, req).await;
        let (child, _, created) = match answer("child", created)? {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        match child.status {
            RunStatus::Completed => {
                self.say(format!("child {edge}: completed ({})", child.id));
                Ok(Ok(child.result.unwrap_or(Value::Null).to_string()))
            }
            RunStatus::Failed => Ok(Err(guest_error(
                "ChildFailed",
                format!(
                    "child run {} failed: {}",
                    child.id,
                    child.error.unwrap_or(Value::Null)
                ),
            ))),
            RunStatus::Cancelled => Ok(Err(guest_error(
                "ChildCancelled",
                format!("child run {} was cancelled", child.id),
            ))),
            _ => {
                if created {
                    self.say(format!(
                        "child {edge}: started {} ({})",
                        child.workflow_name, child.id
                    ));
                    if child.component_digest.is_none() {
                        self.say(format!(
                            "child {edge}: workflow {:?} is not deployed; it waits for a deploy or an SDK worker",
                            child.workflow_name
                        ));
                    }
                }
                let reason = format!("child {edge}");
                Err(Interrupt::Suspend {
                    until: Micros::MAX,
                    reason,
                }
                .trap())
            }
        }
    }

    async fn sleep(&mut self, duration_ms: u64) -> Wt<()> {
        self.live()?;
        if self.in_step() {
            // Suspending would abandon the step attempt: wait in place,
            // in slices, so a cancellation ends even a sleep of years.
            let end = Instant::now().checked_add(Duration::from_millis(duration_ms));
            loop {
                let left = end.map_or(SLEEP_SLICE, |e| e.saturating_duration_since(Instant::now()));
                if left.is_zero() {
                    return Ok(());
                }
                tokio::time::sleep(left.min(SLEEP_SLICE)).await;
                self.live()?;
            }
        }
        let now = self.engine.now();
        let micros = i64::try_from(duration_ms).map_or(i64::MAX, |ms| ms.saturating_mul(1000));
        let wake_at = now.saturating_add(micros);
        let key = self.calls.next_key("sleep");
        let recorded = self.record_value(&key, json!({"wakeAt": wake_at})).await?;
        let due = recorded["wakeAt"].as_i64().unwrap_or(now);
        if self.engine.now() >= due {
            return Ok(());
        }
        self.say(format!("{key}: sleeping until {}", crate::clock::iso(due)));
        Err(Interrupt::Suspend {
            until: due,
            reason: key,
        }
        .trap())
    }

    async fn log(&mut self, level: LogLevel, message: String) -> Wt<()> {
        // Kept as given, NUL included: the line is stored inside the `log`
        // event's JSON payload, where it is escaped, not in a text column.
        self.check_size("log line", &message)?;
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.say(format!("log {level}: {message}"));
        let call = HostCall::Log {
            level: level.into(),
            message,
        };
        self.call(call).await.map(|_| ()).map_err(trap)
    }

    async fn now(&mut self) -> Wt<u64> {
        self.live()?;
        let fresh = (self.engine.now() / 1000).max(0);
        let v = self.recorded("now", json!(fresh)).await?;
        Ok(v.as_u64().unwrap_or(0))
    }

    async fn random(&mut self) -> Wt<u64> {
        self.live()?;
        let fresh: u64 = rand::random();
        // Recorded as a string: JSON numbers above 2^53 lose precision.
        let v = self.recorded("random", json!(fresh.to_string())).await?;
        Ok(v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
    }
}

impl RunCtx {
    async fn write_state(
        &mut self,
        mode: WriteMode,
        value: String,
        options: StateOptions,
    ) -> Wt<Result<u32, GuestError>> {
        self.live()?;
        self.check_size("state value", &value)?;
        let (value, meta) = match (parse("state value", &value), state_write(options)) {
            (Ok(v), Ok(m)) => (v, m),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let call = match mode {
            WriteMode::Replace => "state-set",
            WriteMode::Merge => "state-patch",
        };
        let r = self.call(HostCall::StateWrite { mode, value, meta }).await;
        Ok(answer(call, r)?.map(version))
    }
}

impl WasiView for RunCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
