//! The `recovery_attempts` table: recovery and invoke webhook calls.

use crate::clock::Micros;
use crate::model::RecoveryAttempt;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait RecoveryRows {
    async fn insert_recovery_attempt(&mut self, attempt: &RecoveryAttempt) -> Result<()>;
    /// Record an attempt's outcome (status, response, error, completion).
    async fn finish_recovery_attempt(&mut self, attempt: &RecoveryAttempt) -> Result<()>;
    /// When the newest recovery attempt of a run was created.
    async fn latest_recovery_attempt_at(&mut self, run_id: &str) -> Result<Option<Micros>>;
    /// A run's attempts, newest first.
    async fn recovery_attempts(&mut self, run_id: &str) -> Result<Vec<RecoveryAttempt>>;
}
