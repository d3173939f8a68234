//! `grouped`: pure steps around a step with declared side effects and an
//! optional HTTP call, for testing how the host groups the checkpoints of
//! pure steps.
//!
//! Input (all optional): `{"before": 3, "effect": true, "effectMs": 0,
//! "url": null, "after": 3, "holdMs": 0}`. In order:
//! - steps `before-0` … `before-{n-1}` return their index;
//! - `run.now()` outside any step (a recorded value);
//! - if `effect`, step `effect` declares the side effect `email` and waits
//!   `effectMs` inside its code;
//! - if `url` is set, step `fetch` (declaring nothing) GETs it;
//! - a log line `midway`;
//! - steps `after-0` … return their index;
//! - step `hold` waits `holdMs` inside its code.
//!
//! Every step's code prints `ran <step>` to stdout, which the host keeps as a
//! `log` event of the activation that ran it: a resumed run shows which
//! steps ran again. Output: `{"before": n, "after": m, "status": <HTTP
//! status or null>}`.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tidebase_guest::{Error, Run, StepOptions, http};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
struct Input {
    before: u32,
    effect: bool,
    effect_ms: u64,
    url: Option<String>,
    after: u32,
    hold_ms: u64,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            before: 3,
            effect: true,
            effect_ms: 0,
            url: None,
            after: 3,
            hold_ms: 0,
        }
    }
}

/// Step `name` whose code prints that it ran, waits `wait_ms` and returns `value`.
fn pure(run: &Run, name: &str, value: u32, wait_ms: u64) -> Result<u32, Error> {
    run.step(name, || {
        println!("ran {name}");
        if wait_ms > 0 {
            run.sleep(Duration::from_millis(wait_ms));
        }
        Ok::<_, Error>(value)
    })
}

fn grouped(run: &Run, input: Option<Input>) -> Result<Value, Error> {
    let input = input.unwrap_or_default();
    for i in 0..input.before {
        pure(run, &format!("before-{i}"), i, 0)?;
    }
    // A value recorded outside steps, like a checkpoint.
    run.now();
    if input.effect {
        let options = StepOptions::new().side_effects(["email"]);
        run.step_with("effect", options, || {
            println!("ran effect");
            if input.effect_ms > 0 {
                run.sleep(Duration::from_millis(input.effect_ms));
            }
            Ok::<_, Error>(String::from("sent"))
        })?;
    }
    let status = match &input.url {
        Some(url) => Some(run.step("fetch", || {
            println!("ran fetch");
            Ok::<_, Error>(http::get(url)?.status)
        })?),
        None => None,
    };
    run.info("midway");
    for i in 0..input.after {
        pure(run, &format!("after-{i}"), i, 0)?;
    }
    pure(run, "hold", 0, input.hold_ms)?;
    Ok(json!({ "before": input.before, "after": input.after, "status": status }))
}

tidebase_guest::workflow!(grouped);
