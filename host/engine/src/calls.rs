//! Exactly-once host calls of wasm runs.
//!
//! A wasm run executes its workflow from the top on every activation: after
//! a gate, sleep or child wait, after a crash, after a takeover. Steps replay
//! from their checkpoints. The calls made outside step code that read or
//! change the run (live state reads and writes, usage records, log lines)
//! are numbered per kind by their position in the run's sequence of
//! outside-step calls, which a deterministic workflow repeats on every
//! activation. The first execution applies a call and records its answer
//! under its number in the same transaction, fenced by the run lease; later
//! activations get the recorded answer and write nothing.
//!
//! Calls inside step code are not numbered: the step's checkpoint covers
//! them (a completed step never runs again), and numbering them would shift
//! every later number once the step replays. They are applied as they come,
//! fenced by the run lease.

use super::write::Write;
use super::{Engine, EngineError, NewUsage, Result, StateWrite, WriteMode};
use crate::clock::Micros;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A host call that reads or changes a wasm run.
#[derive(Clone, Debug)]
pub enum HostCall {
    /// The live state (`null` before the first write).
    StateGet,
    /// Answers the new state version.
    StateWrite {
        mode: WriteMode,
        value: Value,
        meta: StateWrite,
    },
    /// Answers the saved version.
    StateSave {
        label: String,
        meta: StateWrite,
    },
    /// Answers the usage record's id.
    Usage(NewUsage),
    Log {
        level: String,
        message: String,
    },
}

impl HostCall {
    /// The sequence the call is numbered in.
    fn kind(&self) -> &'static str {
        match self {
            HostCall::StateGet | HostCall::StateWrite { .. } | HostCall::StateSave { .. } => {
                "state"
            }
            HostCall::Usage(_) => "usage",
            HostCall::Log { .. } => "log",
        }
    }
}

/// Starts the names of the hidden steps that record a wasm run's `now`,
/// `random` and `sleep` values (`__<kind>:<n>`).
const HIDDEN_PREFIX: &str = "__";

/// Refuse a wasm guest's step name that starts like a hidden step's: the
/// guest's checkpoint would be replayed as a recorded value, or the other
/// way round.
pub fn check_guest_step_name(name: &str) -> Result<()> {
    if name.starts_with(HIDDEN_PREFIX) {
        return Err(EngineError::BadRequest(format!(
            "name: step names starting with {HIDDEN_PREFIX:?} are reserved for the values the host records"
        )));
    }
    Ok(())
}

/// One activation's place in its run's sequences of outside-step calls,
/// with the answers earlier activations recorded.
pub struct CallLog {
    run_id: String,
    owner: String,
    numbers: HashMap<&'static str, u32>,
    answers: HashMap<String, Value>,
}

impl CallLog {
    /// A log with the `answers` recorded so far, by call key.
    pub fn new(run_id: &str, owner: &str, answers: Vec<(String, Value)>) -> CallLog {
        CallLog {
            run_id: run_id.to_string(),
            owner: owner.to_string(),
            numbers: HashMap::new(),
            answers: answers.into_iter().collect(),
        }
    }

    /// The key of the next outside-step call of `kind`: `__<kind>:<n>`.
    /// (`now`, `random` and `sleep` are numbered here too; their values are
    /// recorded as hidden steps of that name.)
    pub fn next_key(&mut self, kind: &'static str) -> String {
        let n = self.numbers.entry(kind).or_insert(0);
        *n += 1;
        format!("{HIDDEN_PREFIX}{kind}:{n}")
    }

    /// Perform `call` for the activation: exactly once per run outside step
    /// code (`in_step` false), as it comes inside.
    pub async fn call(&mut self, engine: &Engine, call: HostCall, in_step: bool) -> Result<Value> {
        if in_step {
            return match call {
                HostCall::StateGet => Ok(engine
                    .live_state(&self.run_id)
                    .await?
                    .map_or(Value::Null, |s| s.value)),
                call => engine.apply_call(&self.run_id, &self.owner, call).await,
            };
        }
        let key = self.next_key(call.kind());
        let answer = match self.answers.get(&key) {
            Some(recorded) => recorded.clone(),
            None => {
                let answer = engine
                    .record_call(&self.run_id, &self.owner, &key, call)
                    .await?;
                self.answers.insert(key, answer.clone());
                answer
            }
        };
        match answer {
            Value::Object(mut a) => match a.remove("error") {
                Some(Value::String(message)) => Err(EngineError::BadRequest(message)),
                _ => Ok(a.remove("ok").unwrap_or(Value::Null)),
            },
            _ => Ok(Value::Null),
        }
    }
}

impl Engine {
    /// The call log of an activation of `run_id` under `owner`'s lease.
    pub async fn call_log(&self, run_id: &str, owner: &str) -> Result<CallLog> {
        let answers = self.read().await?.host_calls(run_id).await?;
        Ok(CallLog::new(run_id, owner, answers))
    }

    /// Apply a call made inside step code, fenced by the run lease.
    async fn apply_call(&self, run_id: &str, owner: &str, call: HostCall) -> Result<Value> {
        let now = self.now();
        let mut w = self.write().await?;
        self.fence_run(&mut w, run_id, owner).await?;
        let answer = self.apply(&mut w, run_id, call, now).await?;
        self.commit(w).await?;
        Ok(answer)
    }

    /// Apply an outside-step call and record its answer under `key` in the
    /// same commit, fenced by the run lease. A refused call (e.g. saving a
    /// state that does not exist yet) is recorded as refused, so a replay
    /// takes the same branch. Returns the record: `{"ok": answer}` or
    /// `{"error": message}`.
    async fn record_call(
        &self,
        run_id: &str,
        owner: &str,
        key: &str,
        call: HostCall,
    ) -> Result<Value> {
        let now = self.now();
        let mut w = self.write().await?;
        self.fence_run(&mut w, run_id, owner).await?;
        let answer = match self.apply(&mut w, run_id, call, now).await {
            Ok(v) => json!({"ok": v}),
            Err(e) if e.is_refusal() => {
                // Keep the record of the refusal, not what the call wrote.
                drop(w);
                w = self.write().await?;
                self.fence_run(&mut w, run_id, owner).await?;
                json!({"error": e.to_string()})
            }
            Err(e) => return Err(e),
        };
        w.tx.insert_host_call(run_id, key, &answer, now).await?;
        self.commit(w).await?;
        Ok(answer)
    }

    async fn apply(
        &self,
        w: &mut Write,
        run_id: &str,
        call: HostCall,
        now: Micros,
    ) -> Result<Value> {
        Ok(match call {
            HostCall::StateGet => {
                let state = w.tx.live_state(run_id, false).await?;
                state.map_or(Value::Null, |s| s.value)
            }
            HostCall::StateWrite { mode, value, meta } => {
                let state = self
                    .put_state(w, run_id, mode, Some(value), meta, now)
                    .await?;
                json!(state.version)
            }
            HostCall::StateSave { label, meta } => {
                json!(self.put_saved(w, run_id, label, meta, now).await?.version)
            }
            HostCall::Usage(req) => json!(self.put_usage(w, run_id, req, now).await?.id),
            HostCall::Log { level, message } => {
                self.put_log(w, run_id, &level, &message, now).await?;
                Value::Null
            }
        })
    }
}
