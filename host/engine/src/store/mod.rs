//! Persistence behind one boundary. The engine speaks to [`Store`] and [`Tx`]
//! in terms of rows; it never sees SQL nor which database it runs on. The
//! row operations are split per table or consumer ([`traits`]); [`Tx`]
//! combines them. The SQL implementation for Postgres and SQLite is the
//! `tidebase-store-sql` crate, where every dialect difference is a field of
//! its `Dialect`.

mod error;
mod traits;

pub use error::{BoxError, Result, StoreError};
pub use traits::*;

use crate::clock::Micros;
use crate::model::{Event, Run, Step};
use async_trait::async_trait;
use serde_json::Value;

/// Where runs, checkpoints and events live.
#[async_trait]
pub trait Store: Send + Sync {
    /// A write transaction. Writers that touch the same run serialise on its
    /// row (Postgres) or on the database write lock (SQLite).
    async fn write(&self) -> Result<Box<dyn Tx>>;
    /// Plain reads outside any transaction: replaying a checkpoint through
    /// this performs no durable write.
    async fn read(&self) -> Result<Box<dyn Tx>>;
    /// Atomically insert `step` with its `step.started` event (payload
    /// given) unless a step of that name already exists in the run; `None`
    /// when one did. The first-begin fast path: one round trip (on SQLite, one
    /// script of the whole write transaction).
    async fn insert_step_if_absent(
        &self,
        step: &Step,
        started: &Value,
        now: Micros,
    ) -> Result<Option<Event>>;
    /// Atomically record whole new steps of one run (each row plus its
    /// events, appended in order), but only while the run admits `owner` as
    /// its writer (`Run::fence`) and no step of any of their names exists;
    /// `false` when any condition fails (nothing is written). The wasm
    /// checkpoint of a step's first attempt, and the group commit of a
    /// batch of them: one round trip (one statement on Postgres, one script
    /// of the whole write transaction on SQLite).
    async fn record_new_steps(&self, owner: &str, steps: &[NewStep]) -> Result<bool>;
    /// Atomically take the run lease on up to `claim.limit` wasm runs that
    /// may be picked up now (pending, or running with no live lease and not
    /// parked into the future), each changed as [`Run::claim`] says and
    /// given the event it names. A run another claimer holds is skipped: no
    /// run goes to two claimers. The runs as claimed, oldest first. One
    /// statement on Postgres, one transaction on SQLite.
    async fn claim_wasm_runs(&self, claim: &WasmClaim<'_>) -> Result<Vec<ClaimedRun>>;
    /// Atomically replace the row of `read.id` with `step` and append one
    /// event of it, but only while the stored row is still the attempt
    /// `read` saw (same lease owner, attempt, status and `updated_at`:
    /// nobody wrote it since); `None` when it is not (nothing is written).
    /// The fenced HTTP step-complete: one round trip (on SQLite, one script of
    /// the whole write transaction).
    async fn replace_step_if_unchanged(
        &self,
        read: &Step,
        step: &Step,
        event: (&str, &Value),
        now: Micros,
    ) -> Result<Option<Event>>;
    /// Exclusion under `key` among every process sharing this database,
    /// without waiting: `None` while someone else holds it. Held until
    /// released or dropped.
    async fn try_exclusive(&self, key: i64) -> Result<Option<Box<dyn Exclusive>>>;
}

/// A completed step recorded whole ([`Store::record_new_steps`]): its row,
/// and its events appended at `at`.
#[derive(Clone, Debug)]
pub struct NewStep {
    pub step: Step,
    pub events: Vec<(&'static str, Value)>,
    pub at: Micros,
}

/// What [`Store::claim_wasm_runs`] claims, for whom, until when.
#[derive(Clone, Debug)]
pub struct WasmClaim<'a> {
    pub owner: &'a str,
    pub now: Micros,
    /// The run lease's expiry.
    pub lease_expires_at: Micros,
    pub limit: i64,
    /// Only this run and its descendants; `None`: any run.
    pub root: Option<&'a str>,
    /// The payload of each claim's event.
    pub payload: Value,
}

/// A run [`Store::claim_wasm_runs`] claimed.
#[derive(Clone, Debug)]
pub struct ClaimedRun {
    pub run: Run,
    /// Whether any step or outside-step call of the run was recorded when
    /// it was claimed. Under the run lease only its holder adds either, so
    /// `false` lets an activation start without reading them.
    pub recorded: bool,
}

/// A held [`Store::try_exclusive`].
#[async_trait]
pub trait Exclusive: Send {
    async fn release(self: Box<Self>) -> Result<()>;
}

/// Row operations, inside a write transaction or a read connection.
#[async_trait]
pub trait Tx:
    RunRows
    + StepRows
    + EventRows
    + GateRows
    + EdgeRows
    + ChannelRows
    + StateRows
    + UsageRows
    + QueueRows
    + QueueConfigRows
    + ScheduleRows
    + SweepRows
    + RecoveryRows
    + DeliveryRows
    + DeploymentRows
    + HostCallRows
    + WasmRunRows
    + ResourceRows
    + GrantRows
    + ReceiptRows
    + AgentRows
    + AbuseRows
    + LedgerRows
    + Send
{
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Serialise with every other transaction taking the same key until commit
    /// (needed on Postgres for rows that do not exist yet).
    async fn lock_key(&mut self, key: &str) -> Result<()>;
}
