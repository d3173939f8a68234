//! Reading a request body within its size limit and its deadline.
//!
//! A body too large by its `Content-Length` is refused before any of it is
//! read; one that outgrows the limit while streaming is refused when it
//! does. Either way a client still sending is read to the end (discarding
//! the bytes) up to twice the limit and within the body deadline, so that
//! it can read the 413 instead of losing it to a connection reset.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// When the body of a request must have arrived, set by the connection
/// layer when the request head is read.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline {
    at: Instant,
    within: Duration,
}

impl BodyDeadline {
    pub fn after(within: Duration) -> BodyDeadline {
        BodyDeadline {
            at: Instant::now() + within,
            within,
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::Json(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": format!("request body exceeds the limit of {limit} bytes")}),
    )
}

/// The whole body of `req`, at most `max` bytes.
pub async fn read_body(req: Request, max: usize) -> Result<Bytes, ApiError> {
    read_capped(req, max, too_large(max)).await
}

/// [`read_body`] with the answer to a body over `max` given.
pub async fn read_capped(req: Request, max: usize, too_large: ApiError) -> Result<Bytes, ApiError> {
    let headers = req.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // A client that waits for `100 Continue` sends nothing more once refused.
    let sends_anyway = !headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > max as u64) {
        if sends_anyway {
            discard_rest(body, deadline, max);
        }
        return Err(too_large);
    }
    // `None`: the body outgrew the limit.
    let read = async {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_request(format!("cannot read request body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if out.len() + data.len() > max {
                    return Ok(None);
                }
                out.extend_from_slice(data);
            }
        }
        Ok::<_, ApiError>(Some(Bytes::from(out)))
    };
    let read = match deadline {
        Some(d) => tokio::time::timeout_at(d.at, read).await.map_err(|_| {
            ApiError::Json(
                StatusCode::REQUEST_TIMEOUT,
                json!({"error": format!(
                    "request body not received within {} ms", d.within.as_millis()
                )}),
            )
        })?,
        None => read.await,
    };
    match read? {
        Some(bytes) => Ok(bytes),
        None => {
            discard_rest(body, deadline, max);
            Err(too_large)
        }
    }
}

/// Read and drop what is left of a refused body, up to `2 * max` bytes and
/// until the body deadline (no deadline: the connection is not ours to hold).
fn discard_rest(mut body: Body, deadline: Option<BodyDeadline>, max: usize) {
    let Some(d) = deadline else { return };
    tokio::spawn(tokio::time::timeout_at(d.at, async move {
        let mut left = max.saturating_mul(2);
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, Bytes::len);
            if n > left {
                return;
            }
            left -= n;
        }
    }));
}
