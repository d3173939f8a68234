//! `steps`: a run of N trivial checkpointed steps, for benchmarks.
//!
//! Input `{"steps": N}` (optionally `"outputBytes": B`); step `s{i}` returns
//! `i`, or with `outputBytes` the object `{"i": i, "pad": "x…"}` padded so
//! its JSON is B bytes (the bench's realistic checkpoint size). Output
//! `{"steps": N, "sum": 0 + 1 + … + (N − 1)}`. Every step costs one
//! checkpoint and nothing else, so a run measures the host's per-step
//! overhead.

use serde::{Deserialize, Serialize};
use tidebase_guest::{Error, Run};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    steps: u32,
    #[serde(default)]
    output_bytes: Option<usize>,
}

#[derive(Serialize)]
struct Output {
    steps: u32,
    sum: u64,
}

#[derive(Serialize, Deserialize)]
struct Padded {
    i: u32,
    pad: String,
}

/// `{"i":i,"pad":"x…"}` whose JSON is `bytes` long (or as short as it gets).
fn padded(i: u32, bytes: usize) -> Padded {
    let bare = format!(r#"{{"i":{i},"pad":""}}"#).len();
    Padded {
        i,
        pad: "x".repeat(bytes.saturating_sub(bare)),
    }
}

fn steps(run: &Run, input: Input) -> Result<Output, Error> {
    let mut sum = 0u64;
    for i in 0..input.steps {
        let name = format!("s{i}");
        let value = match input.output_bytes {
            None => run.step(&name, || Ok::<_, Error>(i))?,
            Some(bytes) => run.step(&name, || Ok::<_, Error>(padded(i, bytes)))?.i,
        };
        sum += u64::from(value);
    }
    Ok(Output {
        steps: input.steps,
        sum,
    })
}

tidebase_guest::workflow!(steps);
