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

/// The last instant every client can parse (year 9999); saturated deadlines
/// ("never") are shown as this rather than wrapping to 1970.
const LATEST: Micros = 253_402_300_799_999_999;
/// The first instant of year 0000, the earliest a four-digit year writes.
const EARLIEST: Micros = -62_167_219_200_000_000;

/// ISO-8601 UTC with exactly three fractional digits, as the wire format requires.
pub fn iso(micros: Micros) -> String {
    use chrono::{Datelike, Timelike};
    let t =
        chrono::DateTime::from_timestamp_micros(micros.clamp(EARLIEST, LATEST)).unwrap_or_default();
    // Written digit by digit into a fixed buffer: every step and run row
    // carries several of these, and `format!` showed in profiles.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let fields = [
        (0, 4, t.year().unsigned_abs()),
        (5, 2, t.month()),
        (8, 2, t.day()),
        (11, 2, t.hour()),
        (14, 2, t.minute()),
        (17, 2, t.second()),
        (20, 3, t.timestamp_subsec_millis()),
    ];
    for (at, width, mut value) in fields {
        for digit in out[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8(out.to_vec()).expect("ASCII digits")
}

/// The instant an [`iso`] string (or any RFC 3339 one) names.
pub fn from_iso(text: &str) -> Option<Micros> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturated_instants_stay_in_year_9999() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_700_000_000_123_456), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso(-1_000), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso(LATEST), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso(1_000_999), "1970-01-01T00:00:01.000Z");
        assert_eq!(
            from_iso(&iso(1_700_000_000_123_000)),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(from_iso("yesterday"), None);
    }
}
