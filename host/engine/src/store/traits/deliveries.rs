//! The `channel_deliveries` table: outbound channel webhook calls.

use crate::clock::Micros;
use crate::model::{CallOutcome, Delivery, DeliveryRecord};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait DeliveryRows {
    /// Record a `pending` channel delivery.
    async fn insert_delivery(&mut self, delivery: &Delivery) -> Result<()>;
    /// Take a pending delivery for sending until `until`, unless another
    /// sender holds it; returns it when taken.
    async fn claim_delivery(
        &mut self,
        id: &str,
        now: Micros,
        until: Micros,
    ) -> Result<Option<Delivery>>;
    async fn finish_delivery(&mut self, id: &str, outcome: &CallOutcome, now: Micros)
    -> Result<()>;
    /// Pending deliveries created before `before` that no sender holds.
    async fn stale_deliveries(
        &mut self,
        before: Micros,
        now: Micros,
        limit: i64,
    ) -> Result<Vec<Delivery>>;
    /// A run's deliveries, newest first, at most 100.
    async fn deliveries(&mut self, run_id: &str) -> Result<Vec<DeliveryRecord>>;
}
