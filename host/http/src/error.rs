//! Protocol error responses.

use crate::engine::broker::{AuthRefusal, GrantRefusal, ProxyFailure};
use crate::engine::limits::Violation;
use crate::engine::{Conflict, EngineError, LeaseLost};
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

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::Json(StatusCode::NOT_FOUND, json!({"error": message.into()}))
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
        let status = match e {
            EngineError::Invalid(v) => return ApiError::violation("request body", &v),
            EngineError::Store(err) => return ApiError::Internal(err.into()),
            EngineError::Internal(err) => return ApiError::Internal(err),
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::LeaseLost(_) | EngineError::RunCancelled(_) | EngineError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            EngineError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EngineError::Unprocessable(_) | EngineError::InvalidComponent(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            EngineError::WasmDisabled => StatusCode::NOT_FOUND,
            EngineError::EgressRefused(_) => StatusCode::FORBIDDEN,
            EngineError::Grant(ref refusal) => grant_status(refusal),
            EngineError::Auth(ref r) => auth_status(r),
        };
        ApiError::Json(status, body(&e))
    }
}

/// `{"error": <message>}`, plus the `code` clients branch on and the record
/// the request met.
fn body(e: &EngineError) -> Value {
    let mut body = json!({"error": e.to_string()});
    let code = json!(if e.is_cancelled() {
        "run_cancelled"
    } else {
        "lease_lost"
    });
    match e {
        EngineError::RunCancelled(run) => {
            body["code"] = code;
            if let Some(run) = run {
                body["run"] = json!(run);
            }
        }
        EngineError::LeaseLost(LeaseLost::Heartbeat(run)) => {
            body["code"] = code;
            body["run"] = json!(run);
        }
        EngineError::LeaseLost(LeaseLost::Run { owner }) => body["leaseOwner"] = json!(owner),
        EngineError::Conflict(Conflict::RunLeased { owner }) => body["leaseOwner"] = json!(owner),
        EngineError::Conflict(Conflict::RunCompleted(run)) => body["run"] = json!(run),
        EngineError::Conflict(Conflict::GateDecided(gate)) => body["gate"] = json!(gate),
        EngineError::EgressRefused(refusal) => body["code"] = json!(refusal.class.as_str()),
        EngineError::Grant(refusal) => {
            if let Some(code) = refusal.code() {
                body["code"] = json!(code);
            }
            match refusal {
                GrantRefusal::ScopesExceedCeiling(denied) => body["deniedScopes"] = json!(denied),
                GrantRefusal::PolicyDenied { reason } => body["reason"] = json!(reason),
                GrantRefusal::Proxy { provider, .. } => body["provider"] = json!(provider),
                _ => {}
            }
        }
        EngineError::Auth(r) => {
            if let Some(code) = auth_code(r) {
                body["code"] = json!(code);
            }
        }
        _ => {}
    }
    body
}

/// The status upstream answers each grant refusal with (broker.md §1.7).
fn grant_status(refusal: &GrantRefusal) -> StatusCode {
    match refusal {
        GrantRefusal::SessionRequired => StatusCode::UNAUTHORIZED,
        GrantRefusal::CrossTenant
        | GrantRefusal::ScopesExceedCeiling(_)
        | GrantRefusal::PolicyDenied { .. }
        | GrantRefusal::CallDenied(_) => StatusCode::FORBIDDEN,
        GrantRefusal::ResourceNotConnected => StatusCode::NOT_FOUND,
        GrantRefusal::MintUnavailable | GrantRefusal::BadSecret(_) => StatusCode::BAD_REQUEST,
        GrantRefusal::GrantUnusable | GrantRefusal::GrantFinal(_) => StatusCode::CONFLICT,
        GrantRefusal::CustodyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        GrantRefusal::Proxy { failure, .. } => match failure {
            ProxyFailure::SsrfBlocked => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_GATEWAY,
        },
    }
}

fn auth_status(r: &AuthRefusal) -> StatusCode {
    match r {
        AuthRefusal::BrokerDisabled | AuthRefusal::ChallengeUnconfigured => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        AuthRefusal::Unauthorized
        | AuthRefusal::InvalidProof
        | AuthRefusal::BadChallenge
        | AuthRefusal::ChallengeUsed
        | AuthRefusal::BadSignature => StatusCode::UNAUTHORIZED,
        AuthRefusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AuthRefusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        AuthRefusal::AgentInactive | AuthRefusal::DevTokenDisabled => StatusCode::FORBIDDEN,
        AuthRefusal::NoPublicKey | AuthRefusal::ProofIncomplete => StatusCode::BAD_REQUEST,
        AuthRefusal::NoProvider(_) => StatusCode::NOT_IMPLEMENTED,
    }
}

/// The `code` of a broker refusal, where upstream sends one.
fn auth_code(r: &AuthRefusal) -> Option<&'static str> {
    Some(match r {
        AuthRefusal::BrokerDisabled => "broker_disabled",
        AuthRefusal::RateLimited(_) => "rate_limited",
        AuthRefusal::BodyTooLarge => "body_too_large",
        AuthRefusal::DevTokenDisabled => "dev_token_disabled",
        _ => return None,
    })
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
