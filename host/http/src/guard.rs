//! Cross-cutting HTTP rules: CORS, authentication (API key and agent
//! sessions, broker.md §1.1–1.2), URI length, and the JSON answers for
//! unknown routes and methods.

use super::error::ApiError;
use crate::engine::broker::{AuthRefusal, Caller, same};
use crate::engine::{Engine, EngineError};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// Every request's way in, outermost first: CORS (a preflight is answered
/// here, before auth, and every answer, refusals included, carries the
/// headers), the URI limit, then authentication. One middleware, not three:
/// each `from_fn` layer boxes a future and clones the router per request.
pub async fn front(State(engine): State<Engine>, req: Request, next: Next) -> Response {
    let configured = engine.settings.cors_origin.as_str();
    let origin = allowed_origin(configured, &req);
    // With a single configured origin (`TIDEBASE_CORS_ORIGIN`) every
    // response varies by `Origin`.
    let vary_origin = configured != "*";
    if req.method() == Method::OPTIONS {
        return preflight(&req, origin, vary_origin);
    }
    let mut res = match uri_too_long(&req) {
        Some(refusal) => refusal,
        None => match admit(&engine, req).await {
            Ok(req) => next.run(req).await,
            Err(refusal) => refusal,
        },
    };
    let h = res.headers_mut();
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    if vary_origin {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// A 414 for URIs longer than the API accepts, before routing or auth.
fn uri_too_long(req: &Request) -> Option<Response> {
    let max = super::conn::MAX_URI_BYTES;
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    (len > max).then(|| {
        json_error(
            StatusCode::URI_TOO_LONG,
            format!("request URI is {len} bytes long; the limit is {max}"),
        )
    })
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

fn preflight(req: &Request, origin: Option<HeaderValue>, vary_origin: bool) -> Response {
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
    res
}

/// `^/runs/[^/]+/grants(/|$)`: the grant routes, which agent sessions may
/// call.
pub fn is_grants_path(path: &str) -> bool {
    let Some((id, tail)) = path.strip_prefix("/runs/").and_then(|r| r.split_once('/')) else {
        return false;
    };
    !id.is_empty() && (tail == "grants" || tail.starts_with("grants/"))
}

/// A broker path (broker.md §1.1), by path alone, whatever the method and
/// whether or not a route exists.
pub fn is_broker_path(path: &str) -> bool {
    let under = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/agents") || under("/resources") || path == "/audit" || is_grants_path(path)
}

/// Paths where an agent session is a credential: grants and the audit.
fn takes_sessions(path: &str) -> bool {
    path == "/audit" || is_grants_path(path)
}

/// The agent of `^/agents/[^/]+/(prove|challenge)$`, the proof routes.
pub fn proof_agent(path: &str) -> Option<&str> {
    let (id, action) = path.strip_prefix("/agents/")?.split_once('/')?;
    (!id.is_empty() && matches!(action, "prove" | "challenge")).then_some(id)
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

/// The credential a request presents: the bearer token, or on an event
/// stream `?token=` when there is no `Authorization` header.
fn credential(req: &Request) -> Option<String> {
    match req.headers().get(header::AUTHORIZATION) {
        Some(h) => h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(String::from),
        None if is_event_stream(req.uri().path()) => query_token(req.uri().query()),
        None => None,
    }
}

/// Who is calling (broker.md §1.2). Without an API key core routes are
/// open and broker routes disabled; with one, the key is the admin, and on
/// grant and audit routes a live agent session is a caller too.
async fn authenticate(
    engine: &Engine,
    path: &str,
    token: Option<String>,
) -> Result<Caller, EngineError> {
    // `/health` is open for every method (v0.7; v0.5 only for GET/HEAD);
    // Studio's page and scripts hold no data.
    if path == "/health" || super::studio::is_public(path) {
        return Ok(Caller::Open);
    }
    let Some(key) = engine.settings.api_key.as_deref() else {
        return match is_broker_path(path) {
            true => Err(EngineError::Auth(AuthRefusal::BrokerDisabled)),
            false => Ok(Caller::Open),
        };
    };
    let Some(token) = token else {
        return Err(EngineError::Auth(AuthRefusal::Unauthorized));
    };
    if same(&token, key) {
        return Ok(Caller::Admin);
    }
    if takes_sessions(path)
        && let Some(session) = engine.session(&token).await?
    {
        return Ok(Caller::Agent(session));
    }
    Err(EngineError::Auth(AuthRefusal::Unauthorized))
}

/// Authenticate a request, hand the [`Caller`] to the handler as an
/// extension, then apply the broker's abuse controls (`abuse.rs`).
async fn admit(engine: &Engine, req: Request) -> Result<Request, Response> {
    let caller = authenticate(engine, req.uri().path(), credential(&req))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let admitted = super::abuse::admit(engine, &caller, req).await;
    admitted
        .map(|mut req| {
            req.extensions_mut().insert(caller);
            req
        })
        .map_err(IntoResponse::into_response)
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

    #[test]
    fn broker_paths_are_classified_by_path_alone() {
        for broker in [
            "/agents",
            "/agents/",
            "/agents/agent_1/prove",
            "/resources",
            "/resources/res_1/revoke",
            "/audit",
            "/runs/r/grants",
            "/runs/r/grants/",
            "/runs/r/grants/anything",
            "/runs/r/grants/g/use",
        ] {
            assert!(is_broker_path(broker), "{broker}");
        }
        for core in [
            "/runs/grants",
            "/runs//grants",
            "/runs/r/grantsX",
            "/runs/r/x/grants",
            "/agentsX",
            "/resourcesX",
            "/audit/",
            "/auditX",
            "/egress/receipts",
            "/runs/r",
            "/health",
            "/",
        ] {
            assert!(!is_broker_path(core), "{core}");
        }
    }

    #[test]
    fn sessions_count_only_on_grant_and_audit_paths() {
        assert!(takes_sessions("/audit"));
        assert!(takes_sessions("/runs/r/grants/g/revoke"));
        assert!(!takes_sessions("/agents"));
        assert!(!takes_sessions("/runs/r"));
        assert!(!takes_sessions("/audit/x"));
    }

    #[test]
    fn proof_routes_name_their_agent() {
        assert_eq!(proof_agent("/agents/agent_1/prove"), Some("agent_1"));
        assert_eq!(proof_agent("/agents/agent_1/challenge"), Some("agent_1"));
        assert_eq!(proof_agent("/agents/agent_1"), None);
        assert_eq!(proof_agent("/agents//prove"), None);
        assert_eq!(proof_agent("/agents/a/prove/x"), None);
        assert_eq!(proof_agent("/agents/a/proveX"), None);
    }
}
