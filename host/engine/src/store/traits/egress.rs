//! The broker's tables: `resources`, `grants` and `egress_receipts`.

use crate::AuditQuery;
use crate::clock::Micros;
use crate::model::{GrantRecord, Receipt, ResourceRecord};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait ResourceRows {
    /// The resource `name` of `principal` (`None`: of no tenant).
    async fn resource(
        &mut self,
        principal: Option<&str>,
        name: &str,
        lock: bool,
    ) -> Result<Option<ResourceRecord>>;
    async fn resource_by_id(&mut self, id: &str, lock: bool) -> Result<Option<ResourceRecord>>;
    /// Insert, or replace every column of the resource with this principal
    /// and name.
    async fn put_resource(&mut self, r: &ResourceRecord) -> Result<()>;
    /// Every resource, by principal and name.
    async fn resources(&mut self) -> Result<Vec<ResourceRecord>>;
}

#[async_trait]
pub trait GrantRows {
    async fn insert_grant(&mut self, g: &GrantRecord) -> Result<()>;
    /// Replace every column of the grant with this id.
    async fn update_grant(&mut self, g: &GrantRecord) -> Result<()>;
    /// The grant `id` of run `run_id`.
    async fn grant(&mut self, run_id: &str, id: &str, lock: bool) -> Result<Option<GrantRecord>>;
    /// Live grants (pending, approved, active) through a resource, locked.
    async fn live_grants_of_resource(&mut self, resource_id: &str) -> Result<Vec<GrantRecord>>;
    /// Pending grants of a run waiting on the approval gate `gate_id`, locked.
    async fn pending_grants_of_gate(
        &mut self,
        run_id: &str,
        gate_id: &str,
    ) -> Result<Vec<GrantRecord>>;
    /// Up to `limit` live grants whose `expires_at` is before `now`, the
    /// longest expired first.
    async fn expired_grants(&mut self, now: Micros, limit: i64) -> Result<Vec<GrantRecord>>;
    /// The tenant that claimed the run for grants (`runs.grant_principal`);
    /// `None` while unclaimed.
    async fn grant_principal(&mut self, run_id: &str) -> Result<Option<String>>;
    async fn claim_run_for(&mut self, run_id: &str, principal: &str) -> Result<()>;
}

#[async_trait]
pub trait ReceiptRows {
    async fn insert_receipt(&mut self, r: &Receipt) -> Result<()>;
    /// Up to `limit` receipts matching `q`'s filters, newest first, older
    /// than the receipt `q.before` (none when no receipt has that id).
    async fn receipts(&mut self, q: &AuditQuery, limit: i64) -> Result<Vec<Receipt>>;
}
