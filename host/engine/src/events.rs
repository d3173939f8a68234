//! Event reads and the live feed behind SSE and suspended wasm runs.
//!
//! Subscribers never receive event data from the feed, only a wake-up with a
//! run id; they then read committed events by `seq` from the store. That makes
//! delivery gap-free and duplicate-free, and a periodic re-read covers events
//! committed by other replicas.

use super::write::Write;
use super::{Engine, Result};
use crate::clock::Micros;
use crate::model::Event;
use tokio::sync::broadcast;

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

impl Engine {
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
