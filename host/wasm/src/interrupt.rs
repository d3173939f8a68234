//! Why an activation stopped before the guest returned. Host imports raise
//! these as traps; the executor recognises them by downcasting.

use crate::clock::Micros;
use std::fmt;

#[derive(Debug)]
pub enum Interrupt {
    /// Waiting on a gate, a sleep or a child: drop the instance, park the
    /// run until `until` (or until woken).
    Suspend { until: Micros, reason: String },
    /// The run was cancelled.
    Cancelled,
    /// Another worker holds the run lease now (this instance is a zombie).
    LeaseLost,
    /// The guest used up its CPU budget.
    CpuLimit { limit_ms: i64 },
    /// The guest produced more output than allowed.
    OutputLimit {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    /// The guest wrote more to stdout/stderr than is kept.
    LogLimit,
}

impl fmt::Display for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupt::Suspend { reason, .. } => write!(f, "suspended: {reason}"),
            Interrupt::Cancelled => write!(f, "run cancelled"),
            Interrupt::LeaseLost => write!(f, "run lease lost to another worker"),
            Interrupt::CpuLimit { limit_ms } => write!(f, "CPU budget of {limit_ms} ms exhausted"),
            Interrupt::OutputLimit { what, bytes, limit } => {
                write!(f, "{what} of {bytes} bytes exceeds the {limit}-byte limit")
            }
            Interrupt::LogLimit => write!(f, "guest wrote more to stdout/stderr than allowed"),
        }
    }
}

impl std::error::Error for Interrupt {}

impl Interrupt {
    pub fn trap(self) -> wasmtime::Error {
        wasmtime::Error::new(self)
    }
}
