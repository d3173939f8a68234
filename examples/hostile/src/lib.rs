//! `hostile`: a workflow that misbehaves on request, to test the host's limits.
//!
//! Input `{"mode": M}` (optionally `"bytes": N` for `output`, `"url": U`
//! for `egress`):
//! - `ok`: returns `{"ok": true}`;
//! - `loop`: spins forever (needs epoch or fuel interruption);
//! - `memory`: grows a vector until allocation fails (needs a memory limit);
//! - `trap`: executes the wasm `unreachable` instruction;
//! - `panic`: panics (Rust aborts, which is also `unreachable` on wasm);
//! - `stack`: recurses without bound (exhausts the stack);
//! - `output`: returns a JSON string of `bytes` characters, 64 MiB by default
//!   (needs a result size limit). The string is streamed into the JSON result,
//!   so the guest needs about 1.5–3 times `bytes` of memory (buffer growth);
//! - `escape`: tries to reach outside the sandbox (environment, files,
//!   network, stdout) and reports what it got;
//! - `refused`: hands the host names and numbers it must refuse (NUL,
//!   over-long, reserved, out of range) and returns the error of each call
//!   by case, `"accepted"` for a call that was not refused; logs a line
//!   holding a NUL;
//! - `nap`: logs `napping` and sleeps forever inside a step (only
//!   cancellation ends it);
//! - `hibernate`: a durable sleep of `u64::MAX` ms outside steps;
//! - `egress`: GETs `url` outside any step (the host refuses: outside steps
//!   workflow code must be deterministic) and fails with the error;
//! - `residue`: reports what an earlier instance could have left in its
//!   memory (a static from the data image, 256 KiB of zeroed statics), then
//!   overwrites both for the next instance to find.

use std::fmt;
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};
use tidebase_guest::{Error, Run, StateOptions, Usage, http};

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Ok,
    Loop,
    Memory,
    Trap,
    Panic,
    Stack,
    Output,
    Escape,
    Refused,
    Nap,
    Hibernate,
    Egress,
    Residue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    mode: Mode,
    #[serde(default = "default_output_bytes")]
    bytes: usize,
    #[serde(default)]
    url: String,
}

/// Initialized from the component's data image.
static IMAGED: AtomicU64 = AtomicU64::new(7);
/// Zero-initialized statics, beyond the data image.
static ZEROED: [AtomicU8; 256 << 10] = [const { AtomicU8::new(0) }; 256 << 10];

/// What this instance found in `IMAGED` and how many bytes of `ZEROED` were
/// not zero; leaves both dirty.
fn residue() -> Value {
    let imaged = IMAGED.swap(0xdead, Ordering::Relaxed);
    let dirty = ZEROED
        .iter()
        .filter(|b| b.swap(0xaa, Ordering::Relaxed) != 0)
        .count();
    json!({ "imaged": imaged, "dirty": dirty })
}

fn default_output_bytes() -> usize {
    64 << 20
}

/// `n` copies of `x`, written straight into the serializer's output rather than
/// built as a `String` first, so the guest holds one copy of the result, not two.
struct Filler(usize);

impl fmt::Display for Filler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: &str = match std::str::from_utf8(&[b'x'; 4096]) {
            Ok(s) => s,
            Err(_) => panic!("ASCII is UTF-8"),
        };
        let mut left = self.0;
        while left > 0 {
            let n = left.min(CHUNK.len());
            f.write_str(&CHUNK[..n])?;
            left -= n;
        }
        Ok(())
    }
}

impl Serialize for Filler {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Output {
    Json(Value),
    Filler(Filler),
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut hoard: Vec<u64> = Vec::new();
    loop {
        // Amortized doubling, and every element written, so the pages are really used.
        hoard.push(black_box(hoard.len() as u64));
    }
}

/// Recursion the optimizer cannot turn into a loop: each frame keeps a buffer
/// whose address escapes, and uses the callee's result.
#[allow(unconditional_recursion, reason = "exhausting the stack is the point")]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    let below = recurse(black_box(depth + 1));
    black_box(&frame)[(depth % 16) as usize].wrapping_add(below)
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Native builds exist only so that the workspace compiles.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

fn hostile(run: &Run, input: Input) -> Result<Output, Error> {
    match input.mode {
        Mode::Ok => Ok(Output::Json(json!({ "ok": true }))),
        Mode::Loop => {
            run.info("spinning forever");
            spin()
        }
        Mode::Memory => {
            run.info("allocating until memory runs out");
            exhaust_memory()
        }
        Mode::Trap => trap(),
        Mode::Panic => panic!("hostile workflow panicked on purpose"),
        Mode::Stack => Ok(Output::Json(json!({ "depth": recurse(0) }))),
        Mode::Output => Ok(Output::Filler(Filler(input.bytes))),
        Mode::Escape => Ok(Output::Json(escape())),
        Mode::Refused => refused(run).map(Output::Json),
        Mode::Nap => {
            run.step("nap", || {
                run.info("napping");
                run.sleep(Duration::MAX);
                Ok::<_, Error>(())
            })?;
            Ok(Output::Json(json!({ "woke": true })))
        }
        Mode::Hibernate => {
            run.sleep(Duration::MAX);
            Ok(Output::Json(json!({ "woke": true })))
        }
        Mode::Egress => {
            let response = http::get(&input.url)?;
            Ok(Output::Json(json!({ "status": response.status })))
        }
        Mode::Residue => Ok(Output::Json(residue())),
    }
}

/// Calls the host must refuse, by case: each call's error, or `"accepted"`.
fn refused(run: &Run) -> Result<Value, Error> {
    run.state().set(&json!({ "n": 1 }))?;
    run.info("a line with a \0 in it");
    let long = |c: &str| c.repeat(257);
    let usage = |u: Usage| run.usage().record(u);
    let set_with = |o: StateOptions| run.state().set_with(&2, o).map(drop);
    let cases: Vec<(&str, Result<(), Error>)> = vec![
        ("stepNul", run.step("a\0b", || Ok::<_, Error>(1)).map(drop)),
        (
            "stepLong",
            run.step(&long("s"), || Ok::<_, Error>(1)).map(drop),
        ),
        (
            "stepHidden",
            run.step("__now:1", || Ok::<_, Error>(1)).map(drop),
        ),
        ("gateLong", run.gate(&long("g"), "p").map(drop)),
        ("gatePromptNul", run.gate("g", "a\0b").map(drop)),
        ("streamNul", set_with(StateOptions::new().stream("a\0b"))),
        ("reasonNul", set_with(StateOptions::new().reason("a\0b"))),
        ("labelEmpty", run.state().save("").map(drop)),
        (
            "usageModelNul",
            usage(Usage {
                model: Some("a\0b".into()),
                ..Usage::default()
            }),
        ),
        (
            "usageTokens",
            usage(Usage {
                input_tokens: Some(u64::MAX),
                ..Usage::default()
            }),
        ),
        (
            "usageCost",
            usage(Usage {
                cost_usd: Some(-1.0),
                ..Usage::default()
            }),
        ),
        (
            "childEdgeLong",
            run.child::<Value, _>(&long("e"), "hostile", &json!({}))
                .map(drop),
        ),
        (
            "childWorkflowNul",
            run.child::<Value, _>("c", "a\0b", &json!({})).map(drop),
        ),
    ];
    let mut out = Map::new();
    for (case, result) in cases {
        let got = match result {
            Ok(()) => json!("accepted"),
            Err(e) => json!({ "name": e.name, "message": e.message }),
        };
        out.insert(case.into(), got);
    }
    Ok(Value::Object(out))
}

/// Everything a sandboxed workflow should be denied, and what it got.
fn escape() -> Value {
    println!("hello from the sandbox");
    eprintln!("and from its stderr");
    let outcome = |r: std::io::Result<String>| match r {
        Ok(got) => json!({"allowed": got}),
        Err(e) => json!({"denied": e.to_string()}),
    };
    json!({
        "env": std::env::vars().count(),
        "args": std::env::args().count(),
        "readRoot": outcome(std::fs::read_dir("/").map(|d| format!("{} entries", d.count()))),
        "readEtc": outcome(std::fs::read_to_string("/etc/hostname")),
        "writeTmp": outcome(std::fs::write("/tmp/tidebase-escape", b"x").map(|_| "wrote".into())),
        "connect": outcome(std::net::TcpStream::connect("127.0.0.1:5432").map(|_| "connected".into())),
    })
}

tidebase_guest::workflow!(hostile);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_serializes_as_one_json_string() {
        for n in [0, 1, 4096, 10_000] {
            let json = serde_json::to_string(&Output::Filler(Filler(n))).unwrap();
            assert_eq!(json, format!("\"{}\"", "x".repeat(n)));
        }
    }
}
