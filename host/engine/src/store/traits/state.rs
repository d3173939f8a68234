//! Run state: the live value (`run_state`), named streams
//! (`state_streams`) and their versions (`state_versions`).

use crate::model::{LiveState, StateStream, StateVersion};
use crate::store::Result;
use async_trait::async_trait;

#[async_trait]
pub trait StateRows {
    async fn live_state(&mut self, run_id: &str, lock: bool) -> Result<Option<LiveState>>;
    /// Insert or replace a run's live state.
    async fn put_live_state(&mut self, state: &LiveState) -> Result<()>;
    async fn stream(&mut self, run_id: &str, name: &str, lock: bool)
    -> Result<Option<StateStream>>;
    /// Insert (`insert`) or replace the stream with this id.
    async fn put_stream(&mut self, stream: &StateStream, insert: bool) -> Result<()>;
    async fn insert_version(&mut self, version: &StateVersion) -> Result<()>;
    /// A run's streams, oldest first.
    async fn streams(&mut self, run_id: &str) -> Result<Vec<StateStream>>;
    /// Versions of a run, ordered by stream name then version.
    async fn versions(
        &mut self,
        run_id: &str,
        stream: Option<&str>,
        labeled_only: bool,
    ) -> Result<Vec<StateVersion>>;
    /// Labelled versions, newest first.
    async fn snapshots(&mut self, run_id: &str) -> Result<Vec<StateVersion>>;
}
