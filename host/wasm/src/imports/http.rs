//! `wasi:http/outgoing-handler`: the door onto the engine's egress broker.
//!
//! Every request a guest sends arrives at [`WasiHttpHooks::send_request`]
//! before any socket is opened. The door only collects the body (bounded),
//! asks the activation who is calling (refused outside step code) and hands
//! the request to [`Engine::egress`], which decides, injects credentials,
//! limits and records it. The guest sees the broker's refusals as wasi:http
//! error codes, which the guest SDK names `EgressDenied`, `EgressTimeout`,
//! `EgressTooLarge` and `EgressUnreachable`; the activation keeps the last
//! one, so the engine can name a failure after it.

use crate::engine::{
    Activation, EgressClass, EgressRefusal, EgressRequest, EgressResponse, Engine, EngineError,
};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue, TE, TRAILER};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

/// What the wasi:http implementation awaits for a sent request: the
/// response, and a future for the connection's I/O (none here: the broker
/// has read the whole response).
type Sent =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, Background), HttpError>> + Send>;
type Background = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// The run's activation, which also serves as the `wasi:http` hooks:
/// wasmtime borrows the hooks alongside the resource table, and the send
/// hook needs the activation to name the caller. Derefs to the activation,
/// so the other imports use it as `cx.run`.
pub struct HttpDoor {
    run: Activation,
    engine: Engine,
    /// Largest request body a guest may send.
    max_request_bytes: usize,
}

/// The wasi:http error code a guest gets instead of a response refused
/// with `class` (the guest SDK names it [`EgressClass::guest_error_name`]).
fn error_code(class: EgressClass) -> HttpError {
    match class {
        EgressClass::Denied | EgressClass::OutsideStep => HttpError::HttpRequestDenied,
        EgressClass::Timeout => HttpError::ConnectionTimeout,
        EgressClass::TooLarge => HttpError::HttpResponseBodySize(None),
        EgressClass::Unreachable => HttpError::ConnectionRefused,
    }
}

impl HttpDoor {
    pub fn new(run: Activation, engine: Engine, max_request_bytes: usize) -> HttpDoor {
        HttpDoor {
            run,
            engine,
            max_request_bytes,
        }
    }
}

impl Deref for HttpDoor {
    type Target = Activation;
    fn deref(&self) -> &Activation {
        &self.run
    }
}

impl DerefMut for HttpDoor {
    fn deref_mut(&mut self) -> &mut Activation {
        &mut self.run
    }
}

impl WasiHttpHooks for HttpDoor {
    /// Guests may not set hop-by-hop headers (wasmtime's list, plus `te`
    /// and `trailer`): the connection is the broker's. Credential headers
    /// are the broker's to drop and replace.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| DEFAULT_FORBIDDEN_HEADERS.contains(name) || name == TE || name == TRAILER)
    }

    /// The URL names the host; the broker's client sets the header.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Background,
    ) -> Sent {
        let caller = self.run.egress_caller();
        let (engine, limit) = (self.engine.clone(), self.max_request_bytes);
        Box::new(async move {
            let caller = match caller {
                Ok(c) => c,
                Err(EngineError::EgressRefused(r)) => return Err(error_code(r.class)),
                Err(e) => return Err(HttpError::InternalError(Some(e.to_string()))),
            };
            let (parts, body) = request.into_parts();
            let body = match Limited::new(body, limit).collect().await {
                Ok(b) => b.to_bytes().to_vec(),
                Err(e) if e.is::<LengthLimitError>() => {
                    caller.note_refusal(&EgressRefusal {
                        class: EgressClass::TooLarge,
                        reason: format!("the request body exceeds the {limit}-byte limit"),
                    });
                    return Err(HttpError::HttpRequestBodySize(None));
                }
                // The guest's body stream failed (e.g. a wrong content-length).
                Err(e) => {
                    return Err(match e.downcast::<HttpError>() {
                        Ok(e) => *e,
                        Err(e) => HttpError::InternalError(Some(e.to_string())),
                    });
                }
            };
            let req = EgressRequest {
                method: parts.method.to_string(),
                url: parts.uri.to_string(),
                headers: parts
                    .headers
                    .iter()
                    // The body is whole: the broker's client frames it.
                    .filter(|(name, _)| **name != CONTENT_LENGTH)
                    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                    .collect(),
                body,
            };
            match engine.egress(caller, req).await {
                Ok(res) => Ok((response(res), Box::new(async { Ok(()) }) as Background)),
                Err(EngineError::EgressRefused(r)) => Err(error_code(r.class)),
                Err(e) => Err(HttpError::InternalError(Some(e.to_string()))),
            }
        })
    }
}

/// The broker's answer as the response the guest reads.
fn response(res: EgressResponse) -> http::Response<WasiBody> {
    let body = Full::new(Bytes::from(res.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = http::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(res.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    for (name, value) in res.headers {
        // The broker read these off a parsed response: they are valid.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
