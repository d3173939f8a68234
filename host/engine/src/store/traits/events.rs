//! The `events` table: each run's gap-free event log.

use crate::clock::Micros;
use crate::model::{Event, Run};
use crate::store::Result;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
pub trait EventRows {
    /// Append with the next gap-free per-run `seq`. Takes the run's row lock
    /// until commit, so concurrent writers to one run get consecutive seqs.
    async fn append_event(
        &mut self,
        run_id: &str,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event>;
    /// Replace every column of `run`'s row and append one event of it, as
    /// [`EventRows::append_event`] does: one round trip.
    async fn update_run_with_event(
        &mut self,
        run: &Run,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event>;
    /// Events with `seq > after`, in order.
    async fn events_after(&mut self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>>;
}
