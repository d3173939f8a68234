//! The `schedules` table.

use crate::clock::Micros;
use crate::model::Schedule;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait ScheduleRows {
    async fn schedule(&mut self, name: &str, lock: bool) -> Result<Option<Schedule>>;
    /// All schedules, sorted by name.
    async fn schedules(&mut self) -> Result<Vec<Schedule>>;
    /// Insert or fully replace a schedule.
    async fn put_schedule(&mut self, schedule: &Schedule) -> Result<()>;
    async fn delete_schedule(&mut self, name: &str) -> Result<bool>;
    /// Enabled schedules with `next_run_at <= now`.
    async fn due_schedules(&mut self, now: Micros) -> Result<Vec<Schedule>>;
}
