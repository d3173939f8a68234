//! How engine answers reach the guest: a refusal as an `error` value it can
//! handle, anything that ends the activation as a trap.

use super::super::bindings::GuestError;
use super::super::interrupt::Interrupt;
use crate::engine::EngineError;
use serde_json::Value;
use wasmtime::Result as Wt;

/// Engine outcomes that end the activation become traps; the rest are
/// answered to the guest as `error`s by the caller.
pub fn trap(e: EngineError) -> wasmtime::Error {
    if e.is_cancelled() {
        return Interrupt::Cancelled.trap();
    }
    if e.is_lease_lost() {
        return Interrupt::LeaseLost.trap();
    }
    match e {
        EngineError::Store(err) => wasmtime::Error::new(err),
        EngineError::Internal(err) => wasmtime::Error::from_anyhow(err),
        other => wasmtime::Error::msg(other.to_string()),
    }
}

/// A guest-visible error from an engine call that did not end the
/// activation. A refusal is a `HostError` prefixed with the import's name
/// (`call`); the engine's message names the field and its limit.
pub fn answer<T>(call: &str, r: Result<T, EngineError>) -> Wt<Result<T, GuestError>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_refusal() => Ok(Err(guest_error("HostError", format!("{call}: {e}")))),
        Err(e) => Err(trap(e)),
    }
}

pub fn guest_error(name: &str, message: impl Into<String>) -> GuestError {
    GuestError {
        name: name.into(),
        message: message.into(),
    }
}

pub fn parse(what: &str, text: &str) -> Result<Value, GuestError> {
    serde_json::from_str(text)
        .map_err(|e| guest_error("InvalidJson", format!("{what} is not valid JSON: {e}")))
}
