//! The `steps` table.

use crate::model::{RunStatus, Step};
use crate::store::{NewStep, Result};
use async_trait::async_trait;

#[async_trait]
pub trait StepRows {
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
    /// Replace every column of the step with this id.
    async fn update_step(&mut self, step: &Step) -> Result<()>;
    /// Insert whole new steps of one run, each row with its events appended
    /// in order: one round trip. Unfenced: the transaction has already
    /// locked the run and checked its writer. A unique violation means a
    /// step of one of their names exists.
    async fn insert_new_steps(&mut self, steps: &[NewStep]) -> Result<()>;
    /// A run's steps, oldest first.
    async fn steps(&mut self, run_id: &str) -> Result<Vec<Step>>;
}
