//! Path and query parameters.
//!
//! Path parameters obey the name rule (`limits::check_name`) on every route:
//! each one is a name or an id used in a lookup or stored as text, so a NUL
//! (`%00`) or an over-long value is a 400 naming the parameter, the same on
//! both backends, before any handler runs. Query parameters are checked by
//! the handler that reads them, with the helpers below.

use super::body::enum_issue;
use super::error::ApiError;
use crate::engine::limits::{self, Range};
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

pub type QueryMap = HashMap<String, String>;

pub async fn check(
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    // Undecodable parameters are left to the handler's own extractor.
    if let Ok(params) = params {
        for (name, value) in &params {
            if let Err(v) = limits::check_name(name, value) {
                return ApiError::violation("path parameter", &v).into_response();
            }
        }
    }
    next.run(req).await
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
    let Some(list) = q.get(key) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            limits::check_name(key, item)
                .map(|()| item.to_string())
                .map_err(|e| ApiError::violation("query parameter", &e))
        })
        .collect()
}
