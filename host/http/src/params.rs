//! Path and query parameters.
//!
//! Path parameters obey the name rule (`limits::check_name`) on every route:
//! each one is a name or an id used in a lookup or stored as text, so a NUL
//! (`%00`) or an over-long value is a 400 naming the parameter, the same on
//! both backends, before any handler runs. Query parameters are checked by
//! the handler that reads them, with the helpers below.

use super::body::enum_issue;
use super::error::ApiError;
use crate::clock::{Micros, from_iso};
use crate::engine::limits::{self, Range};
use axum::extract::RawPathParams;
use axum::extract::rejection::RawPathParamsRejection;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

pub type QueryMap = HashMap<String, String>;

/// The 400 for the first path parameter that breaks the name rule.
/// Undecodable parameters are left to the handler's own extractor.
pub fn refusal(params: Result<RawPathParams, RawPathParamsRejection>) -> Option<Response> {
    let params = params.ok()?;
    let broken = params
        .iter()
        .find_map(|(name, value)| limits::check_name(name, value).err())?;
    Some(ApiError::violation("path parameter", &broken).into_response())
}

/// An optional integer query parameter within `range`.
pub fn int(q: &QueryMap, key: &str, range: Range) -> Result<Option<i64>, ApiError> {
    q.get(key)
        .map(|v| {
            range
                .parse(key, v)
                .map_err(|e| ApiError::violation("query parameter", &e))
        })
        .transpose()
}

/// An optional query parameter that names something (a run, a resource).
pub fn name(q: &QueryMap, key: &str) -> Result<Option<String>, ApiError> {
    q.get(key)
        .map(|v| {
            limits::check_name(key, v)
                .map(|()| v.clone())
                .map_err(|e| ApiError::violation("query parameter", &e))
        })
        .transpose()
}

/// An optional query parameter that must be one of `options`.
pub fn one_of(q: &QueryMap, key: &str, options: &[&str]) -> Result<Option<String>, ApiError> {
    match q.get(key) {
        Some(v) if !options.contains(&v.as_str()) => Err(ApiError::invalid_in(
            "query parameter",
            vec![enum_issue(key, options, v)],
        )),
        v => Ok(v.cloned()),
    }
}

/// A comma-separated list of names (`?allow=a,b`); blanks around and
/// between items are dropped, so `a, b,` is `a` and `b`.
pub fn names(q: &QueryMap, key: &str) -> Result<Vec<String>, ApiError> {
    items(q, key)
        .map(|item| {
            limits::check_name(key, item)
                .map(|()| item.to_string())
                .map_err(|e| ApiError::violation("query parameter", &e))
        })
        .collect()
}

/// The items of a comma-separated parameter, without blanks around and
/// between them (none when it is absent).
fn items<'q>(q: &'q QueryMap, key: &str) -> impl Iterator<Item = &'q str> {
    q.get(key)
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The parameters of `q` that are not blank: list endpoints read a blank
/// one (`?status=`, as an empty form field sends it) as absent.
pub fn given(mut q: QueryMap) -> QueryMap {
    q.retain(|_, v| !v.trim().is_empty());
    q
}

/// Refuses a parameter not in `known`, naming it, so a misspelt filter is
/// not silently ignored.
pub fn only(q: &QueryMap, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&String> = q.keys().filter(|k| !known.contains(&k.as_str())).collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(key) => Err(ApiError::invalid_in(
            "query parameter",
            vec![json!({
                "code": "unrecognized_keys", "keys": unknown,
                "message": format!("Unknown parameter; expected one of {}", known.join(", ")),
                "path": [key],
            })],
        )),
    }
}

/// A comma-separated list whose items are each one of `options`.
pub fn list_of(q: &QueryMap, key: &str, options: &[&str]) -> Result<Vec<String>, ApiError> {
    items(q, key)
        .map(|item| {
            if options.contains(&item) {
                Ok(item.to_string())
            } else {
                Err(ApiError::invalid_in(
                    "query parameter",
                    vec![enum_issue(key, options, item)],
                ))
            }
        })
        .collect()
}

/// An optional ISO 8601 (RFC 3339) timestamp, as the API writes them.
pub fn instant(q: &QueryMap, key: &str) -> Result<Option<Micros>, ApiError> {
    q.get(key)
        .map(|v| {
            from_iso(v.trim()).ok_or_else(|| {
                ApiError::invalid_in(
                    "query parameter",
                    vec![json!({
                        "code": "invalid_string", "validation": "datetime",
                        "message": format!("Expected an ISO 8601 timestamp such as 2026-06-12T10:35:03.900Z, got {v:?}"),
                        "path": [key],
                    })],
                )
            })
        })
        .transpose()
}
