//! Queue, schedule and recovery endpoints (`http-api.md` §3.9, §3.25–3.31).

use super::body::{Fields, RawBody};
use super::error::{ApiError, ApiResult};
use super::path::Path;
use crate::clock::Micros;
use crate::engine::limits::{self, Range};
use crate::engine::{Engine, Enqueue, NewRun, Patch, QueueConfigPatch, ScheduleSpec};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// A checked integer that fits a 32-bit column.
fn int32(f: &mut Fields, key: &str, range: Range) -> Option<i32> {
    f.int_in(key, range).and_then(|v| i32::try_from(v).ok())
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
    let workflow = f.string("workflowName");
    let run = NewRun {
        workflow_name: workflow,
        input: f.any("input").unwrap_or(Value::Null),
        metadata: f.opt_record("metadata").unwrap_or_else(|| json!({})),
        recovery_webhook: f.opt_url("recoveryWebhook"),
        channels: f.opt_channels("channels"),
    };
    let mut req = Enqueue::new(queue, run);
    req.dedupe_key = f.opt_key("dedupeKey");
    req.delay_ms = f.int_in("delayMs", limits::DELAY_MS);
    if let Some(text) = f.opt_str("runAt") {
        req.run_at = parse_datetime(&text);
        if req.run_at.is_none() {
            f.push_issue(json!({"code": "invalid_string", "validation": "datetime", "message": "Invalid datetime", "path": ["runAt"]}));
        }
    }
    req.max_attempts = int32(&mut f, "maxAttempts", limits::POSITIVE_INT32);
    req.priority = int32(&mut f, "priority", limits::PRIORITY);
    req.deadline_ms = f.int_in("deadlineMs", limits::DEADLINE_MS);
    f.finish()?;
    let (run, deduplicated) = engine.enqueue(req).await?;
    Ok(Json(json!({"run": run, "deduplicated": deduplicated})))
}

pub async fn claim(State(engine): State<Engine>, body: RawBody) -> ApiResult {
    let mut f = body.fields()?;
    let queues: Vec<String> = match f.any("queues") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut names = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let checked = match item.as_str() {
                    Some(name) => limits::check_name("queues", name).map(|()| name),
                    None => {
                        f.push_issue(json!({"code": "invalid_type", "expected": "string", "message": "Expected string", "path": ["queues", i]}));
                        continue;
                    }
                };
                match checked {
                    Ok(name) => names.push(name.to_string()),
                    Err(v) => f.push_issue(v.issue(json!(["queues", i]))),
                }
            }
            names
        }
        Some(Value::Array(_)) => {
            f.push_issue(json!({"code": "too_small", "message": "Array must contain at least 1 element(s)", "path": ["queues"]}));
            vec![]
        }
        Some(_) => {
            f.push_issue(
                json!({"code": "invalid_type", "message": "Expected array", "path": ["queues"]}),
            );
            vec![]
        }
        None => {
            f.push_issue(json!({"code": "invalid_type", "expected": "array", "received": "undefined", "message": "Required", "path": ["queues"]}));
            vec![]
        }
    };
    let owner = f
        .opt_str("leaseOwner")
        .unwrap_or_else(crate::ids::lease_owner);
    let limit = f.int_in("limit", limits::CLAIM_LIMIT);
    f.finish()?;
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
    let concurrency = patch(&mut f, "concurrency", |f| {
        f.int_in("concurrency", limits::POSITIVE_INT32)
    });
    let rate = patch(&mut f, "ratePerMinute", |f| {
        f.int_in("ratePerMinute", limits::POSITIVE_INT32)
    });
    let invoke_url = patch(&mut f, "invokeUrl", |f| f.opt_url("invokeUrl"));
    f.finish()?;
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
    let spec = ScheduleSpec {
        cron: f.name("cron"),
        workflow_name: f.key("workflowName"),
        input: f.any("input").unwrap_or(Value::Null),
        queue: f.opt_key("queue"),
        max_attempts: int32(&mut f, "maxAttempts", limits::POSITIVE_INT32),
        enabled: f.opt_bool("enabled"),
    };
    f.finish()?;
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
    if let Some(r) = &reason {
        limits::check_text("reason", r).map_err(|v| ApiError::violation("request body", &v))?;
    }
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
