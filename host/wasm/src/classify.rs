//! Turning the end of an activation into an [`ActivationOutcome`] with a clear
//! reason and failure class (what each outcome means for the run is the
//! engine's: [`crate::engine::Engine::record_outcome`]).

use super::bindings::GuestError;
use super::interrupt::Interrupt;
use crate::engine::ActivationOutcome;
use crate::engine::store::StoreError;
use serde_json::{Value, json};

fn failed(name: &str, message: String, class: &'static str) -> ActivationOutcome {
    ActivationOutcome::Failed {
        error: json!({"name": name, "message": message}),
        class,
    }
}

/// The last few lines the guest wrote to stderr (e.g. a panic message).
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// `memory_refused`: the store's limiter stopped the guest's memory from
/// growing ([`super::limiter::Limiter`]). A failure from a refused HTTP
/// request is named by the engine ([`crate::engine::Refusals::explain`]).
pub fn outcome(
    result: wasmtime::Result<Result<String, GuestError>>,
    stderr: &[u8],
    memory_refused: bool,
    max_output: usize,
) -> ActivationOutcome {
    match result {
        Ok(Ok(text)) if text.len() > max_output => failed(
            "OutputLimit",
            format!(
                "workflow result of {} bytes exceeds the {max_output}-byte limit",
                text.len()
            ),
            "output_limit",
        ),
        Ok(Ok(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => ActivationOutcome::Completed(v),
            Err(e) => failed(
                "InvalidJson",
                format!("workflow result is not valid JSON: {e}"),
                "workflow_error",
            ),
        },
        Ok(Err(e)) => failed(&e.name, e.message, "workflow_error"),
        Err(err) => trapped(err, stderr, memory_refused),
    }
}

fn trapped(err: wasmtime::Error, stderr: &[u8], memory_refused: bool) -> ActivationOutcome {
    if let Some(i) = err.downcast_ref::<Interrupt>() {
        return match i {
            Interrupt::Suspend { until, reason } => ActivationOutcome::Suspended {
                until: *until,
                reason: reason.clone(),
            },
            Interrupt::Cancelled => ActivationOutcome::Cancelled,
            Interrupt::LeaseLost => ActivationOutcome::LeaseLost,
            Interrupt::CpuLimit { .. } => failed("CpuLimit", i.to_string(), "cpu_limit"),
            Interrupt::OutputLimit { .. } | Interrupt::LogLimit => {
                failed("OutputLimit", i.to_string(), "output_limit")
            }
        };
    }
    let detail = format!("{err:#}");
    // A refused growth traps in the limiter, so whatever the guest's trap
    // looks like, running out of memory is what ended it.
    if memory_refused {
        return failed(
            "MemoryLimit",
            format!("memory limit reached: {detail}"),
            "memory_limit",
        );
    }
    let tail = stderr_tail(stderr);
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::StackOverflow => failed(
                "StackOverflow",
                "guest stack overflow".into(),
                "stack_overflow",
            ),
            // Guest convention, not a host error: a Rust panic prints "panicked at", then traps.
            wasmtime::Trap::UnreachableCodeReached if tail.contains("panicked") => {
                failed("Panic", format!("workflow panicked: {tail}"), "panic")
            }
            other => failed("Trap", format!("{other}{}", suffix(&tail)), "trap"),
        };
    }
    // A store failure is the host's, never the guest's: the activation is
    // retried, and replays its checkpoints.
    if err.downcast_ref::<StoreError>().is_some() {
        return ActivationOutcome::Retry(detail);
    }
    failed("Trap", format!("{detail}{}", suffix(&tail)), "trap")
}

/// The host panicked while running an activation (a host bug, or a
/// callback given to the worker): the run fails with class `host_panic`.
pub fn panicked(payload: Box<dyn std::any::Any + Send>) -> ActivationOutcome {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    failed(
        "HostPanic",
        format!("the host panicked while running this activation: {detail}"),
        "host_panic",
    )
}

fn suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(outcome: ActivationOutcome) -> &'static str {
        match outcome {
            ActivationOutcome::Failed { class, .. } => class,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn a_refused_memory_growth_decides_however_the_guest_trapped() {
        let unreachable = || Err(wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached));
        let stderr = b"memory allocation of 64 bytes failed\n";
        assert_eq!(
            class(outcome(unreachable(), stderr, true, 1)),
            "memory_limit"
        );
        assert_eq!(class(outcome(unreachable(), stderr, false, 1)), "trap");
    }
}
