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
    /// 422 with `{"error": <message>}`.
    #[error("{0}")]
    Unprocessable(&'static str),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
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

    pub fn is_cancelled(&self) -> bool {
        matches!(self, EngineError::Conflict(b) if b["code"] == "run_cancelled")
    }
}
