use serde_json::{Value, json};

/// Outcomes the doors translate into protocol responses.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404 with `{"error": <what> }`.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409 with the given body; shown as its `error` message.
    #[error("{}", .0["error"].as_str().unwrap_or("conflict"))]
    Conflict(Value),
    /// 400 with `{"error": <message>}`.
    #[error("{0}")]
    BadRequest(String),
    /// 400 with a validation issue naming the field and its limit.
    #[error("{0}")]
    Invalid(#[from] super::limits::Violation),
    /// 422 with `{"error": <message>}`.
    #[error("{0}")]
    Unprocessable(&'static str),
    /// The store failed (it says whether it was unavailable).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The host itself failed: shutting down mid-call, a body that did not
    /// serialise.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    pub fn run_not_found() -> EngineError {
        EngineError::NotFound("run not found")
    }

    pub fn run_cancelled(run: Option<&crate::model::Run>) -> EngineError {
        let mut body = json!({"error": "run is cancelled", "code": "run_cancelled"});
        if let Some(run) = run {
            body["run"] = json!(run);
        }
        EngineError::Conflict(body)
    }

    /// The request itself was refused (bad input, something missing), as
    /// opposed to a conflict with the run's state or a store failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            EngineError::BadRequest(_)
                | EngineError::NotFound(_)
                | EngineError::Unprocessable(_)
                | EngineError::Invalid(_)
        )
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, EngineError::Conflict(b) if b["code"] == "run_cancelled")
    }
}
