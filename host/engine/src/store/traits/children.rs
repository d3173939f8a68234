//! What hangs off a run: child-run edges (`run_edges`) and notification
//! channels (`channels`).

use crate::model::{Channel, RunEdge};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait EdgeRows {
    async fn edge(&mut self, parent_id: &str, name: &str) -> Result<Option<RunEdge>>;
    async fn insert_edge(&mut self, edge: &RunEdge) -> Result<()>;
    /// A parent's edges, oldest first.
    async fn edges(&mut self, parent_id: &str) -> Result<Vec<RunEdge>>;
}

#[async_trait]
pub trait ChannelRows {
    async fn insert_channel(&mut self, channel: &Channel) -> Result<()>;
    /// A run's channels, oldest first.
    async fn channels(&mut self, run_id: &str) -> Result<Vec<Channel>>;
}
