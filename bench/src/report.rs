//! Percentiles, tables and the JSON lines that record each measurement.

use crate::env::Cost;
use serde_json::{Map, Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// Every JSON record printed so far, for the summary at the end.
static RECORDS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

/// The records printed so far.
pub fn records() -> Vec<Value> {
    RECORDS.lock().expect("not poisoned").clone()
}

/// Latency samples; percentiles by nearest rank over the sorted samples.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
    sorted: bool,
}

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0 < p ≤ 100), zero without samples.
    pub fn pct(&mut self, p: f64) -> Duration {
        self.sort();
        let n = self.samples.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.samples[rank.clamp(1, n) - 1]
    }

    pub fn mean(&self) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.iter().sum::<Duration>() / self.samples.len() as u32
    }

    /// p50, p90, p99, max and mean in milliseconds, for JSON.
    pub fn summary(&mut self) -> Value {
        json!({
            "n": self.len(),
            "p50Ms": ms(self.pct(50.0)),
            "p90Ms": ms(self.pct(90.0)),
            "p99Ms": ms(self.pct(99.0)),
            "maxMs": ms(self.pct(100.0)),
            "meanMs": ms(self.mean()),
        })
    }
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// A cost as JSON fields (absent readings are null).
pub fn cost_json(c: &Cost) -> Value {
    let r = |v: Option<f64>| v.map(|v| round(v, 3));
    json!({
        "commitsPerStep": r(c.commits),
        "rollbacksPerStep": r(c.rollbacks),
        "rowsWrittenPerStep": r(c.rows_written),
        "writeTxPerStep": r(c.writes),
        "readConnsPerStep": r(c.reads),
    })
}

/// Print one measurement as a JSON line (`{"bench": …}`), for the record.
pub fn record(bench: &str, fields: Value) {
    let mut m = Map::new();
    m.insert("bench".into(), json!(bench));
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    m.insert("load1".into(), json!(crate::env::load1()));
    let record = Value::Object(m);
    println!("{record}");
    RECORDS.lock().expect("not poisoned").push(record);
}

/// A plain text table, printed at once.
pub struct Table {
    title: String,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Text cells, aligned left (numbers align right).
    left: bool,
}

impl Table {
    pub fn new(title: &str, head: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: false,
        }
    }

    /// Align cells left: a table of text.
    pub fn left(mut self) -> Table {
        self.left = true;
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let mut width: Vec<usize> = self.head.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                if i < width.len() {
                    width[i] = width[i].max(c.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&width)
                .map(|(c, w)| {
                    if self.left {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("\n== {}", self.title);
        println!("{}", line(&self.head));
        for row in &self.rows {
            println!("{}", line(row));
        }
        println!();
    }
}

/// A number for a table cell: `-` when absent.
pub fn cell(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".into(),
    }
}
