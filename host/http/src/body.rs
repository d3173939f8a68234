//! Request bodies: lenient JSON parsing as the protocol requires, and field
//! validation that reports Zod-style issues (`code`, `message`, `path`).

use super::error::ApiError;
use crate::engine::limits::{self, Range, Violation};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value, json};

/// Largest accepted request body (the deploy endpoint allows more).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The raw body, at most `MAX` bytes (see `api::reading`).
pub struct RawBody<const MAX: usize = MAX_BODY_BYTES>(pub Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for RawBody<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        super::reading::read_body(req, MAX).await.map(RawBody)
    }
}

impl<const MAX: usize> RawBody<MAX> {
    /// Parse as JSON whatever the content type. Missing or malformed JSON is
    /// a 400 naming the problem (v0.5 answered 500).
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "request body is missing: expected a JSON object",
            ));
        }
        serde_json::from_slice(&self.0)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
    }

    /// For endpoints where an absent or unparsable body means `{}`.
    pub fn json_or_empty(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or_else(|_| json!({}))
    }

    /// A schema-validated object body.
    pub fn fields(&self) -> Result<Fields, ApiError> {
        Fields::new(self.json()?)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Field access that collects every problem before answering.
pub struct Fields {
    map: Map<String, Value>,
    issues: Vec<Value>,
}

impl Fields {
    pub fn new(v: Value) -> Result<Fields, ApiError> {
        match v {
            Value::Object(map) => Ok(Fields {
                map,
                issues: vec![],
            }),
            other => Err(ApiError::invalid(vec![json!({
                "code": "invalid_type", "expected": "object", "received": type_name(&other),
                "message": format!("Expected object, received {}", type_name(&other)), "path": [],
            })])),
        }
    }

    fn wrong_type(&mut self, key: &str, expected: &str) {
        let received = self.map.get(key).map_or("undefined", type_name);
        self.issues.push(json!({
            "code": "invalid_type", "expected": expected, "received": received,
            "message": format!("Expected {expected}, received {received}"), "path": [key],
        }));
    }

    /// An issue from a check `Fields` has no helper for.
    pub fn push_issue(&mut self, issue: Value) {
        self.issues.push(issue);
    }

    /// Record a broken limit; `None` for the caller to return.
    fn violated<T>(&mut self, v: Violation) -> Option<T> {
        self.issues.push(v.issue(json!([v.field])));
        None
    }

    /// Any JSON value; absent is `None`.
    pub fn any(&self, key: &str) -> Option<Value> {
        self.map.get(key).cloned()
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A string, if present. Every string field is stored as text, so none
    /// may contain NUL.
    pub fn opt_str(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None => None,
            Some(Value::String(s)) => match limits::check_text(key, s) {
                Ok(()) => Some(s.clone()),
                Err(v) => self.violated(v),
            },
            Some(_) => {
                self.wrong_type(key, "string");
                None
            }
        }
    }

    /// A string of length ≥ 1, if present.
    pub fn opt_name(&mut self, key: &str) -> Option<String> {
        let s = self.opt_str(key)?;
        match limits::check_nonempty(key, &s) {
            Ok(()) => Some(s),
            Err(v) => self.violated(v),
        }
    }

    /// A required string. The engine checks what it must look like (e.g. a
    /// name's length), the same for every door.
    pub fn string(&mut self, key: &str) -> String {
        if !self.has(key) {
            self.wrong_type(key, "string");
        }
        self.opt_str(key).unwrap_or_default()
    }

    /// A required string of length ≥ 1.
    pub fn name(&mut self, key: &str) -> String {
        if !self.has(key) {
            self.wrong_type(key, "string");
            return String::new();
        }
        self.opt_name(key).unwrap_or_default()
    }

    /// A name something is looked up by, if present: 1 to
    /// [`limits::NAME_CHARS`] characters.
    pub fn opt_key(&mut self, key: &str) -> Option<String> {
        let s = self.opt_str(key)?;
        match limits::check_name(key, &s) {
            Ok(()) => Some(s),
            Err(v) => self.violated(v),
        }
    }

    /// A required [`Fields::opt_key`].
    pub fn key(&mut self, key: &str) -> String {
        if !self.has(key) {
            self.wrong_type(key, "string");
            return String::new();
        }
        self.opt_key(key).unwrap_or_default()
    }

    /// The items of an array; absent is empty.
    fn opt_items(&mut self, key: &str) -> Vec<Value> {
        match self.map.get(key) {
            None => vec![],
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                self.wrong_type(key, "array");
                vec![]
            }
        }
    }

    /// An array of non-empty strings; absent is empty.
    pub fn opt_strings(&mut self, key: &str) -> Vec<String> {
        let items = self.opt_items(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let checked = match item.as_str() {
                Some(s) => limits::check_nonempty(key, s).map(|()| s),
                None => {
                    let received = type_name(item);
                    self.issues.push(json!({
                        "code": "invalid_type", "expected": "string", "received": received,
                        "message": format!("Expected string, received {received}"), "path": [key, i],
                    }));
                    continue;
                }
            };
            match checked {
                Ok(s) => out.push(s.to_string()),
                Err(v) => self.issues.push(v.issue(json!([key, i]))),
            }
        }
        out
    }

    /// A JSON object with arbitrary keys, if present.
    pub fn opt_record(&mut self, key: &str) -> Option<Value> {
        match self.map.get(key) {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => {
                self.wrong_type(key, "object");
                None
            }
        }
    }

    /// An integer not below `min`, if present (and, with `nullable`, not null).
    pub fn opt_int(&mut self, key: &str, min: i64, nullable: bool) -> Option<i64> {
        if nullable && self.map.get(key).is_some_and(Value::is_null) {
            return None;
        }
        self.int_in(key, Range::new(min, i64::MAX))
    }

    /// An integer within `range`, if present. Integral numbers beyond 64
    /// bits (or written as large floats) are out of range, not mistyped.
    pub fn int_in(&mut self, key: &str, range: Range) -> Option<i64> {
        let n = match self.map.get(key) {
            None => return None,
            Some(Value::Number(n)) => n.clone(),
            Some(_) => {
                self.wrong_type(key, "integer");
                return None;
            }
        };
        let Some(value) = limits::json_int(&n) else {
            self.wrong_type(key, "integer");
            return None;
        };
        match range.check(key, value) {
            Ok(v) => Some(v),
            Err(v) => self.violated(v),
        }
    }

    /// A number, if present.
    pub fn opt_num(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key) {
            None => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => {
                self.wrong_type(key, "number");
                None
            }
        }
    }

    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.wrong_type(key, "boolean");
                None
            }
        }
    }

    /// One of `options`, if present.
    pub fn opt_enum(&mut self, key: &str, options: &[&str]) -> Option<String> {
        let s = self.opt_str(key)?;
        if options.contains(&s.as_str()) {
            return Some(s);
        }
        self.issues.push(enum_issue(key, options, &s));
        None
    }

    /// An absolute http(s) URL, if present.
    pub fn opt_url(&mut self, key: &str) -> Option<String> {
        let s = self.opt_str(key)?;
        match limits::check_http_url(key, &s) {
            Ok(()) => Some(s),
            Err(v) => self.violated(v),
        }
    }

    /// `ChannelSpec[]`, if present.
    pub fn opt_channels(&mut self, key: &str) -> Vec<crate::engine::NewChannel> {
        let items = self.opt_items(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let url = match item.get("url").and_then(Value::as_str) {
                Some(u) => match limits::check_http_url("url", u) {
                    Ok(()) => Some(u),
                    Err(v) => {
                        self.issues.push(v.issue(json!([key, i, "url"])));
                        continue;
                    }
                },
                None => None,
            };
            let events = match item.get("events") {
                None => Some(vec![]),
                Some(Value::Array(e)) if e.iter().all(Value::is_string) => Some(
                    e.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect(),
                ),
                Some(_) => None,
            };
            let secret = match item.get("secret") {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => match limits::check_text("secret", s) {
                    Ok(()) => Some(Some(s.clone())),
                    Err(v) => {
                        self.issues.push(v.issue(json!([key, i, "secret"])));
                        continue;
                    }
                },
                Some(_) => None,
            };
            match (item.get("type").and_then(Value::as_str), url, events, secret) {
                (Some("webhook"), Some(url), Some(events), Some(secret)) => {
                    out.push(crate::engine::NewChannel { url: url.to_string(), secret, events })
                }
                _ => self.issues.push(json!({
                    "code": "custom",
                    "message": "Expected a channel {\"type\":\"webhook\",\"url\":<absolute http(s) url>,\"secret\"?:string,\"events\"?:string[]}",
                    "path": [key, i],
                })),
            }
        }
        out
    }

    /// Fail with every collected issue, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.issues))
        }
    }
}

/// The issue of a value that is not one of `options` (a body field or a
/// query parameter).
pub fn enum_issue(key: &str, options: &[&str], received: &str) -> Value {
    json!({
        "code": "invalid_enum_value", "options": options, "received": received,
        "message": format!("Invalid enum value. Expected {}, received '{received}'", options.join(" | ")),
        "path": [key],
    })
}
