//! The broker's tables: `resources` and `egress_receipts`.

use crate::AuditQuery;
use crate::model::{Receipt, ResourceRecord};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait ResourceRows {
    async fn resource(&mut self, name: &str, lock: bool) -> Result<Option<ResourceRecord>>;
    /// Insert, or replace every column of the resource with this name.
    async fn put_resource(&mut self, r: &ResourceRecord) -> Result<()>;
    /// Every resource, by name.
    async fn resources(&mut self) -> Result<Vec<ResourceRecord>>;
}

#[async_trait]
pub trait ReceiptRows {
    async fn insert_receipt(&mut self, r: &Receipt) -> Result<()>;
    /// Up to `limit` receipts matching `q`'s filters, newest first, older
    /// than the receipt `q.before` (none when no receipt has that id).
    async fn receipts(&mut self, q: &AuditQuery, limit: i64) -> Result<Vec<Receipt>>;
}
