//! Request bodies: lenient JSON parsing as the protocol requires, and field
//! validation that reports Zod-style issues (`code`, `message`, `path`).

use super::error::ApiError;
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

    fn issue(&mut self, key: &str, code: &str, message: String) {
        self.issues
            .push(json!({"code": code, "message": message, "path": [key]}));
    }

    /// Any JSON value; absent is `None`.
    pub fn any(&self, key: &str) -> Option<Value> {
        self.map.get(key).cloned()
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn opt_str(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.wrong_type(key, "string");
                None
            }
        }
    }

    /// A string of length ≥ 1, if present.
    pub fn opt_name(&mut self, key: &str) -> Option<String> {
        let s = self.opt_str(key)?;
        if s.is_empty() {
            self.issue(
                key,
                "too_small",
                "String must contain at least 1 character(s)".into(),
            );
            return None;
        }
        Some(s)
    }

    /// A required string of length ≥ 1.
    pub fn name(&mut self, key: &str) -> String {
        if !self.has(key) {
            self.wrong_type(key, "string");
            return String::new();
        }
        self.opt_name(key).unwrap_or_default()
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
        match self.map.get(key) {
            None => None,
            Some(Value::Null) if nullable => None,
            Some(Value::Number(n)) => match n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }) {
                Some(i) if i >= min => Some(i),
                Some(_) => {
                    let m = format!("Number must be greater than or equal to {min}");
                    self.issue(key, "too_small", m);
                    None
                }
                None => {
                    self.wrong_type(key, "integer");
                    None
                }
            },
            Some(_) => {
                self.wrong_type(key, "integer");
                None
            }
        }
    }

    pub fn opt_num(&mut self, key: &str, min: Option<f64>) -> Option<f64> {
        match self.map.get(key) {
            None => None,
            Some(Value::Number(n)) => {
                let f = n.as_f64().unwrap_or(0.0);
                if min.is_some_and(|m| f < m) {
                    self.issue(
                        key,
                        "too_small",
                        "Number must be greater than or equal to 0".into(),
                    );
                    return None;
                }
                Some(f)
            }
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
        self.issues.push(json!({
            "code": "invalid_enum_value", "options": options, "received": s,
            "message": format!("Invalid enum value. Expected {}, received '{s}'", options.join(" | ")),
            "path": [key],
        }));
        None
    }

    /// An absolute URL (any scheme), if present.
    pub fn opt_url(&mut self, key: &str) -> Option<String> {
        let s = self.opt_str(key)?;
        if is_absolute_url(&s) {
            return Some(s);
        }
        self.issues.push(json!({"code": "invalid_string", "validation": "url", "message": "Invalid url", "path": [key]}));
        None
    }

    /// `ChannelSpec[]`, if present.
    pub fn opt_channels(&mut self, key: &str) -> Vec<crate::engine::NewChannel> {
        let items = match self.map.get(key) {
            None => return vec![],
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                self.wrong_type(key, "array");
                return vec![];
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = json!([key, i]);
            let url = item
                .get("url")
                .and_then(Value::as_str)
                .filter(|u| is_absolute_url(u));
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
                Some(Value::String(s)) => Some(Some(s.clone())),
                Some(_) => None,
            };
            match (item.get("type").and_then(Value::as_str), url, events, secret) {
                (Some("webhook"), Some(url), Some(events), Some(secret)) => {
                    out.push(crate::engine::NewChannel { url: url.to_string(), secret, events })
                }
                _ => self.issues.push(json!({
                    "code": "custom",
                    "message": "Expected a channel {\"type\":\"webhook\",\"url\":<absolute url>,\"secret\"?:string,\"events\"?:string[]}",
                    "path": path,
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

/// `scheme:rest` with a valid scheme, like the WHATWG URL parser accepts.
fn is_absolute_url(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, rest)) => {
            !rest.is_empty()
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_absolute_url;

    #[test]
    fn urls_need_a_scheme() {
        assert!(is_absolute_url("https://x.example/a"));
        assert!(is_absolute_url("mailto:x@y"));
        assert!(!is_absolute_url("/relative"));
        assert!(!is_absolute_url("no-scheme"));
        assert!(!is_absolute_url("1http://x"));
    }
}
