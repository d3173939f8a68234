//! The `gates` table.

use crate::GateQuery;
use crate::model::Gate;
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait GateRows {
    async fn gate_by_name(&mut self, run_id: &str, name: &str) -> Result<Option<Gate>>;
    async fn gate(&mut self, run_id: &str, gate_id: &str, lock: bool) -> Result<Option<Gate>>;
    async fn insert_gate(&mut self, gate: &Gate) -> Result<()>;
    /// Replace every column of the gate with this id.
    async fn update_gate(&mut self, gate: &Gate) -> Result<()>;
    /// A run's gates, oldest first.
    async fn gates(&mut self, run_id: &str) -> Result<Vec<Gate>>;
    /// Up to `limit` gates of every run matching `q.filter`, each with its
    /// run's workflow name, in the filter's order (ties by id), after the
    /// gate `q.before` in that order (none when no gate has that id).
    async fn list_gates(&mut self, q: &GateQuery, limit: i64) -> Result<Vec<(Gate, String)>>;
}
