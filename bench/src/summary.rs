//! The targets, judged from the records this process printed: one
//! table at the end of every invocation, `met`, `missed` or `not measured`.

use crate::report::{Table, record, records};
use serde_json::{Value, json};

/// Where the targets are judged.
const TARGET_BACKEND: &str = "postgres";

/// The last record of `bench` on `backend` at `concurrency` (any when `None`).
fn last<'a>(
    all: &'a [Value],
    bench: &str,
    backend: &str,
    concurrency: Option<usize>,
) -> Option<&'a Value> {
    all.iter().rev().find(|r| {
        r["bench"] == bench
            && r["backend"] == backend
            && concurrency.is_none_or(|c| r["concurrency"] == c)
    })
}

fn f(r: &Value, key: &str) -> Option<f64> {
    r.pointer(key).and_then(Value::as_f64)
}

fn pct(r: &Value) -> String {
    f(r, "/ratioToCeiling").map_or("-".into(), |x| format!("{:.1}%", x * 100.0))
}

struct Verdict {
    what: String,
    goal: &'static str,
    measured: String,
    met: Option<bool>,
}

/// A steps/s result held to a share of the ceiling.
fn share(all: &[Value], bench: &str, conc: usize, what: &str, goal: f64) -> Verdict {
    let goal_text = if goal >= 0.5 {
        "≥ 50% of ceiling"
    } else {
        "≥ 17% of ceiling"
    };
    match last(all, bench, TARGET_BACKEND, Some(conc)) {
        Some(r) => Verdict {
            what: what.to_string(),
            goal: goal_text,
            measured: format!(
                "{:.0}/s = {} of {:.0}/s",
                f(r, "/stepsPerSec").unwrap_or(0.0),
                pct(r),
                f(r, "/ceilingCommitsPerSec").unwrap_or(0.0)
            ),
            met: f(r, "/ratioToCeiling").map(|x| x >= goal),
        },
        None => Verdict {
            what: what.to_string(),
            goal: goal_text,
            measured: "not measured".into(),
            met: None,
        },
    }
}

fn verdicts(all: &[Value], conc: usize) -> Vec<Verdict> {
    let mut out = Vec::new();

    let mut v = share(
        all,
        "http.checkpoint",
        conc,
        "HTTP checkpointed steps",
        0.17,
    );
    v.goal = "≥ 17% of ceiling, p99 ≤ 10 ms";
    if let Some(r) = last(all, "http.checkpoint", TARGET_BACKEND, Some(conc)) {
        let p99 = f(r, "/latency/p99Ms").unwrap_or(f64::INFINITY);
        v.measured += &format!(", p99 {p99:.1} ms");
        v.met = v.met.map(|m| m && p99 <= 10.0);
    }
    out.push(v);

    let mut v = share(all, "http.replay", conc, "HTTP replayed steps", 0.6);
    v.goal = "≥ 60% of ceiling, zero writes";
    if let Some(r) = last(all, "http.replay", TARGET_BACKEND, Some(conc)) {
        let rows = f(r, "/rowsWrittenPerStep").unwrap_or(f64::INFINITY);
        let writes = f(r, "/writeTxPerStep").unwrap_or(f64::INFINITY);
        v.measured += &format!(", rows/step {rows:.3}, write-tx/step {writes:.3}");
        v.met = v.met.map(|m| m && rows == 0.0 && writes == 0.0);
    }
    out.push(v);

    out.push(share(
        all,
        "wasm.steps",
        conc,
        "wasm steps, 10-step runs",
        0.5,
    ));
    out.push(share(
        all,
        "wasm.steps(1 run/slot)",
        conc,
        "wasm steps, long runs",
        0.5,
    ));

    for (bench, what) in [
        ("http.checkpoint", "SQLite ≥ Postgres, HTTP steps/s"),
        ("wasm.steps", "SQLite ≥ Postgres, wasm steps/s"),
    ] {
        let rate =
            |backend| last(all, bench, backend, Some(conc)).and_then(|r| f(r, "/stepsPerSec"));
        let (sqlite, pg) = (rate("sqlite"), rate("postgres"));
        out.push(Verdict {
            what: what.into(),
            goal: "SQLite ≥ Postgres",
            measured: match (sqlite, pg) {
                (Some(s), Some(p)) => format!("SQLite {s:.0}/s, Postgres {p:.0}/s"),
                _ => "not measured (needs both backends)".into(),
            },
            met: sqlite.zip(pg).map(|(s, p)| s >= p),
        });
    }

    let rss = all
        .iter()
        .rev()
        .find(|r| r["bench"] == "wasm.suspended-rss");
    out.push(match rss {
        Some(r) => {
            let runs = f(r, "/runs").unwrap_or(0.0);
            let kib = |k| f(r, k).unwrap_or(0.0);
            let grown = (kib("/rssSuspendedKiB") - kib("/rssBeforeKiB")) / 1024.0;
            Verdict {
                what: format!("{runs:.0} runs parked at gates"),
                goal: "10,000 runs: < 50 MB RSS growth",
                measured: format!(
                    "{grown:+.1} MB ({:.1} MB total, {})",
                    kib("/rssSuspendedKiB") / 1024.0,
                    r["backend"].as_str().unwrap_or("?")
                ),
                met: (runs >= 10_000.0).then_some(grown < 50.0),
            }
        }
        None => Verdict {
            what: "10,000 runs parked at gates".into(),
            goal: "10,000 runs: < 50 MB RSS growth",
            measured: "not measured".into(),
            met: None,
        },
    });

    let ready = all.iter().rev().find(|r| r["bench"] == "serve.ready");
    out.push(Verdict {
        what: "serve ready on SQLite".into(),
        goal: "< 200 ms",
        measured: ready.map_or("not measured".into(), |r| {
            format!(
                "p50 {:.1} ms, max {:.1} ms",
                f(r, "/latency/p50Ms").unwrap_or(0.0),
                f(r, "/latency/maxMs").unwrap_or(0.0)
            )
        }),
        met: ready
            .and_then(|r| f(r, "/latency/p50Ms"))
            .map(|p| p < 200.0),
    });
    out
}

/// Print the targets table (and one JSON record per target).
pub fn print(conc: usize) {
    let all = records();
    let mut table = Table::new(
        &format!("targets of issue 12 (Postgres unless named, concurrency {conc}, ratios to the commit ceiling of the same run)"),
        &["target", "goal", "measured", "verdict"],
    )
    .left();
    for v in verdicts(&all, conc) {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        table.row(vec![
            v.what.clone(),
            v.goal.into(),
            v.measured.clone(),
            verdict.into(),
        ]);
        record(
            "target",
            json!({"target": v.what, "goal": v.goal, "measured": v.measured, "met": v.met}),
        );
    }
    table.print();
}
