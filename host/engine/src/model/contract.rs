//! The resume contract (semantics §6.1) and failure classification (§6.2).

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResumeContract {
    pub side_effects: Vec<String>,
    pub idempotency_key: Option<String>,
    pub replay: &'static str,
    pub checkpoint_invariant: Value,
    pub verified_by: Value,
    pub credentials: Value,
}

impl ResumeContract {
    pub fn from_options(options: &Value) -> ResumeContract {
        let empty = serde_json::Map::new();
        let o = options.as_object().unwrap_or(&empty);
        let side_effects: Vec<String> = match o.get("sideEffects") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from))
                .collect(),
            _ => match o.get("sideEffect").and_then(Value::as_str) {
                Some(legacy) if legacy != "none" => vec![legacy.to_string()],
                _ => vec![],
            },
        };
        let idempotency_key = o
            .get("idempotencyKey")
            .and_then(Value::as_str)
            .map(String::from);
        let replay = match o.get("replay").and_then(Value::as_str) {
            Some("auto") => "auto",
            Some("manual") => "manual",
            Some("never") => "never",
            _ => match o.get("onAmbiguousFailure").and_then(Value::as_str) {
                Some("retry") => "auto",
                Some("review") => "manual",
                Some("fail") => "never",
                _ if side_effects.iter().all(|s| s == "read") => "auto",
                _ if idempotency_key.is_some() => "auto",
                _ => "manual",
            },
        };
        ResumeContract {
            side_effects,
            idempotency_key,
            replay,
            checkpoint_invariant: o.get("checkpointInvariant").cloned().unwrap_or(Value::Null),
            verified_by: o.get("verifiedBy").cloned().unwrap_or(Value::Null),
            credentials: match o.get("credentials") {
                Some(c @ Value::Array(_)) => c.clone(),
                _ => Value::Array(vec![]),
            },
        }
    }
}

/// Resume decision for a failed step when the caller gave none, and the
/// step status that follows from it.
pub fn classify_failure(
    contract: &ResumeContract,
    retryable: bool,
    given: Option<&str>,
) -> (String, &'static str) {
    let decision = match given {
        Some(d) => d.to_string(),
        None if retryable => "auto_retry".into(),
        None => match contract.replay {
            "manual" => "manual_review".into(),
            "never" => "fail_hard".into(),
            _ => "safe_replay".into(),
        },
    };
    let status = if retryable || decision == "auto_retry" {
        "failed_retryable"
    } else if decision == "manual_review" {
        "manual_review"
    } else {
        "failed"
    };
    (decision, status)
}
