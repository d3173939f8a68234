//! SQL behind the egress broker: resources and receipts.

use super::rows::{RECEIPTS, RESOURCES};
use super::sql::{SqlTx, q};
use super::{ReceiptRows, ResourceRows, Result};
use crate::model::{Receipt, ResourceRecord};
use async_trait::async_trait;
use tidebase_engine::AuditQuery;

#[async_trait]
impl ResourceRows for SqlTx {
    async fn resource(&mut self, name: &str, lock: bool) -> Result<Option<ResourceRecord>> {
        let sql = format!(
            "SELECT {} FROM resources WHERE principal = '' AND name = $1{}",
            RESOURCES.select(),
            self.dialect.lock(lock)
        );
        self.one(q(&sql).bind(name.to_string()), RESOURCES.decode)
            .await
    }

    async fn put_resource(&mut self, r: &ResourceRecord) -> Result<()> {
        // Resources the operator connects belong to no tenant (principal '').
        self.upsert(&RESOURCES, "principal, name", r).await
    }

    async fn resources(&mut self) -> Result<Vec<ResourceRecord>> {
        let sql = format!("SELECT {} FROM resources ORDER BY name", RESOURCES.select());
        self.all(q(&sql), RESOURCES.decode).await
    }
}

#[async_trait]
impl ReceiptRows for SqlTx {
    async fn insert_receipt(&mut self, r: &Receipt) -> Result<()> {
        self.insert(&RECEIPTS, r).await
    }

    async fn receipts(&mut self, f: &AuditQuery, limit: i64) -> Result<Vec<Receipt>> {
        let sql = format!(
            "SELECT {} FROM egress_receipts WHERE ($1 IS NULL OR run_id = $1) \
             AND ($2 IS NULL OR resource = $2) AND ($3 IS NULL OR decision = $3) \
             AND ($4 IS NULL OR seq < (SELECT seq FROM egress_receipts WHERE id = $4)) \
             ORDER BY seq DESC LIMIT $5",
            RECEIPTS.select()
        );
        let query = q(&sql)
            .bind(f.run_id.clone())
            .bind(f.resource.clone())
            .bind(f.decision.clone())
            .bind(f.before.clone())
            .bind(limit);
        self.all(query, RECEIPTS.decode).await
    }
}
