//! Every bound on input, in one place. The doors (HTTP bodies, query strings
//! and path parameters, CLI flags, environment variables) check values here
//! before anything is computed or stored, so out-of-range numbers never
//! overflow and strings the databases disagree about never reach them.
//! `docs/compatibility.md` ("Input limits") lists the same bounds for users.

use serde_json::{Value, json};
use std::fmt;

/// An inclusive range of integers an input must fall in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub min: i64,
    pub max: i64,
}

impl Range {
    pub const fn new(min: i64, max: i64) -> Range {
        Range { min, max }
    }

    /// `v` itself, or the violation naming `field` and this range.
    pub fn check(&self, field: &str, v: i64) -> Result<i64, Violation> {
        if v < self.min {
            Err(self.violation(field, "too_small"))
        } else if v > self.max {
            Err(self.violation(field, "too_big"))
        } else {
            Ok(v)
        }
    }

    /// A decimal integer from text (a query string, a flag, the environment).
    /// Surrounding whitespace is ignored; anything else that is not an
    /// in-range integer, including numbers too large for 64 bits, is refused.
    pub fn parse(&self, field: &str, text: &str) -> Result<i64, Violation> {
        match text.trim().parse::<i64>() {
            Ok(v) => self.check(field, v),
            // Digits that overflow i64 are out of range, not malformed.
            Err(_) if is_integer_text(text.trim()) => {
                let code = if text.trim().starts_with('-') {
                    "too_small"
                } else {
                    "too_big"
                };
                Err(self.violation(field, code))
            }
            Err(_) => Err(Violation::new(
                field,
                json!({"code": "invalid_type", "expected": "integer", "received": "string",
                       "minimum": self.min, "maximum": self.max}),
                format!(
                    "Expected an integer between {} and {}, got {text:?}",
                    self.min, self.max
                ),
            )),
        }
    }

    /// A clap value parser for a flag; clap names the flag, the message
    /// names `env` too when the value may come from that variable.
    pub fn parser<T: TryFrom<i64>>(
        self,
        env: Option<&'static str>,
    ) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
        move |text: &str| {
            let v = self.parse(env.unwrap_or("value"), text);
            let v = v.map_err(|e| match env {
                Some(var) => format!("{} (flag or {var})", e.message),
                None => e.message,
            })?;
            // Every range here fits its setting's type; this cannot fail.
            T::try_from(v).map_err(|_| format!("{v} is out of range"))
        }
    }

    pub fn violation(&self, field: &str, code: &str) -> Violation {
        Violation::new(
            field,
            json!({"code": code, "minimum": self.min, "maximum": self.max,
                   "type": "number", "inclusive": true}),
            format!("Number must be between {} and {}", self.min, self.max),
        )
    }
}

fn is_integer_text(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// 100 years of 366 days in ms: the longest queue delay or deadline.
const HUNDRED_YEARS_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// Longest name, in characters, of anything looked up by name: workflows,
/// steps, gates, queues, schedules, state streams, child edges, and dedupe
/// keys, and of every path parameter. Postgres cannot index a text value
/// much over 2 KiB; 256 characters are at most 1 KiB of UTF-8, so a queue
/// name and a dedupe key fit one index entry together.
pub const NAME_CHARS: usize = 256;

/// Bytes of a resource secret.
pub const SECRET_BYTES: Range = Range::new(1, 8192);

/// Token counts of a usage record: up to 2^53 − 1, the largest integer a
/// JSON client holds exactly, so a derived total or a client's sum over many
/// records cannot wrap a 64-bit integer either.
pub const TOKENS: Range = Range::new(0, (1 << 53) - 1);
/// `delayMs` of an enqueue.
pub const DELAY_MS: Range = Range::new(0, HUNDRED_YEARS_MS);
/// `deadlineMs` of an enqueue.
pub const DEADLINE_MS: Range = Range::new(1, HUNDRED_YEARS_MS);
/// `priority` of an enqueue (a 32-bit column).
pub const PRIORITY: Range = Range::new(i32::MIN as i64, i32::MAX as i64);
/// `maxAttempts`, `concurrency`, `ratePerMinute` (32-bit columns).
pub const POSITIVE_INT32: Range = Range::new(1, i32::MAX as i64);
/// `limit` of `POST /queues/claim` (the protocol's bound).
pub const CLAIM_LIMIT: Range = Range::new(1, 100);
/// Deploy `memoryMb`: the host's instance pool reserves the largest of
/// these ([`MAX_MEMORY_BYTES`]) per instance, so more could never be granted.
pub const MEMORY_MB: Range = Range::new(1, 256);
/// Linear memory the instance pool reserves per instance: `MEMORY_MB.max`.
pub const MAX_MEMORY_BYTES: usize = (MEMORY_MB.max as usize) << 20;
/// Deploy `cpuMs`: guest CPU per activation, up to one hour.
pub const CPU_MS: Range = Range::new(1, 3_600_000);
/// `TIDEBASE_LEASE_MS`: run and step leases from 100 ms to one day.
pub const LEASE_MS: Range = Range::new(100, 86_400_000);
/// `TIDEBASE_RECONCILE_MS`: reconciler period from 10 ms to one hour.
pub const RECONCILE_MS: Range = Range::new(10, 3_600_000);
/// `TIDEBASE_WEBHOOK_TIMEOUT_MS`: each outbound call, up to five minutes.
pub const WEBHOOK_TIMEOUT_MS: Range = Range::new(1, 300_000);
/// `TIDEBASE_WASM_WORKERS`: concurrent wasm activations (0 disables).
pub const WASM_WORKERS: Range = Range::new(0, 1024);
/// Pure step checkpoints a wasm activation groups into one write
/// (`TIDEBASE_WASM_GROUP_COMMIT`).
pub const GROUP_COMMIT_STEPS: Range = Range::new(1, 1000);
/// Deploy `egressTimeoutMs`: each brokered call, up to five minutes.
pub const EGRESS_TIMEOUT_MS: Range = Range::new(1, 300_000);
/// Deploy `egressMaxBytes`: a brokered response body lands in guest memory,
/// so it is capped at the largest memory a deploy may grant.
pub const EGRESS_MAX_BYTES: Range = Range::new(1, MEMORY_MB.max << 20);
/// `TIDEBASE_GRANT_APPROVAL_TTL_S`: how long a grant waits for approval,
/// up to a year.
pub const GRANT_APPROVAL_TTL_S: Range = Range::new(1, 31_536_000);
/// `limit` of `GET /audit`, and the page size when none is given.
pub const AUDIT_LIMIT: Range = Range::new(1, 500);
pub const AUDIT_LIMIT_DEFAULT: i64 = 100;
/// `TIDEBASE_PROVE_RATE` and `TIDEBASE_GRANT_RATE`: requests per minute.
pub const RATE_PER_MINUTE: Range = Range::new(1, i32::MAX as i64);
/// Largest request body on a broker route (broker.md §1.4).
pub const BROKER_BODY_BYTES: usize = 65_536;

/// `limit` of the operator lists (`GET /runs?…`, `GET /gates`), and the
/// page size when none is given (also the size of v0.5's plain `GET /runs`).
pub const LIST_LIMIT: Range = Range::new(1, 200);
pub const LIST_LIMIT_DEFAULT: i64 = 100;

/// One rejected input: the field it came from and a Zod-style issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub field: String,
    pub message: String,
    /// `code` and code-specific extras (`minimum`, `maximum`, …).
    detail: Value,
}

impl Violation {
    fn new(field: &str, detail: Value, message: String) -> Violation {
        Violation {
            field: field.to_string(),
            message,
            detail,
        }
    }

    /// The issue as the protocol reports it, at `path`.
    pub fn issue(&self, path: Value) -> Value {
        let mut issue = self.detail.clone();
        issue["message"] = json!(self.message);
        issue["path"] = path;
        issue
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Violation {}

/// A string stored in a text column: Postgres refuses NUL there (SQLite
/// would keep it), so it is refused everywhere.
pub fn check_text(field: &str, s: &str) -> Result<(), Violation> {
    if s.contains('\0') {
        return Err(Violation::new(
            field,
            json!({"code": "invalid_string", "validation": "no_nul"}),
            "String must not contain NUL (\\u0000) characters".into(),
        ));
    }
    Ok(())
}

/// Text that must not be empty (a prompt, a label, an input hash).
pub fn check_nonempty(field: &str, s: &str) -> Result<(), Violation> {
    check_text(field, s)?;
    if s.is_empty() {
        return Err(Violation::new(
            field,
            json!({"code": "too_small", "minimum": 1, "type": "string", "inclusive": true}),
            "String must contain at least 1 character(s)".into(),
        ));
    }
    Ok(())
}

/// [`check_text`] of an optional field.
pub fn check_opt_text(field: &str, s: Option<&str>) -> Result<(), Violation> {
    s.map_or(Ok(()), |s| check_text(field, s))
}

/// A name (see [`NAME_CHARS`]): text of 1 to `NAME_CHARS` characters.
pub fn check_name(field: &str, s: &str) -> Result<(), Violation> {
    check_nonempty(field, s)?;
    if s.chars().count() > NAME_CHARS {
        return Err(Violation::new(
            field,
            json!({"code": "too_big", "maximum": NAME_CHARS, "type": "string", "inclusive": true}),
            format!("String must contain at most {NAME_CHARS} character(s)"),
        ));
    }
    Ok(())
}

/// An amount that cannot be negative (a cost). JSON has no NaN, so every
/// number a door decodes compares.
pub fn check_non_negative(field: &str, n: f64) -> Result<(), Violation> {
    if n < 0.0 {
        return Err(Violation::new(
            field,
            json!({"code": "too_small", "minimum": 0, "type": "number", "inclusive": true}),
            "Number must be greater than or equal to 0".into(),
        ));
    }
    Ok(())
}

/// A JSON number as a 64-bit integer for a [`Range`] check: integers beyond
/// 64 bits, and integral floats, saturate (and so fall out of range);
/// fractions are not integers (`None`).
pub fn json_int(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return Some(i64::MAX);
    }
    // `as` saturates from float to integer, which is the point here.
    n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)
}

/// Webhook, invoke and channel URLs: absolute `http` or `https` with a host.
pub fn check_http_url(field: &str, s: &str) -> Result<(), Violation> {
    check_text(field, s)?;
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(Violation::new(
            field,
            json!({"code": "invalid_string", "validation": "url"}),
            "Expected an absolute http or https URL".into(),
        )),
    }
}

/// The version after `current` of a numbered sequence (state, deployments).
pub fn next_version(current: i32) -> Result<i32, Violation> {
    current
        .checked_add(1)
        .ok_or_else(|| Range::new(1, i32::MAX as i64).violation("version", "too_big"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_field_and_both_bounds() {
        assert_eq!(MEMORY_MB.check("memoryMb", 256), Ok(256));
        let e = MEMORY_MB.check("memoryMb", 0).unwrap_err();
        assert_eq!(e.to_string(), "memoryMb: Number must be between 1 and 256");
        let issue = e.issue(json!(["memoryMb"]));
        assert_eq!(issue["code"], "too_small");
        assert_eq!(
            (issue["minimum"].clone(), issue["maximum"].clone()),
            (json!(1), json!(256))
        );
        assert_eq!(
            MEMORY_MB.check("m", 257).unwrap_err().issue(json!([]))["code"],
            "too_big"
        );
    }

    #[test]
    fn text_numbers_never_overflow() {
        let r = LEASE_MS;
        assert_eq!(r.parse("f", " 60000 "), Ok(60_000));
        for (text, code) in [
            ("9223372036854775807", "too_big"),
            ("99999999999999999999999", "too_big"),
            ("-99999999999999999999999", "too_small"),
            ("0", "too_small"),
            ("-1", "too_small"),
            ("1e3", "invalid_type"),
            ("", "invalid_type"),
            ("12ms", "invalid_type"),
        ] {
            let e = r.parse("f", text).unwrap_err();
            assert_eq!(e.issue(json!([]))["code"], code, "{text:?}");
        }
        let as_u32 = WASM_WORKERS.parser::<u32>(Some("TIDEBASE_WASM_WORKERS"));
        assert_eq!(as_u32("8"), Ok(8));
        let e = as_u32("1025").unwrap_err();
        assert!(
            e.contains("between 0 and 1024") && e.contains("TIDEBASE_WASM_WORKERS"),
            "{e}"
        );
    }

    #[test]
    fn names_and_text() {
        assert!(check_name("n", "ok").is_ok());
        assert!(check_name("n", &"é".repeat(NAME_CHARS)).is_ok());
        assert!(check_name("n", &"é".repeat(NAME_CHARS + 1)).is_err());
        assert!(check_name("n", "").is_err());
        assert!(check_name("n", "a\0b").is_err());
        assert!(check_text("t", &"x".repeat(100_000)).is_ok());
        assert!(check_text("t", "\0").is_err());
        assert!(check_nonempty("t", &"x".repeat(100_000)).is_ok());
        assert!(check_nonempty("t", "").is_err());
        assert!(check_opt_text("t", None).is_ok());
        assert!(check_opt_text("t", Some("\0")).is_err());
    }

    #[test]
    fn json_numbers_become_integers_that_saturate() {
        let int = |text: &str| json_int(&serde_json::from_str(text).unwrap());
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("-7"), Some(-7));
        assert_eq!(int("18446744073709551615"), Some(i64::MAX));
        assert_eq!(int("3.0"), Some(3));
        assert_eq!(int("1e300"), Some(i64::MAX));
        assert_eq!(int("-1e300"), Some(i64::MIN));
        assert_eq!(int("1.5"), None);
        assert!(check_non_negative("c", 0.0).is_ok());
        let e = check_non_negative("c", -0.01).unwrap_err();
        assert_eq!(e.issue(json!(["c"]))["code"], "too_small");
    }

    #[test]
    fn only_http_urls() {
        for ok in [
            "http://x.example",
            "https://x.example:8443/a?b=c",
            "http://127.0.0.1:9/",
        ] {
            assert!(check_http_url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            "mailto:x@y",
            "ftp://x.example/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "/relative",
            "http//x",
            "https://x.example/\0",
            "",
        ] {
            assert!(check_http_url("u", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_stop_instead_of_wrapping() {
        assert_eq!(next_version(1), Ok(2));
        assert!(next_version(i32::MAX).is_err());
    }
}
