//! Connections: slow clients are dropped within the configured bounds,
//! thousands of idle sockets starve neither `/health` nor real requests,
//! a full server closes idle connections (never one being served), and
//! every error answer, including those hyper gives before routing, is JSON.

use crate::events::Sse;
use crate::harness::TestServer;
use crate::serve::Serve;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound on "the server answers": a liveness check, not a timing.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Read until the server closes the connection (or `limit` passes).
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| out)
}

/// One whole response (head and `content-length` body), connection left open.
async fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .split("\r\n")
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if out.len() >= end + 4 + length {
                return out;
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {out:?}");
        out.extend_from_slice(&buf[..n]);
    }
}

/// Status and JSON body of one raw HTTP/1.1 exchange (the server closes
/// after answering, or `connection: close` is sent).
async fn raw(base: &str, request: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr(base)).await.unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = s.write_all(request).await;
    let bytes = read_to_close(&mut s, ANSWER_WITHIN)
        .await
        .expect("the server answered and closed");
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head[9..12].parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("body not JSON ({e}): {text}"));
    (status, body)
}

/// Send `bytes` one at a time, `gap` apart, until the server closes the
/// connection; returns what it sent back and how many bytes went out.
async fn trickle(base: &str, head: &[u8], bytes: &[u8], gap: Duration) -> (Vec<u8>, usize) {
    let mut s = TcpStream::connect(addr(base)).await.unwrap();
    s.write_all(head).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (bytes, sent) = (bytes.to_vec(), sent.clone());
        async move {
            for b in bytes {
                tokio::time::sleep(gap).await;
                if wr.write_all(&[b]).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut out))
        .await
        .expect("the slow client was never dropped")
        .ok();
    writer.abort();
    (out, sent.load(Ordering::SeqCst))
}

async fn health_ok(base: &str) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = tokio::time::timeout(ANSWER_WITHIN, client.get(format!("{base}/health")).send())
        .await
        .expect("/health answered within the bound")
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Trickled headers and a trickled body are cut off by their deadlines even
/// though bytes keep arriving; the body gets a JSON 408.
async fn slow_clients_are_dropped(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &srv,
        dir.path(),
        &[
            ("TIDEBASE_HEADER_TIMEOUT_MS", "1000"),
            ("TIDEBASE_BODY_TIMEOUT_MS", "1500"),
            ("TIDEBASE_WASM_WORKERS", "0"),
        ],
    )
    .await;
    let gap = Duration::from_millis(200);
    // ~20 s of trickling if the server let it.
    let headers = "x-slow: ".to_string() + &"a".repeat(100);
    let started = Instant::now();
    let (answer, sent) = trickle(
        &serve.base,
        b"GET /health HTTP/1.1\r\nhost: x\r\n",
        headers.as_bytes(),
        gap,
    )
    .await;
    assert!(answer.is_empty(), "no answer to a half head: {answer:?}");
    assert!(sent < 50, "headers kept trickling for {sent} bytes");
    assert!(started.elapsed() < ANSWER_WITHIN);
    health_ok(&serve.base).await;

    let body = vec![b'1'; 100];
    let (answer, sent) = trickle(
        &serve.base,
        b"POST /runs/slow HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
        &body,
        gap,
    )
    .await;
    assert!(sent < 50, "the body kept trickling for {sent} bytes");
    let (status, json) = parse(&answer);
    assert_eq!(status, 408, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("1500 ms"),
        "{json}"
    );
    health_ok(&serve.base).await;
    let (_, runs) = srv.get("/runs").await;
    assert_eq!(
        runs["runs"],
        json!([]),
        "the cut-off request created nothing"
    );
}

/// 5,000 open sockets, idle or half-way through a head, do not keep
/// `/health` or a real request from being answered.
async fn health_answers_under_5000_idle_sockets(srv: TestServer) {
    tidebase_host::api::conn::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&srv, dir.path(), &[("TIDEBASE_WASM_WORKERS", "0")]).await;
    let mut idle = Vec::with_capacity(5000);
    for i in 0..5000 {
        let mut s = TcpStream::connect(addr(&serve.base))
            .await
            .unwrap_or_else(|e| panic!("socket {i}: {e} (is the open-file limit high enough?)"));
        if i % 2 == 0 {
            s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        }
        idle.push(s);
    }
    health_ok(&serve.base).await;
    let r = serve.post("/runs/busy", json!({})).await;
    assert_eq!(r["run"]["status"], "pending");
    drop(idle);
}

/// At the connection cap the longest-idle connections are closed to make
/// room, never one serving a request: an open event stream survives a flood
/// of idle sockets (and outlives every timeout) and still delivers.
async fn a_full_server_closes_idle_connections_first(srv: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &srv,
        dir.path(),
        &[
            ("TIDEBASE_MAX_CONNECTIONS", "50"),
            ("TIDEBASE_HEADER_TIMEOUT_MS", "60000"),
            ("TIDEBASE_BODY_TIMEOUT_MS", "1000"),
            ("TIDEBASE_WASM_WORKERS", "0"),
        ],
    )
    .await;
    let run = serve.post("/runs/streamed", json!({})).await["run"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut sse = Sse::open(client.get(format!("{}/runs/{run}/events", serve.base))).await;
    assert_eq!(sse.next_event().await["type"], "run.created");

    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(TcpStream::connect(addr(&serve.base)).await.unwrap());
    }
    health_ok(&serve.base).await;
    // The first sockets were the longest idle: the server closed them.
    let first = idle.first_mut().unwrap();
    assert!(
        read_to_close(first, ANSWER_WITHIN).await.is_some(),
        "the oldest idle socket was not closed"
    );
    // Past the body timeout, the stream is still served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = srv
        .call(
            Method::POST,
            &format!("/runs/{run}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sse.next_event().await["type"], "run.cancelled");
}

backend_tests!(
    slow_clients_are_dropped,
    health_answers_under_5000_idle_sockets,
    a_full_server_closes_idle_connections_first,
);

/// Each request gets a JSON error: unknown route, wrong method, bodies too
/// large by their `Content-Length` (answered before any body byte is sent),
/// URI too long, head too large, malformed request, bad path encoding.
async fn every_error_is_json(srv: TestServer) {
    let base = srv.base.clone();
    let close = "host: x\r\nconnection: close\r\n";

    let (s, b) = raw(
        &base,
        format!("GET /nope HTTP/1.1\r\n{close}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str().unwrap()),
        (404, "no route for GET /nope")
    );

    let r = TestServer::send(srv.request(Method::DELETE, "/runs")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
    assert_eq!(r.json()["error"], "method DELETE is not allowed on /runs");

    // Only the head is sent: the 413 comes from Content-Length alone.
    for (path, limit) in [
        ("/runs/big", tidebase_host::api::MAX_BODY_BYTES),
        ("/workflows/big", 64 << 20),
    ] {
        let mut s = TcpStream::connect(addr(&base)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            limit + 1
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(ANSWER_WITHIN, read_response(&mut s))
            .await
            .expect("a 413 before the body");
        let (status, body) = parse(&answer);
        assert_eq!(status, 413, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(&limit.to_string()));
    }

    let long = "a".repeat(9000);
    let (s, b) = raw(
        &base,
        format!("GET /runs/{long} HTTP/1.1\r\n{close}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(s, 414, "{b}");

    let huge = format!("x-big: {}\r\n", "b".repeat(70 << 10));
    let (s, b) = raw(
        &base,
        format!("GET /health HTTP/1.1\r\n{huge}{close}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(s, 431, "{b}");
    assert!(b["error"].as_str().unwrap().contains("exceeds"), "{b}");

    let (s, b) = raw(&base, b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n").await;
    assert_eq!(s, 400, "{b}");

    for (path, param) in [
        ("/runs/%FF", "id"),
        ("/runs/run_1/steps/%C3%28/complete", "step"),
        ("/runs/run_1/gates/%FF", "gate"),
    ] {
        let (s, b) = raw(
            &base,
            format!("GET {path} HTTP/1.1\r\n{close}\r\n").as_bytes(),
        )
        .await;
        if path.ends_with("complete") {
            // GET is not allowed there; the POST carries the decoding error.
            assert_eq!(s, 405, "{b}");
            let r = TestServer::send(srv.request(Method::POST, path).json(&json!({}))).await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert_eq!(r.json()["parameter"], param);
            continue;
        }
        assert_eq!(
            (s, b["parameter"].as_str()),
            (400, Some(param)),
            "{path}: {b}"
        );
        assert!(b["error"].as_str().unwrap().contains(param), "{b}");
    }
    // Still serving after all of that.
    let (s, _) = srv.get("/health").await;
    assert_eq!(s, 200);
}

backend_tests!(every_error_is_json);
