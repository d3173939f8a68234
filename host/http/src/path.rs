//! Path parameters, whose decoding errors are JSON naming the parameter.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use serde_json::json;

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        let PathRejection::FailedToDeserializePathParams(e) = &rejection else {
            return ApiError::Internal(anyhow::anyhow!("{rejection}"));
        };
        let message = match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => {
                return ApiError::Json(
                    StatusCode::BAD_REQUEST,
                    json!({
                        "error": format!("path parameter `{key}` is not valid UTF-8 once percent-decoded"),
                        "parameter": key,
                    }),
                );
            }
            other => other.to_string(),
        };
        if rejection.status() == StatusCode::BAD_REQUEST {
            ApiError::bad_request(format!("invalid path: {message}"))
        } else {
            ApiError::Internal(anyhow::anyhow!("{message}"))
        }
    }
}
