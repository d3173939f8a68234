//! Write Tidebase durable workflows in Rust and compile them
//! to WebAssembly components (`wasm32-wasip2`) that the Tidebase host runs.
//!
//! A workflow is a function `fn(&Run, Input) -> Result<Output, Error>` where the
//! input and output are serde types. Inside it, [`Run`] offers the durable
//! operations of the Tidebase protocol, mirroring the Python SDK's `RunContext`:
//!
//! - [`Run::step`] / [`Run::step_with`]: checkpointed units of work. A completed
//!   step is never executed again: on resume it returns its recorded output.
//!   Code between steps re-executes, so keep it deterministic and cheap.
//! - [`Run::gate`] / [`Run::gate_with`]: wait for a human decision.
//! - [`Run::state`]: the run's live state (get, set, patch, save).
//! - [`Run::usage`]: the run's usage ledger (tokens, cost, other resources).
//! - [`Run::child`]: run a child workflow and wait for its result.
//! - [`Run::sleep`], [`Run::now`], [`Run::random`]: durable time and randomness,
//!   recorded on first execution and replayed on resume.
//! - [`Run::log`] and friends: the run's log.
//! - [`http`]: HTTP requests inside steps, through the host's egress broker,
//!   which holds the credentials (the workflow never sees them).
//!
//! Waiting operations (gates, children, sleeps) suspend the whole run on the
//! host; the guest simply sees the call return once the wait is over.
//!
//! [`workflow!`] exports the function as the component's `run` entry point.
//!
//! # Example
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tidebase_guest::{Error, Run, StepOptions, Usage};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     customer: String,
//!     amount: u64,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     refunded: bool,
//!     receipt: Option<String>,
//! }
//!
//! fn refund(run: &Run, input: Input) -> Result<Output, Error> {
//!     // A read-only step: safe to replay, retried up to twice.
//!     let balance: u64 = run.step_with(
//!         "load-balance",
//!         StepOptions::new().input(&input.customer).side_effects(["read"]).retries(2),
//!         || Ok::<_, Error>(1_000),
//!     )?;
//!     if balance < input.amount {
//!         return Err(Error::new("InsufficientFunds", "balance too low"));
//!     }
//!
//!     run.state().set(&serde_json::json!({"phase": "awaiting approval"}))?;
//!     let decision = run.gate("approve-refund", &format!("Refund {}?", input.amount))?;
//!     if !decision.approved() {
//!         return Ok(Output { refunded: false, receipt: None });
//!     }
//!
//!     // An external write, keyed so that a retry cannot pay twice.
//!     let key = format!("refund:{}:{}", input.customer, input.amount);
//!     let receipt: String = run.step_with(
//!         "pay",
//!         StepOptions::new()
//!             .input(&input.amount)
//!             .side_effects(["payments.refund"])
//!             .idempotency_key(&key),
//!         || Ok::<_, Error>(format!("rcpt-{}", run.random() % 10_000)),
//!     )?;
//!     run.usage().record(Usage {
//!         kind: Some("api".into()),
//!         provider: Some("payments".into()),
//!         quantity: Some(1.0),
//!         unit: Some("call".into()),
//!         ..Usage::default()
//!     })?;
//!     run.info(format!("refunded {} to {}", input.amount, input.customer));
//!     Ok(Output { refunded: true, receipt: Some(receipt) })
//! }
//!
//! tidebase_guest::workflow!(refund);
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2`; the
//! resulting `.wasm` file is a component the host can deploy.
//!
//! # Replay and determinism
//!
//! A resumed run re-executes the workflow function from the top. Everything that
//! must not happen twice belongs in a step; everything that must come out the same
//! way (clock, randomness, decisions) must come from the host ([`Run::now`],
//! [`Run::random`], gates, step outputs), never from `std::time` or a local RNG.
//! Step names identify checkpoints, so they must be unique within a run and must
//! not depend on nondeterministic data.
//!
//! # Input limits
//!
//! The host checks what a workflow hands it by the same rules as the HTTP API
//! (the server's `docs/compatibility.md`, "Input limits"). Names (steps,
//! gates, state streams, child edges, workflows) are 1 to 256 characters; no
//! name or other stored text (prompt, label, reason, usage strings) may hold
//! a NUL character; token counts lie between 0 and 2^53 − 1 and a cost is not
//! negative. A call that breaks a rule fails with a `HostError` naming the
//! call, the field and the limit (`step-begin: name: String must contain at
//! most 256 character(s)`), and nothing is recorded; the workflow decides
//! whether that fails the run. Step names starting with `__` are reserved for
//! the values the host records (`__now:1`, …). Log lines are kept as given.
//!
//! # Exactly-once host calls
//!
//! The host records the state, usage and log calls a workflow makes outside
//! steps ([`Run::state`], [`Run::usage`], [`Run::log`]), numbered by their
//! position among such calls. When the run is re-activated (after a gate, a
//! child or a sleep, after a crash, after a takeover) and executes from the
//! top again, each of these calls returns its recorded answer instead of
//! being made again: a run that waits at three gates records the usage and
//! state writes made before the first gate once, not four times, and
//! [`State::get`] returns what it returned the first time. The numbering
//! relies on determinism, as steps do: every execution must make the same
//! outside-step calls in the same order.
//!
//! Inside step code the calls are made as they come, because the step's
//! checkpoint covers them: a completed step never runs again. An attempt that
//! does not complete (it fails and is retried, the process dies, or it waits
//! on a gate or child inside the step) runs again, calls included. Usage
//! attributed to the running step ([`Usage::step_id`]) is recorded with the
//! attempt's checkpoint.
//!
//! Lines written to stdout or stderr are kept per activation, so a
//! re-executed `println!` appears again; use [`Run::log`] for lines that
//! should appear once.
//!
//! A gate timeout ([`GateOptions::timeout`]) is a decision the host records:
//! once it passes, the gate is `timed_out`, [`Run::gate_with`] fails with
//! `TimeoutError` in this and every later execution of the run, and a late
//! approval is refused.
//!
//! Runs driven over HTTP by the Python or TypeScript SDKs keep Tidebase v0.5
//! semantics: their state, usage and log calls are plain writes (a workflow
//! that runs again writes again) and a gate timeout is the client's own (the
//! gate stays pending on the server).
//!
//! # Native builds
//!
//! The crate also compiles for native targets, so that a workspace holding
//! workflows builds and tests there; calling a host operation outside a
//! component panics.

#![warn(missing_docs)]

mod error;
mod host;
pub mod http;
mod options;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::tidebase::workflow::types as wit;
use crate::host::{Host, Imports};

pub use crate::error::Error;
pub use crate::options::{GateOptions, Importance, Replay, StateOptions, StepOptions};
pub use tidebase_stable_json::{input_hash, stable_json};

#[doc(hidden)]
pub mod bindings {
    //! Bindings generated from `wit/workflow.wit`.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        path: "../wit",
        world: "tidebase:workflow/workflow",
        pub_export_macro: true,
        export_macro_name: "__export_workflow",
    });
}

/// The context of one workflow execution, passed to the workflow function by
/// [`workflow!`]. It is the Rust counterpart of the Python SDK's `RunContext`.
pub struct Run {
    host: Rc<dyn Host>,
    /// Id of the step attempt whose code is running, if any.
    current_step: RefCell<Option<String>>,
}

impl Run {
    fn new(host: Rc<dyn Host>) -> Self {
        Run {
            host,
            current_step: RefCell::new(None),
        }
    }

    /// Runs `f` as the checkpointed step `name`, with default options (no input,
    /// no retries). See [`Run::step_with`].
    pub fn step<T, E, F>(&self, name: &str, f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnMut() -> Result<T, E>,
    {
        self.step_with(name, StepOptions::new(), f)
    }

    /// Runs `f` as the checkpointed step `name`.
    ///
    /// If the step completed on an earlier execution of the run, `f` is not called
    /// and its recorded output is deserialized and returned. Otherwise `f` runs
    /// and its output is recorded; when it fails, it is attempted again up to
    /// `options.retries` more times, each attempt beginning the step afresh. Every
    /// failed attempt is reported to the host, as retryable unless it was the last.
    ///
    /// Errors from the host (input mismatch on replay, a step locked by another
    /// worker, a cancelled run) are returned without calling `f`.
    pub fn step_with<T, E, F>(&self, name: &str, options: StepOptions, mut f: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned,
        E: Into<Error>,
        F: FnMut() -> Result<T, E>,
    {
        let wit_options = options.to_wit()?;
        let attempts = options.attempts();
        let mut attempt = 1;
        loop {
            let step_id = match self.host.step_begin(name, &wit_options)? {
                wit::StepStart::Replay(output) => {
                    return serde_json::from_str(&output).map_err(|e| {
                        Error::new(
                            "ReplayError",
                            format!("recorded output of step {name:?} does not fit: {e}"),
                        )
                    });
                }
                wit::StepStart::Execute(step_id) => step_id,
            };
            let failure = match self.execute(&step_id, &mut f) {
                Ok((value, json)) => match self.host.step_complete(&step_id, &json) {
                    Ok(()) => return Ok(value),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let retryable = attempt < attempts;
            // Like the Python SDK, a failure to record the failure is not fatal:
            // the attempt's own error is the one worth reporting.
            let _ = self.host.step_fail(&step_id, &failure, retryable);
            if !retryable {
                return Err(failure);
            }
            attempt += 1;
        }
    }

    /// Calls the step code with `step_id` as the current step and serializes its output.
    fn execute<T, E, F>(&self, step_id: &str, f: &mut F) -> Result<(T, String), Error>
    where
        T: Serialize,
        E: Into<Error>,
        F: FnMut() -> Result<T, E>,
    {
        let outer = self.current_step.replace(Some(step_id.to_owned()));
        let result = f();
        *self.current_step.borrow_mut() = outer;
        let value = result.map_err(Into::into)?;
        let json = serde_json::to_string(&value)?;
        Ok((value, json))
    }

    /// The id of the step attempt whose code is running, e.g. to attribute usage
    /// records with [`Usage::step_id`]. `None` outside step code.
    pub fn current_step_id(&self) -> Option<String> {
        self.current_step.borrow().clone()
    }

    /// Waits for a human decision on the gate `name`. See [`Run::gate_with`].
    pub fn gate(&self, name: &str, prompt: &str) -> Result<GateDecision, Error> {
        self.gate_with(name, prompt, GateOptions::new())
    }

    /// Begins the gate `name` (idempotent: a resumed run gets the same gate, and
    /// its recorded decision if it was already decided) and waits for its decision.
    /// The run is suspended on the host while the gate is pending. Fails with a
    /// `TimeoutError` when the options' timeout passes first: the host records the
    /// gate as `timed_out`, so every later execution of the run gets the same
    /// error and a late approval is refused. A timeout the host cannot represent
    /// (over 100 years) fails with a `HostError` naming `timeoutMs`.
    pub fn gate_with(
        &self,
        name: &str,
        prompt: &str,
        options: GateOptions,
    ) -> Result<GateDecision, Error> {
        let outcome = self.host.gate(&options.to_wit(name, prompt)?)?;
        Ok(GateDecision {
            gate_id: outcome.gate_id,
            name: name.to_owned(),
            decision: outcome.decision.into(),
            actor: outcome.actor,
            payload: parse_json(&outcome.payload, "gate payload")?,
        })
    }

    /// The run's live state.
    pub fn state(&self) -> State<'_> {
        State { run: self }
    }

    /// The run's usage ledger.
    pub fn usage(&self) -> UsageLedger<'_> {
        UsageLedger { run: self }
    }

    /// Runs the deployed workflow `workflow` as a child of this run and returns
    /// its result. The child is identified by the edge name `edge`, so a resumed
    /// parent gets the same child (and its result, once finished) again. The parent
    /// is suspended on the host until the child finishes; a failed child fails
    /// this call.
    pub fn child<T, I>(&self, edge: &str, workflow: &str, input: &I) -> Result<T, Error>
    where
        T: DeserializeOwned,
        I: Serialize + ?Sized,
    {
        let input = serde_json::to_string(input)?;
        let result = self.host.child(edge, workflow, &input)?;
        serde_json::from_str(&result).map_err(|e| {
            Error::new(
                "ChildResultError",
                format!("result of child {edge:?} does not fit: {e}"),
            )
        })
    }

    /// Durable sleep: the run is suspended on the host and resumed after
    /// `duration` (millisecond precision). A resumed run does not sleep again.
    /// A duration beyond what the host can represent sleeps forever (until
    /// the run is cancelled). Inside step code the run cannot be suspended
    /// without abandoning the attempt, so the call waits in place, holding
    /// its worker, until the duration passes or the run is cancelled.
    pub fn sleep(&self, duration: Duration) {
        self.host
            .sleep(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    }

    /// Milliseconds since the Unix epoch, recorded on first execution and replayed
    /// on resume. Use it instead of `std::time::SystemTime`.
    pub fn now(&self) -> u64 {
        self.host.now()
    }

    /// A random number, recorded on first execution and replayed on resume.
    pub fn random(&self) -> u64 {
        self.host.random()
    }

    /// Writes `message` to the run's log at `level`.
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        self.host.log(level.into(), message.as_ref());
    }

    /// Logs at [`LogLevel::Debug`].
    pub fn debug(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Debug, message);
    }

    /// Logs at [`LogLevel::Info`].
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at [`LogLevel::Warn`].
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Warn, message);
    }

    /// Logs at [`LogLevel::Error`].
    pub fn error(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Error, message);
    }
}

fn parse_json(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::new("ProtocolError", format!("{what} is not JSON: {e}")))
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// Very fine-grained tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected but recoverable.
    Warn,
    /// A failure.
    Error,
}

impl From<LogLevel> for wit::LogLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => wit::LogLevel::Trace,
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Error => wit::LogLevel::Error,
        }
    }
}

/// A gate's final decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request was approved.
    Approved,
    /// The request was rejected.
    Rejected,
    /// The request was withdrawn.
    Canceled,
}

impl From<wit::Decision> for Decision {
    fn from(decision: wit::Decision) -> Self {
        match decision {
            wit::Decision::Approved => Decision::Approved,
            wit::Decision::Rejected => Decision::Rejected,
            wit::Decision::Canceled => Decision::Canceled,
        }
    }
}

/// The outcome of [`Run::gate`], like the Python SDK's `GateDecision`.
#[derive(Clone, Debug, PartialEq)]
pub struct GateDecision {
    /// Server-assigned gate id.
    pub gate_id: String,
    /// The gate's name.
    pub name: String,
    /// The decision.
    pub decision: Decision,
    /// Who decided, when known.
    pub actor: Option<String>,
    /// Payload attached to the decision (`{}` when none).
    pub payload: Value,
}

impl GateDecision {
    /// Whether the gate was approved.
    pub fn approved(&self) -> bool {
        self.decision == Decision::Approved
    }

    /// The decision payload as a typed value.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(T::deserialize(&self.payload)?)
    }
}

/// The run's live state, from [`Run::state`].
///
/// Writes are recorded as versions in a stream (default `run`); the live value
/// survives resumes, which makes it a good place for progress that a UI shows.
pub struct State<'a> {
    run: &'a Run,
}

impl State<'_> {
    /// The live state, or `None` before the first write.
    pub fn get<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        match self.run.host.state_get() {
            None => Ok(None),
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
        }
    }

    /// Replaces the live state; returns the new state version.
    pub fn set<T: Serialize + ?Sized>(&self, value: &T) -> Result<u32, Error> {
        self.set_with(value, StateOptions::new())
    }

    /// Replaces the live state with options; returns the new state version.
    pub fn set_with<T: Serialize + ?Sized>(
        &self,
        value: &T,
        options: StateOptions,
    ) -> Result<u32, Error> {
        let value = serde_json::to_string(value)?;
        self.run.host.state_set(&value, &options.to_wit()?)
    }

    /// Merges `value` into the live state (a shallow object merge; arrays are
    /// concatenated); returns the new state version.
    pub fn patch<T: Serialize + ?Sized>(&self, value: &T) -> Result<u32, Error> {
        self.patch_with(value, StateOptions::new())
    }

    /// [`State::patch`] with options.
    pub fn patch_with<T: Serialize + ?Sized>(
        &self,
        value: &T,
        options: StateOptions,
    ) -> Result<u32, Error> {
        let value = serde_json::to_string(value)?;
        self.run.host.state_patch(&value, &options.to_wit()?)
    }

    /// Records the current live state as a labeled version (a snapshot); returns
    /// the version number. Fails when the run has no state yet.
    pub fn save(&self, label: &str) -> Result<u32, Error> {
        self.save_with(label, StateOptions::new())
    }

    /// [`State::save`] with options.
    pub fn save_with(&self, label: &str, options: StateOptions) -> Result<u32, Error> {
        self.run.host.state_save(label, &options.to_wit()?)
    }
}

/// The run's usage ledger, from [`Run::usage`].
pub struct UsageLedger<'a> {
    run: &'a Run,
}

impl UsageLedger<'_> {
    /// Appends one usage record. The host fills in `totalTokens` from the input
    /// and output tokens when it is missing.
    pub fn record(&self, usage: Usage) -> Result<(), Error> {
        let json = serde_json::to_string(&usage)?;
        self.run.host.usage_record(&json)
    }
}

/// One usage record: model tokens, cost, or any other metered resource. Unset
/// fields are left out, as the Python SDK does.
///
/// ```
/// use tidebase_guest::Usage;
///
/// let usage = Usage {
///     kind: Some("llm".into()),
///     provider: Some("example-ai".into()),
///     model: Some("small-1".into()),
///     input_tokens: Some(1200),
///     output_tokens: Some(300),
///     cost_usd: Some(0.0042),
///     ..Usage::default()
/// };
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Kind of resource, e.g. `llm`, `api`, `compute` (server default `custom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Who provided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model name, for model calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Free-form label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Amount of a non-token resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    /// Unit of `quantity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Input (prompt) tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Total tokens; computed by the host when omitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Cost in US dollars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Step the usage belongs to (see [`Run::current_step_id`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
}

/// Exports a workflow function as the component's `run` entry point.
///
/// The function must have the shape `fn(&Run, In) -> Result<Out, E>` where `In`
/// is `serde::de::DeserializeOwned`, `Out` is `serde::Serialize` and `E` converts
/// into [`Error`]. The macro parses the run input as JSON into `In`, and turns
/// the output into JSON and the error into the WIT error that fails the run.
/// Use it once per crate (a component has one workflow).
///
/// ```
/// fn hello(_run: &tidebase_guest::Run, name: String) -> Result<String, tidebase_guest::Error> {
///     Ok(format!("hello, {name}"))
/// }
///
/// tidebase_guest::workflow!(hello);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! workflow {
    ($workflow:path) => {
        const _: () = {
            struct TidebaseWorkflow;

            impl $crate::__private::Guest for TidebaseWorkflow {
                fn run(
                    input: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, $crate::__private::WitError>
                {
                    $crate::__private::run_workflow(&input, $workflow)
                }
            }

    $crate::bindings::__export_workflow!(TidebaseWorkflow with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    //! Support for [`workflow!`](crate::workflow); not a public API.

    use std::rc::Rc;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    pub use crate::bindings::Guest;
    pub use crate::bindings::tidebase::workflow::types::Error as WitError;
    use crate::{Error, Imports, Run};

    /// Decodes the input, runs the workflow against the component's imports and
    /// encodes its outcome.
    pub fn run_workflow<In, Out, E, F>(input: &str, workflow: F) -> Result<String, WitError>
    where
        In: DeserializeOwned,
        Out: Serialize,
        E: Into<Error>,
        F: FnOnce(&Run, In) -> Result<Out, E>,
    {
        run_with(Rc::new(Imports), input, workflow).map_err(Into::into)
    }

    pub(crate) fn run_with<In, Out, E, F>(
        host: Rc<dyn crate::Host>,
        input: &str,
        workflow: F,
    ) -> Result<String, Error>
    where
        In: DeserializeOwned,
        Out: Serialize,
        E: Into<Error>,
        F: FnOnce(&Run, In) -> Result<Out, E>,
    {
        // An absent input is `null`, so `Option` and unit inputs accept it.
        let input = if input.trim().is_empty() {
            "null"
        } else {
            input
        };
        let input: In = serde_json::from_str(input)
            .map_err(|e| Error::new("InputError", format!("workflow input does not fit: {e}")))?;
        let run = Run::new(host);
        let output = workflow(&run, input).map_err(Into::into)?;
        Ok(serde_json::to_string(&output)?)
    }
}

#[cfg(test)]
mod tests;
