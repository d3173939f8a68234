//! `GET /runs/:id/events`: the committed event log as Server-Sent Events.
//!
//! One loop per connection: read committed events with `seq` above the last
//! one sent, send them, then sleep until this process commits an event for
//! the run or a short poll interval passes (covering other replicas). The
//! backlog and the live tail are the same query, so nothing is missed or
//! sent twice. `Last-Event-ID` resumes after the given seq.

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
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

const POLL: Duration = Duration::from_millis(500);
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
    mut last: i64,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    // Subscribe before the first read so a commit between them still wakes us.
    let mut wake = engine.subscribe();
    let mut idle = Duration::ZERO;
    loop {
        let batch = match engine.events_after(&run_id, last, BATCH).await {
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
            last = ev.seq;
        }
        if batch.len() as i64 == BATCH {
            continue;
        }
        if idle >= KEEP_ALIVE {
            idle = Duration::ZERO;
            if tx
                .send(Ok(Bytes::from_static(b": keep-alive\n\n")))
                .await
                .is_err()
            {
                return;
            }
        }
        let started = tokio::time::Instant::now();
        tokio::select! {
            _ = wait_for(&mut wake, &run_id) => idle = Duration::ZERO,
            _ = tokio::time::sleep(POLL) => idle += started.elapsed(),
            _ = tx.closed() => return,
            _ = engine.shutting_down() => return,
        }
    }
}

/// Resolves when this process commits an event for `run_id` (or falls behind
/// on notifications, in which case re-reading is the safe answer).
async fn wait_for(wake: &mut broadcast::Receiver<String>, run_id: &str) {
    loop {
        match wake.recv().await {
            Ok(id) if id == run_id => return,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}
