//! Protocol error responses.

use crate::engine::EngineError;
use crate::engine::limits::Violation;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub enum ApiError {
    /// Any status with a JSON body.
    Json(StatusCode, Value),
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::Json(StatusCode::BAD_REQUEST, json!({"error": message.into()}))
    }

    pub fn invalid(issues: Vec<Value>) -> ApiError {
        ApiError::invalid_in("request body", issues)
    }

    /// A validation failure of `part` ("query parameter", "path parameter"):
    /// the error names the field and its limit, `issues` as for bodies.
    pub fn invalid_in(part: &str, issues: Vec<Value>) -> ApiError {
        let error = match issues.as_slice() {
            [one] if part != "request body" => {
                format!(
                    "invalid {part} {}: {}",
                    one["path"][0],
                    one["message"].as_str().unwrap_or_default()
                )
            }
            _ => format!("invalid {part}"),
        };
        ApiError::Json(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "issues": issues}),
        )
    }

    /// One field that broke a limit, reported like a body issue.
    pub fn violation(part: &str, v: &Violation) -> ApiError {
        ApiError::invalid_in(part, vec![v.issue(json!([v.field]))])
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::NotFound(what) => {
                ApiError::Json(StatusCode::NOT_FOUND, json!({"error": what}))
            }
            EngineError::Conflict(body) => ApiError::Json(StatusCode::CONFLICT, body),
            EngineError::BadRequest(msg) => ApiError::bad_request(msg),
            EngineError::Invalid(v) => ApiError::violation("request body", &v),
            EngineError::Unprocessable(msg) => {
                ApiError::Json(StatusCode::UNPROCESSABLE_ENTITY, json!({"error": msg}))
            }
            EngineError::Store(err) => ApiError::Internal(err.into()),
            EngineError::Internal(err) => ApiError::Internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Json(status, body) => (status, axum::Json(body)).into_response(),
            ApiError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                let body = json!({"error": "internal server error"});
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
            }
        }
    }
}

pub type ApiResult = Result<axum::Json<Value>, ApiError>;
