//! `flaky`: three steps, a transient failure and an optional crash, for testing
//! retries and resume.
//!
//! Steps `a` → `b` → `c`:
//! - `a` returns `seed + 1`;
//! - `b` returns `a * 10`, but its first `failures` attempts within this instance
//!   fail (default 1). With `retries(2)`, 0–2 failures end in success and 3 or
//!   more make the step, and the run, fail;
//! - `c` returns `a + b`.
//!
//! Input (all optional): `{"seed": 1, "failures": 1, "failAt": "b", "crash": "error"}`.
//!
//! `failAt` names a step after which the run crashes, but only in an execution in
//! which that step's code actually ran. The first execution runs the step and
//! crashes; a resume (same run id) gets the step's checkpoint replayed, so the
//! code does not run, and the run goes on. No state or marker is needed: the
//! checkpoint itself is the record of the first execution. `crash` picks how:
//! `error` (default) returns an error, `trap` executes `unreachable`, `panic`
//! panics (which also aborts the instance).
//!
//! The result is the same with or without a crash:
//! `{"a": seed+1, "b": 10*(seed+1), "c": 11*(seed+1), "bAttempts": n}` where
//! `bAttempts` is the attempt that succeeded in the execution that ran `b`.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidebase_guest::{Error, Run, StepOptions};

/// Attempts of step `b` in this instance. A resumed run gets a fresh instance,
/// so the count restarts there, but by then `b` is replayed, not executed.
static B_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Unknown fields are rejected so that a misspelt flag fails loudly instead of
/// silently not crashing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct Input {
    seed: i64,
    failures: u32,
    fail_at: Option<String>,
    crash: Crash,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            seed: 1,
            failures: 1,
            fail_at: None,
            crash: Crash::Error,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Crash {
    Error,
    Trap,
    Panic,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct B {
    value: i64,
    attempts: u32,
}

/// Crashes if `step` is the `failAt` step and its code ran in this execution.
fn maybe_crash(input: &Input, step: &str, ran: bool) -> Result<(), Error> {
    if !ran || input.fail_at.as_deref() != Some(step) {
        return Ok(());
    }
    match input.crash {
        Crash::Error => Err(Error::new(
            "InjectedCrash",
            format!("crashing after step {step} as requested"),
        )),
        Crash::Trap => trap(),
        Crash::Panic => panic!("crashing after step {step} as requested"),
    }
}

/// A wasm `unreachable` trap, as a crashing guest would produce.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Native builds exist only so that the workspace compiles.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

fn flaky(run: &Run, input: Option<Input>) -> Result<serde_json::Value, Error> {
    let input = input.unwrap_or_default();
    let mut ran_a = false;
    let a: i64 = run.step_with("a", StepOptions::new().input(&input.seed), || {
        ran_a = true;
        Ok::<_, Error>(input.seed + 1)
    })?;
    maybe_crash(&input, "a", ran_a)?;

    let mut ran_b = false;
    let b: B = run.step_with("b", StepOptions::new().input(&a).retries(2), || {
        ran_b = true;
        let attempt = B_ATTEMPTS.fetch_add(1, Ordering::Relaxed) + 1;
        if attempt <= input.failures {
            run.warn(format!("step b: simulated failure on attempt {attempt}"));
            return Err(Error::new(
                "TransientError",
                format!("simulated failure on attempt {attempt}"),
            ));
        }
        Ok(B {
            value: a * 10,
            attempts: attempt,
        })
    })?;
    maybe_crash(&input, "b", ran_b)?;

    let mut ran_c = false;
    let c: i64 = run.step_with("c", StepOptions::new().input(&json!([a, b.value])), || {
        ran_c = true;
        Ok::<_, Error>(a + b.value)
    })?;
    maybe_crash(&input, "c", ran_c)?;

    Ok(json!({ "a": a, "b": b.value, "c": c, "bAttempts": b.attempts }))
}

tidebase_guest::workflow!(flaky);
