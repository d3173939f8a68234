//! Upstream HTTP servers on 127.0.0.1 for the broker to call: they record
//! what reached them and answer per path.

use axum::body::Body;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one request brought.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

pub struct Upstream {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Bytes `/big` and `/stream` answer with.
pub const BIG: usize = 64 * 1024;

impl Upstream {
    pub async fn start() -> Upstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            async move { answer(&log, req).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { base, seen }
    }

    /// Requests that reached `path`.
    pub fn hits(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    /// Requests that reached this server at all.
    pub fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn answer(log: &Mutex<Vec<Seen>>, req: Request) -> Response {
    let seen = Seen {
        path: req.uri().path().to_string(),
        query: req.uri().query().map(String::from),
        headers: req.headers().clone(),
    };
    log.lock().unwrap().push(seen.clone());
    match seen.path.as_str() {
        "/echo" => echo(&seen),
        "/redirect" => {
            let to = seen.query.as_deref().and_then(|q| q.strip_prefix("to="));
            (StatusCode::FOUND, [(header::LOCATION, to.unwrap_or("/"))]).into_response()
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late".into_response()
        }
        "/big" => "x".repeat(BIG).into_response(),
        "/stream" => {
            let chunks = (0..BIG / 1024).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 1024]));
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        path => format!("ok {path}").into_response(),
    }
}

/// The credential that reached the upstream (the `authorization` header,
/// else the `key` query parameter), echoed back in the forms an upstream
/// might use: in headers and body, plain, base64 and URL-encoded; and the
/// raw query as it arrived.
fn echo(seen: &Seen) -> Response {
    let auth = seen.headers.get(header::AUTHORIZATION);
    let uri = format!("/echo?{}", seen.query.clone().unwrap_or_default());
    let params: Query<HashMap<String, String>> =
        Query::try_from_uri(&uri.parse().unwrap()).unwrap();
    let credential = auth
        .map(|v| v.to_str().unwrap().to_string())
        .or_else(|| params.get("key").cloned())
        .unwrap_or_default();
    let body = format!(
        "plain={credential}\nbase64={}\nbase64url={}\nurl={}\nquery={}\n",
        STANDARD.encode(&credential),
        URL_SAFE_NO_PAD.encode(&credential),
        url_encode(&credential),
        seen.query.clone().unwrap_or_default(),
    );
    let headers = [
        ("x-echo", credential.clone()),
        ("x-echo-b64", STANDARD.encode(&credential)),
        ("set-cookie", format!("session={}", url_encode(&credential))),
    ];
    (headers, body).into_response()
}

/// Every byte but letters and digits as `%XX`.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
