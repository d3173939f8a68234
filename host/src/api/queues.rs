//! Queue, schedule and recovery endpoints (`http-api.md` §3.9, §3.25–3.31).

use super::body::{Fields, RawBody};
use super::error::{ApiError, ApiResult};
use super::path::Path;
use crate::clock::Micros;
use crate::engine::{Engine, Enqueue, NewRun, Patch, QueueConfigPatch, ScheduleSpec};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// A Zod-style issue for checks `Fields` has no helper for.
fn issue(path: &str, code: &str, message: impl Into<String>) -> Value {
    json!({"code": code, "message": message.into(), "path": [path]})
}

/// Longest accepted `delayMs` / `deadlineMs`: 100 years.
const MAX_DELAY_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// A duration in milliseconds no longer than [`MAX_DELAY_MS`].
fn duration_ms(v: Option<i64>, key: &str, issues: &mut Vec<Value>) -> Option<i64> {
    match v {
        Some(ms) if ms > MAX_DELAY_MS => {
            issues.push(issue(
                key,
                "too_big",
                format!("Number must be less than or equal to {MAX_DELAY_MS}"),
            ));
            None
        }
        other => other,
    }
}

/// An integer that must fit the 32-bit column it is stored in.
fn int32(v: Option<i64>, key: &str, issues: &mut Vec<Value>) -> Option<i32> {
    let v = v?;
    match i32::try_from(v) {
        Ok(i) => Some(i),
        Err(_) => {
            let (code, bound) = if v > 0 {
                ("too_big", "less than or equal to 2147483647")
            } else {
                ("too_small", "greater than or equal to -2147483648")
            };
            issues.push(issue(key, code, format!("Number must be {bound}")));
            None
        }
    }
}

fn finish(f: Fields, extra: Vec<Value>) -> Result<(), ApiError> {
    match f.finish() {
        Err(ApiError::Json(status, mut body)) => {
            if let Some(list) = body["issues"].as_array_mut() {
                list.extend(extra);
            }
            Err(ApiError::Json(status, body))
        }
        Err(e) => Err(e),
        Ok(()) if extra.is_empty() => Ok(()),
        Ok(()) => Err(ApiError::invalid(extra)),
    }
}

/// `YYYY-MM-DDTHH:MM[:SS[.fraction]]Z` with a valid calendar date.
pub fn parse_datetime(s: &str) -> Option<Micros> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(day, 2) {
        return None;
    }
    let (clock, fraction) = match time.split_once('.') {
        Some((c, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (c, f),
        Some(_) => return None,
        None => (time, ""),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if !(parts.len() == 2 || parts.len() == 3) || !parts.iter().all(|p| digits(p, 2)) {
        return None;
    }
    if parts.len() == 2 && !fraction.is_empty() {
        return None;
    }
    let num = |t: &str| t.parse::<u32>().ok();
    let date = chrono::NaiveDate::from_ymd_opt(num(y)? as i32, num(m)?, num(day)?)?;
    let sec = parts.get(2).map_or(Some(0), |p| num(p))?;
    let micros: u32 = format!("{fraction:0<6}")[..6].parse().ok()?;
    let t = date.and_hms_micro_opt(num(parts[0])?, num(parts[1])?, sec, micros)?;
    Some(t.and_utc().timestamp_micros())
}

pub async fn enqueue(
    State(engine): State<Engine>,
    Path(queue): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let mut extra = Vec::new();
    let workflow = f.name("workflowName");
    let run = NewRun {
        workflow_name: workflow,
        input: f.any("input").unwrap_or(Value::Null),
        metadata: f.opt_record("metadata").unwrap_or_else(|| json!({})),
        recovery_webhook: f.opt_url("recoveryWebhook"),
        channels: f.opt_channels("channels"),
    };
    let mut req = Enqueue::new(queue, run);
    req.dedupe_key = f.opt_name("dedupeKey");
    req.delay_ms = duration_ms(f.opt_int("delayMs", 0, false), "delayMs", &mut extra);
    if let Some(text) = f.opt_str("runAt") {
        req.run_at = parse_datetime(&text);
        if req.run_at.is_none() {
            extra.push(json!({"code": "invalid_string", "validation": "datetime", "message": "Invalid datetime", "path": ["runAt"]}));
        }
    }
    req.max_attempts = int32(
        f.opt_int("maxAttempts", 1, false),
        "maxAttempts",
        &mut extra,
    );
    req.priority = int32(
        f.opt_int("priority", i64::MIN, false),
        "priority",
        &mut extra,
    );
    req.deadline_ms = duration_ms(f.opt_int("deadlineMs", 1, false), "deadlineMs", &mut extra);
    finish(f, extra)?;
    let (run, deduplicated) = engine.enqueue(req).await?;
    Ok(Json(json!({"run": run, "deduplicated": deduplicated})))
}

pub async fn claim(State(engine): State<Engine>, body: RawBody) -> ApiResult {
    let mut f = body.fields()?;
    let mut extra = Vec::new();
    let queues: Vec<String> = match f.any("queues") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let names: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if names.len() != items.len() {
                extra.push(issue(
                    "queues",
                    "invalid_type",
                    "Expected an array of non-empty strings",
                ));
            }
            names
        }
        Some(Value::Array(_)) => {
            extra.push(issue(
                "queues",
                "too_small",
                "Array must contain at least 1 element(s)",
            ));
            vec![]
        }
        Some(_) => {
            extra.push(issue("queues", "invalid_type", "Expected array"));
            vec![]
        }
        None => {
            extra.push(json!({"code": "invalid_type", "expected": "array", "received": "undefined", "message": "Required", "path": ["queues"]}));
            vec![]
        }
    };
    let owner = f
        .opt_str("leaseOwner")
        .unwrap_or_else(crate::ids::lease_owner);
    let limit = f.opt_int("limit", 1, false);
    if limit.is_some_and(|l| l > 100) {
        extra.push(issue(
            "limit",
            "too_big",
            "Number must be less than or equal to 100",
        ));
    }
    finish(f, extra)?;
    let runs = engine
        .claim_queued(Some(&queues), &owner, limit.unwrap_or(1), false)
        .await?;
    Ok(Json(json!({"runs": runs, "leaseOwner": owner})))
}

pub async fn list(State(engine): State<Engine>) -> ApiResult {
    Ok(Json(json!({"queues": engine.queue_stats().await?})))
}

/// Omitted keeps, `null` clears, a value sets.
fn patch<T>(f: &mut Fields, key: &str, read: impl FnOnce(&mut Fields) -> Option<T>) -> Patch<T> {
    match f.any(key) {
        None => Patch::Keep,
        Some(Value::Null) => Patch::Clear,
        Some(_) => read(f).map_or(Patch::Keep, Patch::Set),
    }
}

pub async fn configure(
    State(engine): State<Engine>,
    Path(queue): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let mut extra = Vec::new();
    let concurrency = patch(&mut f, "concurrency", |f| {
        f.opt_int("concurrency", 1, false)
    });
    let rate = patch(&mut f, "ratePerMinute", |f| {
        f.opt_int("ratePerMinute", 1, false)
    });
    for (key, p) in [("concurrency", &concurrency), ("ratePerMinute", &rate)] {
        if let Patch::Set(v) = p {
            int32(Some(*v), key, &mut extra);
        }
    }
    let invoke_url = patch(&mut f, "invokeUrl", |f| f.opt_url("invokeUrl"));
    finish(f, extra)?;
    let config = engine
        .configure_queue(
            &queue,
            QueueConfigPatch {
                concurrency,
                rate_per_minute: rate,
                invoke_url,
            },
        )
        .await?;
    Ok(Json(json!({"config": config})))
}

pub async fn put_schedule(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    body: RawBody,
) -> ApiResult {
    let mut f = body.fields()?;
    let mut extra = Vec::new();
    let spec = ScheduleSpec {
        cron: f.name("cron"),
        workflow_name: f.name("workflowName"),
        input: f.any("input").unwrap_or(Value::Null),
        queue: f.opt_name("queue"),
        max_attempts: int32(
            f.opt_int("maxAttempts", 1, false),
            "maxAttempts",
            &mut extra,
        ),
        enabled: f.opt_bool("enabled"),
    };
    finish(f, extra)?;
    Ok(Json(
        json!({"schedule": engine.put_schedule(&name, spec).await?}),
    ))
}

pub async fn get_schedule(State(engine): State<Engine>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(json!({"schedule": engine.get_schedule(&name).await?})))
}

pub async fn list_schedules(State(engine): State<Engine>) -> ApiResult {
    Ok(Json(json!({"schedules": engine.list_schedules().await?})))
}

pub async fn delete_schedule(State(engine): State<Engine>, Path(name): Path<String>) -> ApiResult {
    engine.delete_schedule(&name).await?;
    Ok(Json(json!({"deleted": name})))
}

/// `POST /runs/:id/recover`: an absent or unparsable body is `{}`.
pub async fn recover(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    body: RawBody,
) -> ApiResult {
    let b = body.json_or_empty();
    if b.is_null() {
        return Err(ApiError::bad_request(
            "request body must be a JSON object, got null",
        ));
    }
    let reason = b.get("reason").filter(|v| !v.is_null()).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Ok(Json(
        json!({"recoveryAttempt": engine.recover_run(&id, reason).await?}),
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes_need_utc_and_a_real_date() {
        let iso = |s: &str| parse_datetime(s).map(crate::clock::iso);
        assert_eq!(
            iso("2026-06-12T10:31:00.000Z").as_deref(),
            Some("2026-06-12T10:31:00.000Z")
        );
        assert_eq!(
            iso("2026-06-12T10:31Z").as_deref(),
            Some("2026-06-12T10:31:00.000Z")
        );
        assert_eq!(
            iso("2026-06-12T10:31:05Z").as_deref(),
            Some("2026-06-12T10:31:05.000Z")
        );
        assert_eq!(
            iso("2026-06-12T10:31:05.1234567Z").as_deref(),
            Some("2026-06-12T10:31:05.123Z")
        );
        for bad in [
            "2026-06-12T10:31:00+02:00",
            "2026-06-12T10:31:00",
            "2026-02-30T10:31:00Z",
            "2026-6-12T10:31:00Z",
            "2026-06-12 10:31:00Z",
            "2026-06-12T25:00Z",
            "2026-06-12T10:31.5Z",
            "2026-06-12T10:31:00.Z",
            "tomorrow",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }
}
