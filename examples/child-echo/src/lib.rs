//! `child-echo`: the child half of the `fanout-parent` example.
//!
//! Input `{"value": n}`; output `{"value": n, "doubled": 2n}`, computed in one
//! checkpointed step.

use serde::{Deserialize, Serialize};
use tidebase_guest::{Error, Run, StepOptions};

#[derive(Deserialize)]
struct Input {
    value: i64,
}

#[derive(Serialize, Deserialize)]
struct Echo {
    value: i64,
    doubled: i64,
}

fn child_echo(run: &Run, input: Input) -> Result<Echo, Error> {
    run.step_with("echo", StepOptions::new().input(&input.value), || {
        let doubled = input
            .value
            .checked_mul(2)
            .ok_or_else(|| Error::new("OverflowError", "value too large to double"))?;
        Ok::<_, Error>(Echo {
            value: input.value,
            doubled,
        })
    })
}

tidebase_guest::workflow!(child_echo);
