//! The JSON-RPC 2.0 subset MCP's stdio transport uses: one message per
//! line, requests (with an `id`) answered by a result or an error,
//! notifications (without one) never answered. Batches are not part of MCP
//! since 2025-06-18 and are refused.

use serde_json::{Value, json};

/// The standard error codes this server sends.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// A JSON-RPC error: code and message.
#[derive(Debug)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }
}

/// One line from the client.
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A message without an id: never answered.
    Notification,
    /// Answered with this error (and `id` null when it had none usable).
    Invalid { id: Value, error: RpcError },
}

/// Reads one line: a request, a notification, or why it is neither.
pub fn parse(line: &str) -> Incoming {
    let invalid = |id: Value, code, message: &str| Incoming::Invalid {
        id,
        error: RpcError::new(code, message),
    };
    let msg: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return invalid(Value::Null, PARSE_ERROR, &format!("parse error: {e}")),
    };
    let Value::Object(obj) = msg else {
        return invalid(
            Value::Null,
            INVALID_REQUEST,
            "expected one JSON-RPC message object (batches are not supported)",
        );
    };
    let id = obj.get("id").cloned();
    // An id must be a string or a number; anything else cannot be echoed.
    let usable_id = match &id {
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        _ => Value::Null,
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(usable_id, INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return invalid(usable_id, INVALID_REQUEST, "method must be a string");
    };
    match id {
        None => Incoming::Notification,
        Some(Value::String(_) | Value::Number(_)) => Incoming::Request {
            id: usable_id,
            method: method.to_string(),
            params: obj.get("params").cloned().unwrap_or(json!({})),
        },
        Some(_) => invalid(
            Value::Null,
            INVALID_REQUEST,
            "id must be a string or a number",
        ),
    }
}

/// The answer to request `id`.
pub fn response(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": e.code, "message": e.message},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sorted_into_requests_notifications_and_errors() {
        let code = |line: &str| match parse(line) {
            Incoming::Invalid { error, .. } => Some(error.code),
            _ => None,
        };
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#),
            Incoming::Request { id, .. } if id == json!(7)
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Incoming::Notification
        ));
        assert_eq!(code("{nope"), Some(PARSE_ERROR));
        assert_eq!(code("[]"), Some(INVALID_REQUEST));
        assert_eq!(code(r#"{"id":1,"method":"ping"}"#), Some(INVALID_REQUEST));
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#), Some(INVALID_REQUEST));
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
    }
}
