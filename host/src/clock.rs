//! Time is injected so lease expiry can be reasoned about (and tested) without
//! reading the system clock all over the engine.

use std::sync::Arc;

/// Microseconds since the Unix epoch: the unit every timestamp is stored in.
pub type Micros = i64;

pub trait Clock: Send + Sync {
    fn now(&self) -> Micros;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        chrono::Utc::now().timestamp_micros()
    }
}

pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// ISO-8601 UTC with exactly three fractional digits, as the wire format requires.
pub fn iso(micros: Micros) -> String {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
