//! The grant audit ledger (`GET /audit`): a read of the run event log.

use crate::broker::LedgerQuery;
use crate::model::Event;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait LedgerRows {
    /// Events selected by `q` (see [`LedgerQuery`]), newest first (created
    /// time, then id), at most `q.limit`.
    async fn ledger(&mut self, q: &LedgerQuery) -> Result<Vec<Event>>;
}
