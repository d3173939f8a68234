//! SQL behind the broker: resources, grants and receipts.

use super::rows::{GRANTS, RECEIPTS, RESOURCES};
use super::sql::{SqlTx, q};
use super::{GrantRows, ReceiptRows, ResourceRows, Result};
use crate::clock::Micros;
use crate::model::{GrantRecord, Receipt, ResourceRecord, grant_status};
use async_trait::async_trait;
use tidebase_engine::AuditQuery;

/// `status IN (…)` of the live grant statuses.
fn live() -> String {
    let list = grant_status::LIVE.map(|s| format!("'{s}'")).join(", ");
    format!("status IN ({list})")
}

#[async_trait]
impl ResourceRows for SqlTx {
    async fn resource(
        &mut self,
        principal: Option<&str>,
        name: &str,
        lock: bool,
    ) -> Result<Option<ResourceRecord>> {
        let sql = format!(
            "SELECT {} FROM resources WHERE principal = $1 AND name = $2{}",
            RESOURCES.select(),
            self.dialect.lock(lock)
        );
        let query = q(&sql)
            .bind(principal.unwrap_or_default().to_string())
            .bind(name.to_string());
        self.one(query, RESOURCES.decode).await
    }

    async fn resource_by_id(&mut self, id: &str, lock: bool) -> Result<Option<ResourceRecord>> {
        let sql = format!(
            "SELECT {} FROM resources WHERE id = $1{}",
            RESOURCES.select(),
            self.dialect.lock(lock)
        );
        self.one(q(&sql).bind(id.to_string()), RESOURCES.decode)
            .await
    }

    async fn put_resource(&mut self, r: &ResourceRecord) -> Result<()> {
        self.upsert(&RESOURCES, "principal, name", r).await
    }

    async fn resources(&mut self) -> Result<Vec<ResourceRecord>> {
        let sql = format!(
            "SELECT {} FROM resources ORDER BY principal, name",
            RESOURCES.select()
        );
        self.all(q(&sql), RESOURCES.decode).await
    }
}

#[async_trait]
impl GrantRows for SqlTx {
    async fn insert_grant(&mut self, g: &GrantRecord) -> Result<()> {
        self.insert(&GRANTS, g).await
    }

    async fn update_grant(&mut self, g: &GrantRecord) -> Result<()> {
        self.update(&GRANTS, "id", g).await
    }

    async fn grant(&mut self, run_id: &str, id: &str, lock: bool) -> Result<Option<GrantRecord>> {
        let sql = format!(
            "SELECT {} FROM grants WHERE id = $1 AND run_id = $2{}",
            GRANTS.select(),
            self.dialect.lock(lock)
        );
        let query = q(&sql).bind(id.to_string()).bind(run_id.to_string());
        self.one(query, GRANTS.decode).await
    }

    async fn live_grants_of_resource(&mut self, resource_id: &str) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            "SELECT {} FROM grants WHERE resource_id = $1 AND {} ORDER BY created_at, id{}",
            GRANTS.select(),
            live(),
            self.dialect.row_lock
        );
        self.all(q(&sql).bind(resource_id.to_string()), GRANTS.decode)
            .await
    }

    async fn pending_grants_of_gate(
        &mut self,
        run_id: &str,
        gate_id: &str,
    ) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            "SELECT {} FROM grants WHERE run_id = $1 AND gate_id = $2 AND status = '{}' \
             ORDER BY created_at, id{}",
            GRANTS.select(),
            grant_status::PENDING,
            self.dialect.row_lock
        );
        let query = q(&sql).bind(run_id.to_string()).bind(gate_id.to_string());
        self.all(query, GRANTS.decode).await
    }

    async fn expired_grants(&mut self, now: Micros, limit: i64) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            "SELECT {} FROM grants WHERE {} AND expires_at < $1 \
             ORDER BY expires_at, id LIMIT $2",
            GRANTS.select(),
            live()
        );
        self.all(q(&sql).bind(now).bind(limit), GRANTS.decode).await
    }

    async fn grant_principal(&mut self, run_id: &str) -> Result<Option<String>> {
        let query = q("SELECT grant_principal FROM runs WHERE id = $1").bind(run_id.to_string());
        self.value(query).await
    }

    async fn claim_run_for(&mut self, run_id: &str, principal: &str) -> Result<()> {
        let query = q("UPDATE runs SET grant_principal = $2 WHERE id = $1")
            .bind(run_id.to_string())
            .bind(principal.to_string());
        self.exec(query).await?;
        Ok(())
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
