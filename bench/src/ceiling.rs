//! The store's single-insert commit ceiling, measured in the same run as
//! the results it scales: autocommit one-row inserts of an output-sized
//! payload through the engine's own store (same pool, pragmas and writer
//! discipline), at each concurrency the results use. Every result row then
//! states its rate as a share of it. The ceiling is the best of
//! [`SAMPLES`] samples: a machine shared with anything else (a VM's
//! neighbours) measures a lower rate in a disturbed sample, and a low
//! ceiling flatters every ratio.

use crate::env::Cpu;
use crate::report::{Latencies, Table, ms, record};
use anyhow::Result;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tidebase_host::store::SqlStore;

/// Samples taken of each ceiling.
const SAMPLES: usize = 3;

/// `(backend, concurrency, commits/s)` measured so far in this process.
static CEILINGS: Mutex<Vec<(String, usize, f64)>> = Mutex::new(Vec::new());

/// The ceiling of `backend` at `concurrency`, if measured.
pub fn get(backend: &str, concurrency: usize) -> Option<f64> {
    let ceilings = CEILINGS.lock().expect("not poisoned");
    ceilings
        .iter()
        .find(|(b, c, _)| b == backend && *c == concurrency)
        .map(|(_, _, rate)| *rate)
}

/// Measure the ceiling of `store` at every level of `levels` not measured yet.
pub async fn measure(
    store: &Arc<SqlStore>,
    backend: &str,
    levels: &[usize],
    secs: f64,
    payload_bytes: usize,
) -> Result<()> {
    let mut table = Table::new(
        &format!(
            "commit ceiling ({backend}): autocommit single-row INSERT of {payload_bytes} bytes, through the engine's store (Postgres: its pool; SQLite: its writer)"
        ),
        &[
            "conc",
            "commits",
            "secs",
            "commits/s",
            "p50 ms",
            "p99 ms",
            "cpu bench/pg/other",
        ],
    );
    let mut measured = false;
    for &conc in levels {
        if get(backend, conc).is_some() {
            continue;
        }
        eprintln!("ceiling: {backend} at concurrency {conc}, best of {SAMPLES} × {secs} s");
        let mut best = 0.0f64;
        for _ in 0..SAMPLES {
            let cpu = Cpu::sample();
            let sample = store
                .commit_ceiling(conc, Duration::from_secs_f64(secs), payload_bytes)
                .await?;
            let cpu = cpu.usage(&Cpu::sample());
            let rate = sample.commits_per_sec();
            let mut lat = Latencies::default();
            for d in sample.latencies {
                lat.push(d);
            }
            table.row(vec![
                conc.to_string(),
                sample.commits.to_string(),
                format!("{:.1}", sample.elapsed.as_secs_f64()),
                format!("{rate:.0}"),
                format!("{:.2}", ms(lat.pct(50.0))),
                format!("{:.2}", ms(lat.pct(99.0))),
                format!("{:.2}/{:.2}/{:.2}", cpu.bench, cpu.postgres, cpu.other),
            ]);
            record(
                "ceiling",
                json!({
                    "backend": backend,
                    "concurrency": conc,
                    "payloadBytes": payload_bytes,
                    "commits": sample.commits,
                    "commitsPerSec": rate.round(),
                    "latency": lat.summary(),
                }),
            );
            best = best.max(rate);
        }
        let rate = best;
        CEILINGS
            .lock()
            .expect("not poisoned")
            .push((backend.to_string(), conc, rate));
        measured = true;
    }
    if measured {
        table.print();
    }
    Ok(())
}
