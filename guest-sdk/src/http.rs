//! HTTP requests from a workflow, through the host's egress broker.
//!
//! A workflow has no sockets. Its requests go out through the standard
//! `wasi:http/outgoing-handler` import, and the host sends each one through
//! its broker, which:
//!
//! - allows a request only **inside a step** (outside steps, workflow code
//!   must be deterministic: a resumed run re-executes it) and only under a
//!   resource the deployment was granted (`deploy --allow NAME`): its base
//!   URL, methods and paths;
//! - adds the resource's credential (the workflow never sees it; a
//!   credential header the workflow sets is replaced) and sends the step's
//!   idempotency key as `Idempotency-Key`;
//! - removes the credential from the response if the upstream echoes it;
//! - enforces a timeout and a response-size cap, follows no redirects (a
//!   3xx comes back as it is), and records every call (`GET /audit`, the
//!   run's `egress.call` events).
//!
//! A request the broker refuses fails with an [`Error`] named after the
//! reason: `EgressDenied` (not inside a step, not granted, or a blocked
//! address), `EgressTimeout`, `EgressTooLarge` or `EgressUnreachable` (the
//! upstream refused or dropped the connection). When the workflow fails
//! from such an error, the run's `failureClass` names the refusal
//! (`egress_denied`, `egress_timeout`, `egress_too_large`,
//! `egress_unreachable`) and its error message carries the host's reason.
//!
//! A completed step is never executed again, so its requests are made once:
//! a resumed run replays the step's recorded output. One window remains: if
//! the process dies after the upstream answered and before the step's
//! checkpoint was written, the step runs again and so does the request (at
//! least once). Give such steps an idempotency key
//! ([`StepOptions::idempotency_key`](crate::StepOptions::idempotency_key))
//! so upstreams that honour `Idempotency-Key` can drop the repeat.
//!
//! ```no_run
//! use tidebase_guest::{Error, Run, http};
//!
//! fn status(run: &Run, url: String) -> Result<u16, Error> {
//!     run.step("fetch", || {
//!         let response = http::get(&url)?;
//!         Ok::<_, Error>(response.status)
//!     })
//! }
//! ```

use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use wasip2::io::streams::StreamError;

use crate::Error;

/// Largest write the `wasi:io` output stream accepts in one blocking call.
const WRITE_CHUNK: usize = 4096;
/// How much of the response body one read asks for.
const READ_CHUNK: u64 = 64 << 10;

/// An HTTP response as the broker delivered it (the whole body is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. `200`.
    pub status: u16,
    /// Header names (lower case) and values, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text; fails with `HttpError` when it is not UTF-8.
    pub fn text(&self) -> Result<String, Error> {
        String::from_utf8(self.body.clone())
            .map_err(|e| Error::new("HttpError", format!("response body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                "HttpError",
                format!("response body is not the JSON expected: {e}"),
            )
        })
    }

    /// The first value of header `name` (any case), if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, Error> {
    request("GET", url, &[], &[])
}

/// `POST url` with `body` (set a `content-type` with [`request`]).
pub fn post(url: &str, body: impl AsRef<[u8]>) -> Result<Response, Error> {
    request("POST", url, &[], body.as_ref())
}

/// A request with any method, headers and body. The URL is absolute
/// (`http://` or `https://`); a fragment is not sent. Any status is a
/// response, not an error: check [`Response::status`].
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, Error> {
    let target = Target::parse(url)?;
    let fail = |code: ErrorCode| refusal(method, url, &code);
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries).map_err(|e| {
        Error::new(
            "HttpError",
            format!("{method} {url}: header refused: {e:?}"),
        )
    })?;
    let req = OutgoingRequest::new(fields);
    let set = [
        req.set_method(&wasi_method(method)),
        req.set_scheme(Some(&target.scheme)),
        req.set_authority(Some(&target.authority)),
        req.set_path_with_query(Some(&target.path)),
    ];
    if set.iter().any(Result::is_err) {
        return Err(Error::new(
            "InvalidUrl",
            format!("{method} {url}: not a valid request"),
        ));
    }
    let outgoing = req.body().expect("the body of a new request");
    // Sent before the body is written: the host reads the body as it
    // comes, so a large one cannot fill its buffer and stall.
    let pending = outgoing_handler::handle(req, None).map_err(fail)?;
    // A refused request drops the body unread, and writing it fails; the
    // refusal itself arrives as the response, so report that.
    let written = write_body(outgoing, body);
    let response = loop {
        match pending.get() {
            Some(Ok(r)) => break r.map_err(fail)?,
            Some(Err(())) => unreachable!("the response is taken once"),
            None => pending.subscribe().block(),
        }
    };
    written.map_err(|e| {
        Error::new(
            "HttpError",
            format!("{method} {url}: sending the body: {e}"),
        )
    })?;
    read(&response).map_err(|e| match e {
        Read::Code(code) => fail(code),
        Read::Other(what) => Error::new("HttpError", format!("{method} {url}: {what}")),
    })
}

/// Writes and finishes the request body.
fn write_body(outgoing: OutgoingBody, body: &[u8]) -> Result<(), String> {
    {
        let stream = outgoing.write().expect("the stream of a new body");
        for chunk in body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"))
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "the host closed the stream".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// Why reading the response failed.
enum Read {
    Code(ErrorCode),
    Other(String),
}

fn read(response: &IncomingResponse) -> Result<Response, Read> {
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| Read::Other("response body already taken".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| Read::Other("response stream already taken".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(match wasip2::http::types::http_error_code(&e) {
                        Some(code) => Read::Code(code),
                        None => Read::Other(e.to_debug_string()),
                    });
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The guest's error for a request the host did not answer.
fn refusal(method: &str, url: &str, code: &ErrorCode) -> Error {
    let (name, why) = match code {
        ErrorCode::HttpRequestDenied => (
            "EgressDenied",
            "the host refused the request (only inside a step, under a granted resource)",
        ),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => {
            ("EgressTimeout", "the upstream did not answer in time")
        }
        ErrorCode::HttpResponseBodySize(_) => {
            ("EgressTooLarge", "the response exceeds the size cap")
        }
        ErrorCode::HttpRequestBodySize(_) => {
            ("EgressTooLarge", "the request body exceeds the size cap")
        }
        ErrorCode::ConnectionRefused => (
            "EgressUnreachable",
            "the upstream refused or dropped the connection",
        ),
        other => return Error::new("HttpError", format!("{method} {url}: {other:?}")),
    };
    Error::new(name, format!("{method} {url}: {why}"))
}

fn wasi_method(method: &str) -> Method {
    match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(method.to_string()),
    }
}

/// An absolute URL, split as `wasi:http` takes it.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    authority: String,
    /// Path and query; `/` when the URL has none.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let invalid = |why: &str| Error::new("InvalidUrl", format!("{url}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("not an absolute URL"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid("only http and https are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String, String) {
        let t = Target::parse(url).unwrap();
        let scheme = match t.scheme {
            Scheme::Http => "http".to_string(),
            Scheme::Https => "https".to_string(),
            Scheme::Other(s) => s,
        };
        (scheme, t.authority, t.path)
    }

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let p = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            parts("https://api.example.com"),
            p("https", "api.example.com", "/")
        );
        assert_eq!(
            parts("http://127.0.0.1:8080/a/b?x=1#top"),
            p("http", "127.0.0.1:8080", "/a/b?x=1")
        );
        assert_eq!(parts("HTTPS://h?q=2"), p("https", "h", "/?q=2"));
        assert_eq!(parts("http://[::1]:80/"), p("http", "[::1]:80", "/"));
        for bad in ["/relative", "ftp://h/x", "http:///path", "nonsense"] {
            assert_eq!(Target::parse(bad).unwrap_err().name, "InvalidUrl", "{bad}");
        }
    }

    #[test]
    fn refusals_are_named_by_their_reason() {
        let name = |code| refusal("GET", "http://h/", &code).name;
        assert_eq!(name(ErrorCode::HttpRequestDenied), "EgressDenied");
        assert_eq!(name(ErrorCode::ConnectionTimeout), "EgressTimeout");
        assert_eq!(
            name(ErrorCode::HttpResponseBodySize(None)),
            "EgressTooLarge"
        );
        assert_eq!(name(ErrorCode::ConnectionRefused), "EgressUnreachable");
        assert_eq!(name(ErrorCode::DnsTimeout), "HttpError");
        let e = refusal("POST", "http://h/x", &ErrorCode::HttpRequestDenied);
        assert!(e.message.starts_with("POST http://h/x: "), "{e}");
    }

    #[test]
    fn response_helpers() {
        let r = Response {
            status: 201,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: br#"{"id": 7}"#.to_vec(),
        };
        assert!(r.ok());
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.json::<serde_json::Value>().unwrap()["id"], 7);
        assert_eq!(r.text().unwrap(), r#"{"id": 7}"#);
        assert_eq!(r.json::<u8>().unwrap_err().name, "HttpError");
    }
}
