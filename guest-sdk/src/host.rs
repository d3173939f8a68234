//! The seam between the SDK and the host imports.
//!
//! [`Run`](crate::Run) talks to the host through this trait rather than calling
//! the generated imports directly, so that the SDK's logic (retry loop, replay,
//! option building) can be unit-tested natively against a fake host.

use crate::bindings::tidebase::workflow::host as imports;
use crate::bindings::tidebase::workflow::types::{
    Error as WitError, GateOutcome, GateRequest, LogLevel, StateOptions, StepOptions, StepStart,
};
use crate::error::Error;

/// Converts the WIT error field by field. (`From` would not do: the generated
/// type implements `std::error::Error`, so `?` would go through the SDK's blanket
/// conversion and lose the name.)
fn lift<T>(result: Result<T, WitError>) -> Result<T, Error> {
    result.map_err(|e| Error::new(e.name, e.message))
}

/// The host operations, with errors already in the SDK's type.
pub(crate) trait Host {
    fn step_begin(&self, name: &str, options: &StepOptions) -> Result<StepStart, Error>;
    fn step_complete(&self, step_id: &str, output: &str) -> Result<(), Error>;
    fn step_fail(&self, step_id: &str, err: &Error, retryable: bool) -> Result<(), Error>;
    fn gate(&self, request: &GateRequest) -> Result<GateOutcome, Error>;
    fn state_get(&self) -> Option<String>;
    fn state_set(&self, value: &str, options: &StateOptions) -> Result<u32, Error>;
    fn state_patch(&self, value: &str, options: &StateOptions) -> Result<u32, Error>;
    fn state_save(&self, label: &str, options: &StateOptions) -> Result<u32, Error>;
    fn usage_record(&self, usage: &str) -> Result<(), Error>;
    fn child(&self, edge: &str, workflow: &str, input: &str) -> Result<String, Error>;
    fn sleep(&self, duration_ms: u64);
    fn log(&self, level: LogLevel, message: &str);
    fn now(&self) -> u64;
    fn random(&self) -> u64;
}

/// The real host: the component's imports. Only usable inside a component; on a
/// native target the generated imports panic when called.
pub(crate) struct Imports;

impl Host for Imports {
    fn step_begin(&self, name: &str, options: &StepOptions) -> Result<StepStart, Error> {
        lift(imports::step_begin(name, options))
    }
    fn step_complete(&self, step_id: &str, output: &str) -> Result<(), Error> {
        lift(imports::step_complete(step_id, output))
    }
    fn step_fail(&self, step_id: &str, err: &Error, retryable: bool) -> Result<(), Error> {
        let err = WitError {
            name: err.name.clone(),
            message: err.message.clone(),
        };
        lift(imports::step_fail(step_id, &err, retryable))
    }
    fn gate(&self, request: &GateRequest) -> Result<GateOutcome, Error> {
        lift(imports::gate(request))
    }
    fn state_get(&self) -> Option<String> {
        imports::state_get()
    }
    fn state_set(&self, value: &str, options: &StateOptions) -> Result<u32, Error> {
        lift(imports::state_set(value, options))
    }
    fn state_patch(&self, value: &str, options: &StateOptions) -> Result<u32, Error> {
        lift(imports::state_patch(value, options))
    }
    fn state_save(&self, label: &str, options: &StateOptions) -> Result<u32, Error> {
        lift(imports::state_save(label, options))
    }
    fn usage_record(&self, usage: &str) -> Result<(), Error> {
        lift(imports::usage_record(usage))
    }
    fn child(&self, edge: &str, workflow: &str, input: &str) -> Result<String, Error> {
        lift(imports::child(edge, workflow, input))
    }
    fn sleep(&self, duration_ms: u64) {
        imports::sleep(duration_ms)
    }
    fn log(&self, level: LogLevel, message: &str) {
        imports::log(level, message)
    }
    fn now(&self) -> u64 {
        imports::now()
    }
    fn random(&self) -> u64 {
        imports::random()
    }
}
