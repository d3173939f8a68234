//! The `runs` table, by id.

use crate::RunQuery;
use crate::model::{Run, RunStatus};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait RunRows {
    /// With `lock`, the row stays locked until commit.
    async fn run(&mut self, id: &str, lock: bool) -> Result<Option<Run>>;
    async fn insert_run(&mut self, run: &Run) -> Result<()>;
    /// Replace every column of the run with this id.
    async fn update_run(&mut self, run: &Run) -> Result<()>;
    /// Up to `limit` runs matching `q`'s filters, newest first (ties by
    /// id), after the run `q.before` in that order (none when no run has
    /// that id).
    async fn find_runs(&mut self, q: &RunQuery, limit: i64) -> Result<Vec<Run>>;
    /// How many runs each `(workflow, status)` has; only non-zero counts.
    async fn run_counts(&mut self) -> Result<Vec<(String, RunStatus, i64)>>;
}
