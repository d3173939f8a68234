//! The `usage_records` table.

use crate::model::UsageRecord;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait UsageRows {
    async fn insert_usage(&mut self, usage: &UsageRecord) -> Result<()>;
    /// A run's usage records, oldest first.
    async fn usage(&mut self, run_id: &str) -> Result<Vec<UsageRecord>>;
}
