//! The audit trail: every egress decision, allowed or denied, is a receipt,
//! stored for the receipts listing and appended to its run's events as
//! `egress.call` in the same commit.

use super::super::{Engine, EngineError, Result, limits};
use crate::model::Receipt;
use crate::write::Write;
use serde::Serialize;
use serde_json::json;

/// Filters and page of an audit read, newest first.
#[derive(Clone, Debug)]
pub struct AuditQuery {
    pub run_id: Option<String>,
    pub resource: Option<String>,
    /// `allowed` or `denied`.
    pub decision: Option<String>,
    /// 1–500 ([`limits::AUDIT_LIMIT`]); 100 by default.
    pub limit: i64,
    /// The `nextCursor` of the previous page: receipts older than this one.
    pub before: Option<String>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            run_id: None,
            resource: None,
            decision: None,
            limit: limits::AUDIT_LIMIT_DEFAULT,
            before: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub receipts: Vec<Receipt>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

impl Engine {
    /// Receipts matching `q`, newest first. A cursor no receipt has reads
    /// as an empty page.
    pub async fn audit(&self, q: AuditQuery) -> Result<AuditPage> {
        limits::AUDIT_LIMIT.check("limit", q.limit)?;
        if let Some(d) = q
            .decision
            .as_deref()
            .filter(|d| !matches!(*d, "allowed" | "denied"))
        {
            return Err(EngineError::BadRequest(format!(
                "decision must be allowed or denied, not {d:?}"
            )));
        }
        let mut receipts = self.read().await?.receipts(&q, q.limit + 1).await?;
        let more = receipts.len() as i64 > q.limit;
        receipts.truncate(q.limit as usize);
        let next_cursor = more
            .then(|| receipts.last().map(|r| r.id.clone()))
            .flatten();
        Ok(AuditPage {
            receipts,
            next_cursor,
        })
    }

    /// Store `receipt` and append it to its run as `egress.call`, in `w`.
    pub(crate) async fn record_receipt(&self, w: &mut Write, receipt: &Receipt) -> Result<()> {
        w.tx.insert_receipt(receipt).await?;
        w.event(&receipt.run_id, "egress.call", json!(receipt), self.now())
            .await?;
        Ok(())
    }
}
