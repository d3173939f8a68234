//! Serving the API on a TCP listener, with bounds on what a client can hold:
//!
//! - **Request heads** must arrive within `header_timeout`, which is also how
//!   long a keep-alive connection may sit idle between requests (hyper starts
//!   the same timer when it waits for the next request). A head over
//!   [`MAX_HEAD_BYTES`] is a 431, a URI over [`MAX_URI_BYTES`] a 414.
//! - **Request bodies** must arrive within `body_timeout` of the head; the
//!   body reader answers 408 past that (see `api::reading`).
//! - **Connections** are capped at `max_connections`. A connection arriving
//!   at the cap closes the one idle the longest (no request in flight: an
//!   idle keep-alive, or a client still sending its head); only when every
//!   connection is serving a request is the newcomer turned away with a 503.
//!   Trickling or idle sockets therefore never lock out real clients.
//!
//! Responses have no time limit: event streams stay open as long as the
//! client reads them.

mod bare_errors;
mod registry;

use crate::reading::BodyDeadline;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use registry::{Busy, Registry};
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Largest request head (request line and headers) hyper will hold.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// Longest request URI (path and query) the API accepts.
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Connections never capped below this, whatever the descriptor limit.
const MIN_CONNECTIONS: usize = 64;
/// Descriptors kept for everything else: database pool, webhooks, files.
const RESERVED_FDS: u64 = 256;

#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Raise the open-file soft limit to the hard limit where the OS allows it;
/// returns the limit in force (assumed to be the common 1024 if unknown).
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
        1024
    })
}

/// The default connection cap for a descriptor limit: 10,000, or fewer when
/// the limit would not leave room for the rest of the server.
pub fn default_max_connections(fd_limit: u64) -> usize {
    let room = fd_limit.saturating_sub(RESERVED_FDS).min(10_000) as usize;
    room.max(MIN_CONNECTIONS)
}

/// Sent (best effort) to a connection turned away at the cap.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 46\r\nconnection: close\r\n\r\n{\"error\":\"server is at its connection limit\"}\n";

/// Serve `app` until `shutdown` resolves; then close idle connections, let
/// in-flight requests finish, and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Registry::default();
    let mut tasks = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .writev(false);
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept:
                    // back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        if registry.len() >= limits.max_connections && !registry.evict_oldest_idle() {
            let _ = stream.try_write(FULL);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Conn {
            id: next_id,
            registry: registry.clone(),
            app: app.clone(),
            body_timeout: limits.body_timeout,
        };
        let (http, stop) = (http.clone(), stop_rx.clone());
        registry.add(next_id, || tasks.spawn(conn.run(http, stream, stop)));
    }
    registry.close_idle();
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// One accepted connection.
#[derive(Clone)]
struct Conn {
    id: u64,
    registry: Registry,
    app: Router,
    body_timeout: Duration,
}

impl Conn {
    async fn run(
        self,
        http: hyper::server::conn::http1::Builder,
        stream: TcpStream,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let (id, registry) = (self.id, self.registry.clone());
        let _registered = Registered(id, registry);
        let io = TokioIo::new(bare_errors::BareErrors::new(stream));
        let conn = http.serve_connection(io, self);
        tokio::pin!(conn);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = stopping => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Unregisters a connection however its task ends.
struct Registered(u64, Registry);

impl Drop for Registered {
    fn drop(&mut self) {
        self.1.remove(self.0);
    }
}

impl hyper::service::Service<Request<Incoming>> for Conn {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = self.registry.busy(self.id);
        let mut req = req.map(Body::new);
        req.extensions_mut()
            .insert(BodyDeadline::after(self.body_timeout));
        let app = self.app.clone();
        Box::pin(async move {
            let res = answer(app, req).await;
            Ok(res.map(|body| Body::new(Tracked { body, _busy: busy })))
        })
    }
}

/// The app's response. A panicking handler still gets its client a JSON
/// 500 (and the connection survives); the panic itself is a bug to fix.
async fn answer(app: Router, req: Request<Body>) -> Response<Body> {
    match AssertUnwindSafe(app.oneshot(req)).catch_unwind().await {
        Ok(Ok(res)) => res,
        Ok(Err(never)) => match never {},
        Err(_) => {
            tracing::error!("request handler panicked");
            let body = serde_json::json!({"error": "internal server error"});
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
    }
}

/// A response body that keeps its connection marked busy until it is fully
/// written or dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(default_max_connections(1_048_576), 10_000);
        assert_eq!(default_max_connections(4096), 3840);
        assert_eq!(default_max_connections(100), MIN_CONNECTIONS);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new().route("/", axum::routing::get(boom));
        let res = answer(app, Request::new(Body::empty())).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"error":"internal server error"}"#);
    }

    #[test]
    fn the_full_answer_is_well_formed() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("content-length: {}\r\n", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
