//! `steps`: a run of N trivial checkpointed steps, for benchmarks.
//!
//! Input `{"steps": N}`; step `s{i}` returns `i`. Output
//! `{"steps": N, "sum": 0 + 1 + … + (N − 1)}`. Every step costs one
//! checkpoint and nothing else, so a run measures the host's per-step
//! overhead.

use serde::{Deserialize, Serialize};
use tidebase_guest::{Error, Run};

#[derive(Deserialize)]
struct Input {
    steps: u32,
}

#[derive(Serialize)]
struct Output {
    steps: u32,
    sum: u64,
}

fn steps(run: &Run, input: Input) -> Result<Output, Error> {
    let mut sum = 0u64;
    for i in 0..input.steps {
        let value: u32 = run.step(&format!("s{i}"), || Ok::<_, Error>(i))?;
        sum += u64::from(value);
    }
    Ok(Output {
        steps: input.steps,
        sum,
    })
}

tidebase_guest::workflow!(steps);
