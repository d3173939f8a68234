//! Path parameters obey the name rule (`limits::check_name`) on every route:
//! each one is a name or an id used in a lookup or stored as text, so a NUL
//! (`%00`) or an over-long value is a 400 naming the parameter, the same on
//! both backends, before any handler runs.

use super::error::ApiError;
use crate::engine::limits;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
