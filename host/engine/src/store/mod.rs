//! Persistence behind one boundary. The engine speaks to [`Store`] and [`Tx`]
//! in terms of rows; it never sees SQL or which database it runs on. The SQL
//! implementation for Postgres and SQLite is the `tidebase-store-sql` crate.

mod queues;
mod wasm;

pub use queues::{Claimant, QueueTx};
pub use wasm::WasmTx;

use crate::clock::Micros;
use crate::model::{
    Channel, Event, Gate, LiveState, Run, RunEdge, RunStatus, StateStream, StateVersion, Step,
    UsageRecord,
};
use async_trait::async_trait;
use serde_json::Value;

pub type Result<T> = anyhow::Result<T>;

/// Where runs, checkpoints and events live.
#[async_trait]
pub trait Store: Send + Sync {
    /// Exclusion across every process sharing this store (one reconciler
    /// tick at a time); `None` while another holder has `key`.
    async fn try_exclusive(&self, key: i64) -> Result<Option<Box<dyn Exclusive>>>;
    /// A write transaction. Writers that touch the same run serialise on its
    /// row (Postgres) or on the database write lock (SQLite `BEGIN IMMEDIATE`).
    async fn write(&self) -> Result<Box<dyn Tx>>;
    /// Plain reads outside any transaction: replaying a checkpoint through
    /// this performs no durable write.
    async fn read(&self) -> Result<Box<dyn Tx>>;
    /// Atomically insert `step` with its `step.started` event (payload
    /// given) unless a step of that name already exists in the run; `None`
    /// when one did. The first-begin fast path: one round trip on Postgres.
    async fn insert_step_if_absent(
        &self,
        step: &Step,
        started: &Value,
        now: Micros,
    ) -> Result<Option<Event>>;
    /// Atomically record a whole new step (row plus its events), but only
    /// while `owner` holds the run's lease, the run is not cancelled and no
    /// step of that name exists; `false` when any condition fails (nothing
    /// is written). The wasm one-commit checkpoint.
    async fn record_new_step(
        &self,
        step: &Step,
        owner: &str,
        events: &[(&str, Value)],
        now: Micros,
    ) -> Result<bool>;
}

/// Row operations, inside a write transaction or a read connection.
#[async_trait]
pub trait Tx: QueueTx + WasmTx + Send {
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Serialise with every other transaction taking the same key until commit
    /// (needed on Postgres for rows that do not exist yet).
    async fn lock_key(&mut self, key: &str) -> Result<()>;

    async fn run(&mut self, id: &str, lock: bool) -> Result<Option<Run>>;
    async fn insert_run(&mut self, run: &Run) -> Result<()>;
    async fn update_run(&mut self, run: &Run) -> Result<()>;
    async fn list_runs(&mut self, limit: i64) -> Result<Vec<Run>>;

    async fn step_by_name(&mut self, run_id: &str, name: &str, lock: bool) -> Result<Option<Step>>;
    /// A run's status and its step `name`, in one read (`None`: no such run).
    async fn run_status_and_step(
        &mut self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(RunStatus, Option<Step>)>>;
    async fn step(&mut self, run_id: &str, step_id: &str, lock: bool) -> Result<Option<Step>>;
    async fn step_exists(&mut self, step_id: &str) -> Result<bool>;
    async fn insert_step(&mut self, step: &Step) -> Result<()>;
    async fn update_step(&mut self, step: &Step) -> Result<()>;
    async fn steps(&mut self, run_id: &str) -> Result<Vec<Step>>;

    /// Append with the next gap-free per-run `seq`.
    async fn append_event(
        &mut self,
        run_id: &str,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event>;
    async fn events_after(&mut self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>>;

    async fn gate_by_name(&mut self, run_id: &str, name: &str) -> Result<Option<Gate>>;
    async fn gate(&mut self, run_id: &str, gate_id: &str, lock: bool) -> Result<Option<Gate>>;
    async fn insert_gate(&mut self, gate: &Gate) -> Result<()>;
    async fn update_gate(&mut self, gate: &Gate) -> Result<()>;
    async fn gates(&mut self, run_id: &str) -> Result<Vec<Gate>>;

    async fn edge(&mut self, parent_id: &str, name: &str) -> Result<Option<RunEdge>>;
    async fn insert_edge(&mut self, edge: &RunEdge) -> Result<()>;
    async fn edges(&mut self, parent_id: &str) -> Result<Vec<RunEdge>>;

    async fn insert_channel(&mut self, channel: &Channel) -> Result<()>;
    async fn channels(&mut self, run_id: &str) -> Result<Vec<Channel>>;

    async fn live_state(&mut self, run_id: &str, lock: bool) -> Result<Option<LiveState>>;
    async fn put_live_state(&mut self, state: &LiveState) -> Result<()>;
    async fn stream(&mut self, run_id: &str, name: &str, lock: bool)
    -> Result<Option<StateStream>>;
    async fn put_stream(&mut self, stream: &StateStream, insert: bool) -> Result<()>;
    async fn insert_version(&mut self, version: &StateVersion) -> Result<()>;
    async fn streams(&mut self, run_id: &str) -> Result<Vec<StateStream>>;
    /// Versions of a run, ordered by stream name then version.
    async fn versions(
        &mut self,
        run_id: &str,
        stream: Option<&str>,
        labeled_only: bool,
    ) -> Result<Vec<StateVersion>>;
    /// Labelled versions, newest first.
    async fn snapshots(&mut self, run_id: &str) -> Result<Vec<StateVersion>>;

    async fn insert_usage(&mut self, usage: &UsageRecord) -> Result<()>;
    async fn usage(&mut self, run_id: &str) -> Result<Vec<UsageRecord>>;

    /// Recovery attempts (newest first) and channel deliveries (newest
    /// first, at most 100) as wire objects, for run detail.
    async fn recovery_attempts(&mut self, run_id: &str) -> Result<Vec<Value>>;
    async fn deliveries(&mut self, run_id: &str) -> Result<Vec<Value>>;
}

/// Held exclusion from [`Store::try_exclusive`].
#[async_trait]
pub trait Exclusive: Send {
    /// End it; dropping without release ends it too, but only when the
    /// underlying session closes.
    async fn release(self: Box<Self>) -> Result<()>;
}
