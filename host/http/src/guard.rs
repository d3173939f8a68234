//! Cross-cutting HTTP rules: CORS, bearer auth, URI length, and the JSON
//! answers for unknown routes and methods.

use crate::engine::Engine;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

fn json_error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

pub async fn not_found(method: Method, uri: Uri) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

/// The route exists with other methods (axum adds the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// A 414 for URIs longer than the API accepts, before routing or auth.
pub async fn uri_limit(req: Request, next: Next) -> Response {
    let max = super::conn::MAX_URI_BYTES;
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > max {
        return json_error(
            StatusCode::URI_TOO_LONG,
            format!("request URI is {len} bytes long; the limit is {max}"),
        );
    }
    next.run(req).await
}

/// `Access-Control-Allow-Origin` for a request: `*` when any origin is
/// allowed, else the configured origin only if the request comes from it.
fn allowed_origin(configured: &str, req: &Request) -> Option<HeaderValue> {
    if configured == "*" {
        return Some(HeaderValue::from_static("*"));
    }
    let from = req.headers().get(header::ORIGIN)?;
    (from.as_bytes() == configured.as_bytes()).then(|| from.clone())
}

/// Preflights are answered before auth. With a single configured origin
/// (`TIDEBASE_CORS_ORIGIN`) every response varies by `Origin`.
pub async fn cors(State(engine): State<Engine>, req: Request, next: Next) -> Response {
    let configured = engine.settings.cors_origin.as_str();
    let origin = allowed_origin(configured, &req);
    let vary_origin = configured != "*";
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,POST,DELETE,PATCH"),
        );
        if vary_origin {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            h.append(
                header::VARY,
                HeaderValue::from_static("Access-Control-Request-Headers"),
            );
        }
        if let Some(origin) = origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        return res;
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    if vary_origin {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

fn same(a: &str, b: &str) -> bool {
    // Lengths first, then a constant-time byte comparison.
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn is_event_stream(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("runs"), Some(id), Some("events"), None) if !id.is_empty()
    )
}

/// The `token` query parameter, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token").then(|| {
            let v = v.replace('+', " ");
            percent_decode(&v)
        })
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Fail closed on every route but `/health` and Studio's assets when an
/// API key is configured.
pub async fn auth(State(engine): State<Engine>, req: Request, next: Next) -> Response {
    let Some(key) = engine.settings.api_key.as_deref() else {
        return next.run(req).await;
    };
    // `/health` is open for every method (v0.7; v0.5 only for GET/HEAD).
    let allowed = req.uri().path() == "/health"
        || super::studio::is_public(req.uri().path())
        || match req.headers().get(header::AUTHORIZATION) {
            // A bearer header, when present, decides on its own.
            Some(h) => h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| same(t, key)),
            None => {
                is_event_stream(req.uri().path())
                    && query_token(req.uri().query()).is_some_and(|t| same(&t, key))
            }
        };
    if allowed {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "unauthorized"})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_only_on_event_streams() {
        assert!(is_event_stream("/runs/run_1/events"));
        assert!(!is_event_stream("/runs/run_1/events/x"));
        assert!(!is_event_stream("/runs//events"));
        assert!(!is_event_stream("/runs/run_1"));
        assert_eq!(query_token(Some("after=3&token=a%2Fb")), Some("a/b".into()));
        assert_eq!(query_token(Some("after=3")), None);
    }
}
