//! Five-field UTC cron expressions, exactly as the protocol defines them
//! (`semantics.md` §14.1).
//!
//! Hand-written because the rules differ from every maintained crate: an
//! empty term means the whole range (`/5` is `*/5`, `1,,3` is `*`), `n/s`
//! runs from `n` to the field maximum, day-of-week accepts 7 for Sunday, and
//! the day-of-month/day-of-week union applies whenever a field's text is
//! anything but a bare `*` (so `*/1` counts as restricted). Names, `?`, `L`,
//! `W`, `#` and macros are rejected; numbers are plain unsigned decimals.

use crate::clock::Micros;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

/// How far ahead a next fire time is searched: 5 × 366 days of minutes.
const HORIZON_MINUTES: i64 = 5 * 366 * 24 * 60;

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
    },
];

/// A parsed expression: one bit per allowed value in each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    dom_restricted: bool,
    dow_restricted: bool,
}

fn number(text: &str, field: Field) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{} field: {text:?} is not a plain number",
            field.name
        ));
    }
    let n: u32 = text.parse().map_err(|_| {
        format!(
            "{} field: {text} is out of range {}-{}",
            field.name, field.min, field.max
        )
    })?;
    if n < field.min || n > field.max {
        return Err(format!(
            "{} field: {n} is out of range {}-{}",
            field.name, field.min, field.max
        ));
    }
    Ok(n)
}

/// The bit set of one field's text.
fn parse_field(text: &str, field: Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for term in text.split(',') {
        let (range, step) = match term.split_once('/') {
            None => (term, 1),
            Some((range, step)) => {
                if step.contains('/') {
                    return Err(format!(
                        "{} field: {term:?} has more than one '/'",
                        field.name
                    ));
                }
                let s = if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                    // Any step past the field's span selects just the start,
                    // so one too large for u32 is as good as u32::MAX.
                    let digits = step.trim_start_matches('0');
                    if digits.is_empty() {
                        0
                    } else {
                        digits.parse::<u32>().unwrap_or(u32::MAX)
                    }
                } else {
                    return Err(format!(
                        "{} field: step {step:?} is not a plain number",
                        field.name
                    ));
                };
                if s < 1 {
                    return Err(format!("{} field: step must be at least 1", field.name));
                }
                (range, s)
            }
        };
        let (lo, hi) = if range.is_empty() || range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a, field)?, number(b, field)?);
            if a > b {
                return Err(format!(
                    "{} field: range {a}-{b} runs backwards",
                    field.name
                ));
            }
            (a, b)
        } else {
            let n = number(range, field)?;
            // `n/s` means n through the field maximum; a bare `n` is just n.
            (n, if term.contains('/') { field.max } else { n })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            match v.checked_add(step) {
                Some(next) => v = next,
                None => break,
            }
        }
    }
    if bits == 0 {
        return Err(format!("{} field selects no values", field.name));
    }
    Ok(bits)
}

impl Cron {
    /// Parse an expression; the error names the problem.
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                parts.len()
            ));
        }
        let mut sets = [0u64; 5];
        for (i, (text, field)) in parts.iter().zip(FIELDS).enumerate() {
            sets[i] = parse_field(text, field)?;
        }
        let mut weekdays = sets[4];
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1; // 7 is Sunday, like 0
        }
        Ok(Cron {
            minutes: sets[0],
            hours: sets[1],
            days: sets[2],
            months: sets[3],
            weekdays,
            dom_restricted: parts[2] != "*",
            dow_restricted: parts[4] != "*",
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first matching minute strictly after the minute containing
    /// `after`, or `None` if there is none within about five years (or
    /// before the end of representable time). All date arithmetic is checked.
    pub fn next_after(&self, after: Micros) -> Option<Micros> {
        let start = DateTime::from_timestamp_micros(after)?;
        let start = start.with_second(0)?.with_nanosecond(0)?;
        let limit = start
            .checked_add_signed(Duration::minutes(HORIZON_MINUTES))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut t = start.checked_add_signed(Duration::minutes(1))?;
        while t <= limit {
            if self.months & (1 << t.month()) == 0 {
                // First minute of the next month.
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = chrono::NaiveDate::from_ymd_opt(y, m, 1)?
                    .and_hms_opt(0, 0, 0)?
                    .and_utc();
            } else if !self.day_matches(&t) {
                t = t.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc();
            } else if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)?.checked_add_signed(Duration::hours(1))?;
            } else if self.minutes & (1 << t.minute()) == 0 {
                t = t.checked_add_signed(Duration::minutes(1))?;
            } else {
                return Some(t.timestamp_micros());
            }
        }
        None
    }
}

/// Parse and compute the next fire time after `now` in one go.
pub fn next_fire(expr: &str, now: Micros) -> Result<Micros, String> {
    let cron = Cron::parse(expr)?;
    cron.next_after(now)
        .ok_or_else(|| "expression never fires within five years".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Micros {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    fn next(expr: &str, from: &str) -> String {
        let t = next_fire(expr, at(from)).unwrap_or_else(|e| panic!("{expr}: {e}"));
        crate::clock::iso(t)
    }

    const FRIDAY: &str = "2026-06-12T10:30:30Z";

    #[test]
    fn spec_examples() {
        let cases = [
            ("* * * * *", "2026-06-12T10:31:00.000Z"),
            ("0 * * * *", "2026-06-12T11:00:00.000Z"),
            ("*/15 * * * *", "2026-06-12T10:45:00.000Z"),
            ("0 9 * * *", "2026-06-13T09:00:00.000Z"),
            ("0 0 1 * *", "2026-07-01T00:00:00.000Z"),
            ("30 8 * * 1", "2026-06-15T08:30:00.000Z"),
            ("0 0 * * 7", "2026-06-14T00:00:00.000Z"),
        ];
        for (expr, want) in cases {
            assert_eq!(next(expr, FRIDAY), want, "{expr}");
        }
    }

    #[test]
    fn strictly_after_the_reference_minute() {
        assert_eq!(
            next("30 10 * * *", "2026-06-12T10:30:00Z"),
            "2026-06-13T10:30:00.000Z"
        );
        assert_eq!(
            next("31 10 * * *", "2026-06-12T10:30:59.999Z"),
            "2026-06-12T10:31:00.000Z"
        );
        assert_eq!(
            next("*/5 * * * *", "2026-06-12T10:35:00Z"),
            "2026-06-12T10:40:00.000Z"
        );
    }

    #[test]
    fn lists_ranges_and_steps() {
        assert_eq!(next("5,10-12 * * * *", FRIDAY), "2026-06-12T11:05:00.000Z");
        assert_eq!(next("10-40/10 * * * *", FRIDAY), "2026-06-12T10:40:00.000Z");
        // n/s runs from n to the field maximum.
        assert_eq!(next("50/3 * * * *", FRIDAY), "2026-06-12T10:50:00.000Z");
        assert_eq!(next("0 20/2 * * *", FRIDAY), "2026-06-12T20:00:00.000Z");
        assert_eq!(next("0 23/2 * * *", FRIDAY), "2026-06-12T23:00:00.000Z");
        // Leading zeros are plain decimals.
        assert_eq!(next("05 09 * * *", FRIDAY), "2026-06-13T09:05:00.000Z");
    }

    #[test]
    fn empty_terms_are_the_full_range() {
        assert_eq!(
            Cron::parse("/5 * * * *").unwrap(),
            Cron::parse("*/5 * * * *").unwrap()
        );
        let every = Cron::parse("1,,3 * * * *").unwrap();
        assert_eq!(every.minutes, Cron::parse("* * * * *").unwrap().minutes);
        assert_eq!(next("1,,3 * * * *", FRIDAY), "2026-06-12T10:31:00.000Z");
    }

    #[test]
    fn day_of_month_and_week_union() {
        // Both restricted: either matches. 2026-06-13 is a Saturday; the
        // next 15th is Monday 2026-06-15, but Saturday comes first.
        assert_eq!(next("0 0 15 * 6", FRIDAY), "2026-06-13T00:00:00.000Z");
        assert_eq!(next("0 0 13 * 1", FRIDAY), "2026-06-13T00:00:00.000Z");
        // Only day-of-month restricted.
        assert_eq!(next("0 0 15 * *", FRIDAY), "2026-06-15T00:00:00.000Z");
        // `*/1` counts as restricted, so with a restricted day-of-month the
        // union matches every day.
        assert_eq!(next("0 0 15 * */1", FRIDAY), "2026-06-13T00:00:00.000Z");
        // …while a bare `*` leaves day-of-month alone.
        assert_eq!(next("0 0 20 * *", FRIDAY), "2026-06-20T00:00:00.000Z");
        // Sunday as 0 or 7, and ranges reaching 7.
        assert_eq!(next("0 0 * * 0", FRIDAY), "2026-06-14T00:00:00.000Z");
        assert_eq!(next("0 0 * * 6-7", FRIDAY), "2026-06-13T00:00:00.000Z");
        assert_eq!(next("0 12 * * 5", FRIDAY), "2026-06-12T12:00:00.000Z");
    }

    #[test]
    fn months_and_leap_days() {
        assert_eq!(next("0 0 1 1 *", FRIDAY), "2027-01-01T00:00:00.000Z");
        assert_eq!(next("0 0 29 2 *", FRIDAY), "2028-02-29T00:00:00.000Z");
        assert_eq!(next("59 23 31 12 *", FRIDAY), "2026-12-31T23:59:00.000Z");
        assert_eq!(next("0 0 31 * *", FRIDAY), "2026-07-31T00:00:00.000Z");
    }

    #[test]
    fn whitespace_is_trimmed_and_collapsed() {
        assert_eq!(next("  0   9 *\t* *  ", FRIDAY), "2026-06-13T09:00:00.000Z");
    }

    #[test]
    fn invalid_expressions_name_the_problem() {
        let cases = [
            ("", "expected 5 fields"),
            ("* * * *", "got 4"),
            ("* * * * * *", "got 6"),
            ("60 * * * *", "minute field: 60 is out of range 0-59"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field: 0"),
            ("* * 32 * *", "day-of-month"),
            ("* * * 0 *", "month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field: 8"),
            ("*/0 * * * *", "step must be at least 1"),
            ("*/x * * * *", "step"),
            ("5-3 * * * *", "runs backwards"),
            ("1/2/3 * * * *", "more than one '/'"),
            ("* * * JAN *", "not a plain number"),
            ("* * * * MON", "not a plain number"),
            ("* * ? * *", "not a plain number"),
            ("* * L * *", "not a plain number"),
            ("* * * * 1#2", "not a plain number"),
            ("@daily", "expected 5 fields"),
            ("-1 * * * *", "not a plain number"),
            ("1e1 * * * *", "not a plain number"),
            ("99999999999 * * * *", "minute field"),
        ];
        for (expr, want) in cases {
            let err = Cron::parse(expr).expect_err(expr);
            assert!(
                err.contains(want),
                "{expr:?}: {err:?} should mention {want:?}"
            );
        }
    }

    #[test]
    fn never_firing_expressions_are_rejected() {
        let err = next_fire("0 0 30 2 *", at(FRIDAY)).unwrap_err();
        assert!(err.contains("never fires"), "{err}");
        assert!(next_fire("0 0 31 4 *", at(FRIDAY)).is_err());
        // Feb 30 OR Sunday still fires (union).
        assert_eq!(next("0 0 30 2 0", FRIDAY), "2027-02-07T00:00:00.000Z");
    }

    #[test]
    fn huge_steps_select_only_the_start() {
        let only = |expr: &str| Cron::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        for step in [
            "4294967295",
            "4294967296",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert_eq!(
                only(&format!("59/{step} * * * *")).minutes,
                1 << 59,
                "{step}"
            );
            assert_eq!(only(&format!("*/{step} * * * *")).minutes, 1, "{step}");
            assert_eq!(only(&format!("* 0-23/{step} * * *")).hours, 1, "{step}");
            assert_eq!(only(&format!("* * * * 7/{step}")).weekdays, 1, "{step}");
        }
        assert_eq!(
            next("59/4294967295 * * * *", FRIDAY),
            "2026-06-12T10:59:00.000Z"
        );
        assert_eq!(only("*/0060 * * * *").minutes, 1, "leading zeros");
        for zero in ["*/0 * * * *", "*/000 * * * *", "5/00 * * * *"] {
            let err = Cron::parse(zero).expect_err(zero);
            assert!(err.contains("step must be at least 1"), "{zero}: {err}");
        }
    }

    #[test]
    fn extreme_reference_times_never_panic() {
        let every = Cron::parse("* * * * *").unwrap();
        let rare = Cron::parse("0 0 29 2 1").unwrap();
        let max = DateTime::<Utc>::MAX_UTC.timestamp_micros();
        let min = DateTime::<Utc>::MIN_UTC.timestamp_micros();
        for t in [
            i64::MIN,
            i64::MAX,
            min,
            max,
            max - 60_000_000,
            min + 1,
            0,
            -1,
        ] {
            for c in [&every, &rare] {
                if let Some(next) = c.next_after(t) {
                    assert!(next > t, "{t} -> {next}");
                }
            }
        }
        assert_eq!(every.next_after(max), None, "no minute after the last one");
    }

    /// A small deterministic generator (xorshift), so the property test
    /// below needs no extra crate and fails the same way every time.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// One field's text built from pieces that have broken parsers before:
    /// edges of every field, overflowing numbers, empty terms, stray signs.
    fn weird_field(g: &mut Gen) -> String {
        const NUMS: [&str; 16] = [
            "0",
            "1",
            "7",
            "12",
            "23",
            "31",
            "59",
            "60",
            "00",
            "007",
            "4294967295",
            "4294967296",
            "18446744073709551616",
            "99999999999999999999999",
            "-1",
            "",
        ];
        const OTHER: [&str; 8] = ["*", "", "?", "L", "x", "1e1", "+1", " "];
        // Valid in every field, so that whole expressions often parse.
        const SAFE: [&str; 8] = [
            "*",
            "1",
            "1-1",
            "*/1",
            "/7",
            "1/4294967295",
            "1-7/2",
            "*/99999999999999999999",
        ];
        if g.next().is_multiple_of(2) {
            return (0..1 + g.next() % 2)
                .map(|_| g.pick(&SAFE))
                .collect::<Vec<_>>()
                .join(",");
        }
        let terms = 1 + g.next() % 3;
        let mut out = Vec::new();
        for _ in 0..terms {
            let range = match g.next() % 4 {
                0 => g.pick(&OTHER).to_string(),
                1 => g.pick(&NUMS).to_string(),
                _ => format!("{}-{}", g.pick(&NUMS), g.pick(&NUMS)),
            };
            out.push(match g.next() % 3 {
                0 => format!("{range}/{}", g.pick(&NUMS)),
                _ => range,
            });
        }
        out.join(",")
    }

    fn matches(c: &Cron, t: &DateTime<Utc>) -> bool {
        c.minutes & (1 << t.minute()) != 0
            && c.hours & (1 << t.hour()) != 0
            && c.months & (1 << t.month()) != 0
            && c.day_matches(t)
    }

    /// Property: parsing never panics; whatever parses selects only values
    /// inside each field; and the next fire time, within two days of the
    /// reference, is exactly what a naive minute-by-minute scan finds.
    #[test]
    fn weird_expressions_parse_safely_and_fire_correctly() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let from = at(FRIDAY);
        let start = DateTime::from_timestamp_micros(from)
            .unwrap()
            .with_second(0)
            .unwrap();
        let mut parsed = 0;
        for _ in 0..20_000 {
            let fields: Vec<String> = (0..5).map(|_| weird_field(&mut g)).collect();
            let expr = fields.join(" ");
            let Ok(c) = Cron::parse(&expr) else { continue };
            parsed += 1;
            let within = |bits: u64, lo: u32, hi: u32| {
                bits != 0 && bits >> (hi + 1) == 0 && bits & ((1 << lo) - 1) == 0
            };
            assert!(within(c.minutes, 0, 59), "{expr:?}");
            assert!(within(c.hours, 0, 23), "{expr:?}");
            assert!(within(c.days, 1, 31), "{expr:?}");
            assert!(within(c.months, 1, 12), "{expr:?}");
            assert!(within(c.weekdays, 0, 6), "{expr:?}");
            let naive = (1..=2 * 24 * 60)
                .map(|m| start + Duration::minutes(m))
                .find(|t| matches(&c, t))
                .map(|t| t.timestamp_micros());
            let next = c.next_after(from);
            match naive {
                Some(want) => assert_eq!(next, Some(want), "{expr:?}"),
                None => assert!(
                    next.is_none_or(|t| t > start.timestamp_micros() + 2 * 86_400_000_000),
                    "{expr:?}"
                ),
            }
        }
        assert!(
            parsed > 500,
            "the generator must produce valid expressions too ({parsed})"
        );
    }
}
