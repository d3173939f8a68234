//! The event log: gap-free, ordered `seq` under concurrent writers, and the
//! SSE stream delivering exactly that log, in order, once.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Upper bound on waiting for one SSE chunk, so a broken stream fails the
/// test instead of hanging it. Not a synchronisation device.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// A Server-Sent Events reader over a chunked response body.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub async fn open(rb: reqwest::RequestBuilder) -> Sse {
        let resp = rb.send().await.expect("open event stream");
        assert_eq!(resp.status().as_u16(), 200, "event stream status");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(ct, "text/event-stream");
        let cc = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(cc, "no-cache");
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next frame (text before a blank line), skipping comment-only frames.
    async fn next_frame(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame = self.buf[..end].to_string();
                self.buf.drain(..end + 2);
                if frame.lines().all(|l| l.starts_with(':')) {
                    continue;
                }
                return frame;
            }
            let chunk = tokio::time::timeout(READ_LIMIT, self.resp.chunk())
                .await
                .expect("no SSE data within the read limit")
                .expect("SSE read error")
                .expect("SSE stream ended");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8 SSE chunk"));
        }
    }

    /// The next event: exactly `data: <Event JSON>\nid: <seq>`.
    pub async fn next_event(&mut self) -> Value {
        let frame = self.next_frame().await;
        let lines: Vec<&str> = frame.split('\n').collect();
        assert_eq!(
            lines.len(),
            2,
            "frame is a data line and an id line: {frame:?}"
        );
        let data = lines[0]
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("no data line: {frame:?}"));
        let id = lines[1]
            .strip_prefix("id: ")
            .unwrap_or_else(|| panic!("no id line: {frame:?}"));
        let event: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("data is not JSON ({e}): {data}"));
        assert_eq!(id, event["seq"].to_string(), "id line equals the event seq");
        for key in ["id", "runId", "seq", "type", "payload", "createdAt"] {
            assert!(event.get(key).is_some(), "event lacks {key}: {event}");
        }
        event
    }

    /// Events until (and including) `last_seq`.
    pub async fn events_until(&mut self, last_seq: i64) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let ev = self.next_event().await;
            let seq = ev["seq"].as_i64().unwrap();
            assert!(
                seq <= last_seq,
                "seq {seq} beyond the expected end {last_seq}"
            );
            out.push(ev);
            if seq == last_seq {
                return out;
            }
        }
    }
}

/// One write that appends exactly one event; `n` picks the kind.
async fn one_write(h: &Handle, run: &str, task: usize, n: usize, open_step: &mut Option<String>) {
    let owner = format!("o{task}");
    let (s, b) = match n % 5 {
        0 => {
            h.call(
                Method::PUT,
                &format!("/runs/{run}/state"),
                Some(json!({"value": {"t": task, "n": n}, "stream": format!("s{task}")})),
            )
            .await
        }
        1 => {
            h.call(
                Method::PATCH,
                &format!("/runs/{run}/state"),
                Some(json!({"value": {format!("k{task}"): n}})),
            )
            .await
        }
        2 => {
            h.post(
                &format!("/runs/{run}/usage"),
                json!({"kind": "llm", "inputTokens": n, "outputTokens": task}),
            )
            .await
        }
        3 => {
            let body =
                json!({"name": format!("t{task}-{n}"), "inputHash": "h", "leaseOwner": owner});
            let (s, b) = h.post(&format!("/runs/{run}/steps/begin"), body).await;
            assert_eq!(b["action"], "execute", "{b}");
            *open_step = Some(b["step"]["id"].as_str().unwrap().to_string());
            (s, b)
        }
        _ => {
            let step = open_step.take().expect("a step to complete");
            h.post(
                &format!("/runs/{run}/steps/{step}/complete"),
                json!({"leaseOwner": owner, "output": n}),
            )
            .await
        }
    };
    assert_eq!(s, 200, "write {n} of task {task}: {b}");
}

/// `tasks` concurrent writers doing `per_task` writes each.
async fn write_concurrently(srv: &TestServer, run: &str, tasks: usize, per_task: usize) {
    let h = srv.handle();
    let run = run.to_string();
    concurrently(tasks, |t| {
        let (h, run) = (h.clone(), run.clone());
        async move {
            let mut open = None;
            for n in 0..per_task {
                one_write(&h, &run, t, n, &mut open).await;
            }
        }
    })
    .await;
}

backend_tests!(
    events_are_gap_free_under_concurrent_writers,
    sse_streams_the_log_in_order_exactly_once
);

async fn events_are_gap_free_under_concurrent_writers(srv: TestServer) {
    let run = srv.running_run("busy", "w").await;
    write_concurrently(&srv, &run, 8, 25).await;

    let d = srv.detail(&run).await;
    let events = d["events"].as_array().unwrap();
    assert_eq!(events.len(), 2 + 8 * 25, "one event per write");
    assert_gap_free(events);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "event ids increase with seq: {ids:?}"
    );
    assert!(events.iter().all(|e| e["runId"] == run.as_str()));
    assert_eq!(count_events(events, "state.updated"), 80);
    assert_eq!(count_events(events, "usage.recorded"), 40);
    assert_eq!(count_events(events, "step.started"), 40);
    assert_eq!(count_events(events, "step.completed"), 40);

    // Per-stream state versions stayed gap-free too.
    for (stream, n) in [("run".to_string(), 40)]
        .into_iter()
        .chain((0..8).map(|t| (format!("s{t}"), 5)))
    {
        let (s, b) = srv
            .get(&format!("/runs/{run}/state/versions?stream={stream}"))
            .await;
        assert_eq!(s, 200);
        let versions: Vec<i64> = b["stateVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, (1..=n).collect::<Vec<_>>(), "stream {stream}");
    }
}

async fn sse_streams_the_log_in_order_exactly_once(srv: TestServer) {
    let run = srv.create_run("watched").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events_path = format!("/runs/{run}/events");
    let mut live = Sse::open(srv.request(Method::GET, &events_path)).await;

    // Writers start only after the stream is open; 1 + 4 × 10 events.
    let writers = {
        let h = srv.handle();
        let run = run.clone();
        tokio::spawn(async move {
            concurrently(4, |t| {
                let (h, run) = (h.clone(), run.clone());
                async move {
                    let mut open = None;
                    for n in 0..10 {
                        one_write(&h, &run, t, n, &mut open).await;
                    }
                }
            })
            .await
        })
    };
    let streamed = live.events_until(41).await;
    writers.await.unwrap();
    let seqs: Vec<i64> = streamed
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=41).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let stored = srv.events(&run).await;
    assert_eq!(streamed, stored, "streamed events equal the stored log");

    // `?after=k` and `Last-Event-ID: k` start after k.
    let mut after = Sse::open(srv.request(Method::GET, &format!("{events_path}?after=5"))).await;
    let mut resumed = Sse::open(
        srv.request(Method::GET, &events_path)
            .header("last-event-id", "5"),
    )
    .await;
    for sse in [&mut after, &mut resumed] {
        let got = sse.events_until(41).await;
        assert_eq!(got, stored[5..].to_vec(), "backlog after seq 5");
    }

    // One more write: every open stream sees exactly seq 42 next.
    let (s, _) = srv.post(&format!("/runs/{run}/usage"), json!({})).await;
    assert_eq!(s, 200);
    for sse in [&mut live, &mut after, &mut resumed] {
        let ev = sse.next_event().await;
        assert_eq!(
            ev["seq"], 42,
            "next frame is the new event, no duplicates: {ev}"
        );
        assert_eq!(ev["type"], "usage.recorded");
    }

    // A stream opened at the end of the log waits for new events only.
    let mut tail = Sse::open(srv.request(Method::GET, &format!("{events_path}?after=42"))).await;
    let (s, _) = srv.post(&format!("/runs/{run}/cancel"), json!({})).await;
    assert_eq!(s, 200);
    let ev = tail.next_event().await;
    assert_eq!(
        (ev["seq"].clone(), ev["type"].clone()),
        (json!(43), json!("run.cancelled"))
    );
}
