//! A write transaction that remembers which runs got new events and which
//! channel deliveries it recorded, so the event feed is poked and the
//! deliveries are sent only after the data is committed.

use super::{Engine, Result};
use crate::model::{Event, Run};
use crate::store::Tx;
use serde_json::Value;

pub(crate) struct Write {
    pub tx: Box<dyn Tx>,
    touched: Vec<String>,
    /// Channel deliveries recorded here, in event order: sent after commit.
    deliveries: Vec<String>,
    /// Events written through this transaction reach no channel (the
    /// reconciler's lease-expiry failures and deadline cancellations).
    pub quiet: bool,
    /// This transaction made a wasm run claimable: wake the worker.
    pub wasm_work: bool,
    /// Runs this transaction cancelled: announced to live activations.
    pub cancelled: Vec<String>,
    /// Runs this transaction ended, `(workflow, status)`: counted once committed.
    finished: Vec<(String, &'static str)>,
}

impl Engine {
    pub(crate) async fn write(&self) -> Result<Write> {
        Ok(Write {
            tx: self.store.write().await?,
            touched: Vec::new(),
            deliveries: Vec::new(),
            quiet: false,
            wasm_work: false,
            cancelled: Vec::new(),
            finished: Vec::new(),
        })
    }

    pub(crate) async fn read(&self) -> Result<Box<dyn Tx>> {
        Ok(self.store.read().await?)
    }

    pub(crate) async fn commit(&self, w: Write) -> Result<()> {
        w.tx.commit().await?;
        for run_id in w.touched {
            self.feed.notify(&run_id);
        }
        for run_id in w.cancelled {
            self.feed.cancelled(&run_id);
        }
        if w.wasm_work {
            self.wasm_ready.notify_one();
        }
        for (workflow, status) in &w.finished {
            super::telemetry::run_finished(workflow, status);
        }
        // The caller answers only once its deliveries are final (§16).
        if !w.deliveries.is_empty() {
            let engine = self.clone();
            super::outbound::detached(async move { engine.deliver(&w.deliveries).await }).await;
        }
        Ok(())
    }
}

/// The status a run ends in with an event of `kind`, if it is an ending.
fn ending(kind: &str) -> Option<&'static str> {
    match kind {
        "run.completed" => Some("completed"),
        "run.failed" => Some("failed"),
        "run.cancelled" => Some("cancelled"),
        _ => None,
    }
}

impl Write {
    pub async fn event(
        &mut self,
        run_id: &str,
        kind: &str,
        payload: Value,
        now: i64,
    ) -> Result<Event> {
        let workflow = match ending(kind) {
            Some(_) => self.tx.run(run_id, false).await?.map(|r| r.workflow_name),
            None => None,
        };
        self.append(run_id, workflow, kind, payload, now).await
    }

    /// Write `run`'s row and append an event of it, in one round trip; an
    /// ending is counted without reading the run again.
    pub async fn update_run_with_event(
        &mut self,
        run: &Run,
        kind: &str,
        payload: Value,
        now: i64,
    ) -> Result<Event> {
        let event = self
            .tx
            .update_run_with_event(run, kind, &payload, now)
            .await?;
        self.appended(event, Some(run.workflow_name.clone())).await
    }

    async fn append(
        &mut self,
        run_id: &str,
        workflow: Option<String>,
        kind: &str,
        payload: Value,
        now: i64,
    ) -> Result<Event> {
        let event = self.tx.append_event(run_id, kind, &payload, now).await?;
        self.appended(event, workflow).await
    }

    /// What follows an appended event: an ending of `workflow` is counted,
    /// channel deliveries recorded, the run announced once committed.
    async fn appended(&mut self, event: Event, workflow: Option<String>) -> Result<Event> {
        if let (Some(status), Some(workflow)) = (ending(&event.kind), workflow) {
            self.finished.push((workflow, status));
        }
        if !self.quiet {
            let ids = super::channels::record_deliveries(&mut *self.tx, &event).await?;
            self.deliveries.extend(ids);
        }
        self.touch(&event.run_id);
        Ok(event)
    }

    /// Announce a change to `run_id` once committed.
    pub fn touch(&mut self, run_id: &str) {
        if !self.touched.iter().any(|r| r == run_id) {
            self.touched.push(run_id.to_string());
        }
    }
}
