//! Event reads and the live feed behind SSE and suspended wasm runs.
//!
//! Subscribers never receive event data from the feed, only a wake-up with a
//! run id; they then read committed events by `seq` from the store. That makes
//! delivery gap-free and duplicate-free, and a periodic re-read covers events
//! committed by other replicas.

use super::write::Write;
use super::{Engine, EngineError, Result};
use crate::clock::Micros;
use crate::model::Event;
use std::time::Duration;
use tokio::sync::broadcast;

/// How often a follower re-reads when nothing woke it: commits of other
/// processes (replicas, a CLI verb) never reach this one's feed.
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct EventFeed {
    tx: broadcast::Sender<String>,
    /// Ids of runs cancelled by commits of this process.
    cancels: broadcast::Sender<String>,
}

impl EventFeed {
    pub fn new() -> EventFeed {
        EventFeed {
            tx: broadcast::channel(4096).0,
            cancels: broadcast::channel(256).0,
        }
    }

    pub fn cancelled(&self, run_id: &str) {
        let _ = self.cancels.send(run_id.to_string());
    }

    pub fn notify(&self, run_id: &str) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(run_id.to_string());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }
}

impl Default for EventFeed {
    fn default() -> Self {
        Self::new()
    }
}

/// A run's event log read in order as it grows (SSE, `runs events
/// --follow`): each read returns the committed events after the last one
/// returned, so nothing is missed or repeated.
pub struct EventTail {
    engine: Engine,
    run_id: String,
    last: i64,
    wake: broadcast::Receiver<String>,
}

impl EventTail {
    /// Up to `limit` events after the last one returned, oldest first;
    /// empty when none was committed since.
    pub async fn read(&mut self, limit: i64) -> Result<Vec<Event>> {
        let batch = self
            .engine
            .events_after(&self.run_id, self.last, limit)
            .await?;
        if let Some(ev) = batch.last() {
            self.last = ev.seq;
        }
        Ok(batch)
    }

    /// Resolves when more events may have been committed: this process
    /// committed one for the run (or fell behind on notifications), or
    /// [`FOLLOW_POLL`] passed.
    pub async fn changed(&mut self) {
        let run_id = &self.run_id;
        let woken = async {
            loop {
                match self.wake.recv().await {
                    Ok(id) if id == *run_id => return,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

impl Engine {
    /// Follow `run_id`'s events after seq `after`. Subscribes before the
    /// first read, so a commit between the two still wakes the follower.
    pub fn tail_events(&self, run_id: &str, after: i64) -> EventTail {
        EventTail {
            wake: self.subscribe(),
            engine: self.clone(),
            run_id: run_id.to_string(),
            last: after,
        }
    }

    /// A run's committed events with `seq > after`, oldest first; unlike
    /// [`Engine::events_after`], an unknown run is `NotFound`.
    pub async fn run_events(&self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>> {
        let mut r = self.read().await?;
        r.run(run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        Ok(r.events_after(run_id, after, limit).await?)
    }

    /// Committed events of a run with `seq > after`, oldest first.
    pub async fn events_after(&self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>> {
        Ok(self
            .read()
            .await?
            .events_after(run_id, after, limit)
            .await?)
    }

    /// Lines a wasm workflow wrote to stdout/stderr, kept as `log` events of
    /// its run (our addition to the v0.5 catalogue), in one commit.
    pub async fn logs(&self, run_id: &str, lines: &[(&str, String)]) -> Result<()> {
        let now = self.now();
        let mut w = self.write().await?;
        for (level, message) in lines {
            self.put_log(&mut w, run_id, level, message, now).await?;
        }
        self.commit(w).await
    }

    /// One `log` event.
    pub(crate) async fn put_log(
        &self,
        w: &mut Write,
        run_id: &str,
        level: &str,
        message: &str,
        now: Micros,
    ) -> Result<()> {
        let payload = serde_json::json!({"level": level, "message": message});
        w.event(run_id, "log", payload, now).await?;
        Ok(())
    }

    /// Ids of runs cancelled in this process (other replicas' cancellations
    /// reach a wasm activation through its lease fence instead).
    pub fn cancellations(&self) -> broadcast::Receiver<String> {
        self.feed.cancels.subscribe()
    }

    /// Wake-ups (run ids) for every commit that appended events in this process.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }
}
