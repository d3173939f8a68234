//! `GET /runs/:id/events`: the committed event log as Server-Sent Events.
//!
//! One loop per connection over the engine's `EventTail`: send the committed
//! events after the last one sent, then wait until this process commits an
//! event for the run or a short poll interval passes (covering other
//! replicas). The backlog and the live tail are the same query, so nothing
//! is missed or sent twice. `Last-Event-ID` resumes after the given seq.

use super::error::ApiError;
use super::path::Path;
use crate::engine::Engine;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const BATCH: i64 = 500;

pub async fn events(
    State(engine): State<Engine>,
    Path(run_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let after = match q.get("after") {
        Some(text) => match seq_after(text) {
            Some(after) => after,
            None => {
                let issue = json!({"code": "invalid_type", "expected": "number", "received": "string",
                                   "message": "Expected a finite number", "path": ["after"]});
                return ApiError::invalid_in("query parameter", vec![issue]).into_response();
            }
        },
        // A malformed header is ignored rather than refused: browsers send it.
        None => headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(seq_after)
            .unwrap_or(0),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(pump(engine, run_id, after, tx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONNECTION, "keep-alive"),
        ],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// `after` read leniently as the protocol does (`""` is 0, fractions and
/// negatives are fine); `None` if it is not a finite number.
fn seq_after(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    Some(f.max(0.0) as i64) // saturating: a huge `after` means "nothing yet"
}

async fn pump(
    engine: Engine,
    run_id: String,
    after: i64,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut tail = engine.tail_events(&run_id, after);
    let mut quiet_since = Instant::now();
    loop {
        let batch = match tail.read(BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(run_id, error = %e, "event stream read failed; closing");
                return;
            }
        };
        for ev in &batch {
            let frame = format!(
                "data: {}\nid: {}\n\n",
                serde_json::to_string(ev).unwrap_or_default(),
                ev.seq
            );
            if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                return;
            }
            quiet_since = Instant::now();
        }
        if batch.len() as i64 == BATCH {
            continue;
        }
        if quiet_since.elapsed() >= KEEP_ALIVE {
            quiet_since = Instant::now();
            if tx
                .send(Ok(Bytes::from_static(b": keep-alive\n\n")))
                .await
                .is_err()
            {
                return;
            }
        }
        tokio::select! {
            _ = tail.changed() => {}
            _ = tx.closed() => return,
            _ = engine.shutting_down() => return,
        }
    }
}
