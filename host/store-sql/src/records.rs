//! SQL for what a run records besides steps and events: gates, child
//! edges, channels, state and usage.

use super::rows::{CHANNELS, EDGES, GATES, LIVE_STATE, STREAMS, USAGE, VERSIONS};
use super::sql::{SqlTx, q};
use super::{ChannelRows, EdgeRows, GateRows, Result, StateRows, UsageRows};
use crate::model::{Channel, Gate, LiveState, RunEdge, StateStream, StateVersion, UsageRecord};
use async_trait::async_trait;
use tidebase_engine::GateQuery;

#[async_trait]
impl GateRows for SqlTx {
    async fn gate_by_name(&mut self, run_id: &str, name: &str) -> Result<Option<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE run_id = $1 AND name = $2",
            GATES.select()
        );
        let query = q(&sql).bind(run_id.to_string()).bind(name.to_string());
        self.one(query, GATES.decode).await
    }

    async fn gate(&mut self, run_id: &str, gate_id: &str, lock: bool) -> Result<Option<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE id = $1 AND run_id = $2{}",
            GATES.select(),
            self.dialect.lock(lock)
        );
        let query = q(&sql).bind(gate_id.to_string()).bind(run_id.to_string());
        self.one(query, GATES.decode).await
    }

    async fn insert_gate(&mut self, g: &Gate) -> Result<()> {
        self.insert(&GATES, g).await
    }

    async fn update_gate(&mut self, g: &Gate) -> Result<()> {
        self.update(&GATES, "id", g).await
    }

    async fn gates(&mut self, run_id: &str) -> Result<Vec<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE run_id = $1 ORDER BY created_at, id",
            GATES.select()
        );
        self.all(q(&sql).bind(run_id.to_string()), GATES.decode)
            .await
    }

    async fn list_gates(&mut self, gq: &GateQuery, limit: i64) -> Result<Vec<(Gate, String)>> {
        super::listing::list_gates(self, gq, limit).await
    }
}

#[async_trait]
impl EdgeRows for SqlTx {
    async fn edge(&mut self, parent_id: &str, name: &str) -> Result<Option<RunEdge>> {
        let sql = format!(
            "SELECT {} FROM run_edges WHERE parent_run_id = $1 AND name = $2",
            EDGES.select()
        );
        let query = q(&sql).bind(parent_id.to_string()).bind(name.to_string());
        self.one(query, EDGES.decode).await
    }

    async fn insert_edge(&mut self, e: &RunEdge) -> Result<()> {
        self.insert(&EDGES, e).await
    }

    async fn edges(&mut self, parent_id: &str) -> Result<Vec<RunEdge>> {
        let sql = format!(
            "SELECT {} FROM run_edges WHERE parent_run_id = $1 ORDER BY created_at, id",
            EDGES.select()
        );
        self.all(q(&sql).bind(parent_id.to_string()), EDGES.decode)
            .await
    }
}

#[async_trait]
impl ChannelRows for SqlTx {
    async fn insert_channel(&mut self, c: &Channel) -> Result<()> {
        self.insert(&CHANNELS, c).await
    }

    async fn channels(&mut self, run_id: &str) -> Result<Vec<Channel>> {
        let sql = format!(
            "SELECT {} FROM channels WHERE run_id = $1 ORDER BY created_at, id",
            CHANNELS.select()
        );
        self.all(q(&sql).bind(run_id.to_string()), CHANNELS.decode)
            .await
    }
}

#[async_trait]
impl StateRows for SqlTx {
    async fn live_state(&mut self, run_id: &str, lock: bool) -> Result<Option<LiveState>> {
        let sql = format!(
            "SELECT {} FROM run_state WHERE run_id = $1{}",
            LIVE_STATE.select(),
            self.dialect.lock(lock)
        );
        self.one(q(&sql).bind(run_id.to_string()), LIVE_STATE.decode)
            .await
    }

    async fn put_live_state(&mut self, s: &LiveState) -> Result<()> {
        self.upsert(&LIVE_STATE, "run_id", s).await
    }

    async fn stream(
        &mut self,
        run_id: &str,
        name: &str,
        lock: bool,
    ) -> Result<Option<StateStream>> {
        let sql = format!(
            "SELECT {} FROM state_streams WHERE run_id = $1 AND name = $2{}",
            STREAMS.select(),
            self.dialect.lock(lock)
        );
        let query = q(&sql).bind(run_id.to_string()).bind(name.to_string());
        self.one(query, STREAMS.decode).await
    }

    async fn put_stream(&mut self, s: &StateStream, insert: bool) -> Result<()> {
        if insert {
            self.insert(&STREAMS, s).await
        } else {
            self.update(&STREAMS, "id", s).await
        }
    }

    async fn insert_version(&mut self, v: &StateVersion) -> Result<()> {
        self.insert(&VERSIONS, v).await
    }

    async fn streams(&mut self, run_id: &str) -> Result<Vec<StateStream>> {
        let sql = format!(
            "SELECT {} FROM state_streams WHERE run_id = $1 ORDER BY created_at, id",
            STREAMS.select()
        );
        self.all(q(&sql).bind(run_id.to_string()), STREAMS.decode)
            .await
    }

    async fn versions(
        &mut self,
        run_id: &str,
        stream: Option<&str>,
        labeled_only: bool,
    ) -> Result<Vec<StateVersion>> {
        let label_filter = if labeled_only {
            " AND v.label IS NOT NULL"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {} FROM state_versions v JOIN state_streams s ON s.id = v.stream_id \
             WHERE v.run_id = $1 AND ($2 IS NULL OR s.name = $2){label_filter} \
             ORDER BY s.name, v.version",
            VERSIONS.select_from("v")
        );
        let query = q(&sql)
            .bind(run_id.to_string())
            .bind(stream.map(String::from));
        self.all(query, VERSIONS.decode).await
    }

    async fn snapshots(&mut self, run_id: &str) -> Result<Vec<StateVersion>> {
        let sql = format!(
            "SELECT {} FROM state_versions v WHERE v.run_id = $1 AND v.label IS NOT NULL \
             ORDER BY v.created_at DESC, v.version DESC",
            VERSIONS.select_from("v")
        );
        self.all(q(&sql).bind(run_id.to_string()), VERSIONS.decode)
            .await
    }
}

#[async_trait]
impl UsageRows for SqlTx {
    async fn insert_usage(&mut self, u: &UsageRecord) -> Result<()> {
        self.insert(&USAGE, u).await
    }

    async fn usage(&mut self, run_id: &str) -> Result<Vec<UsageRecord>> {
        let sql = format!(
            "SELECT {} FROM usage_records WHERE run_id = $1 ORDER BY created_at, id",
            USAGE.select()
        );
        self.all(q(&sql).bind(run_id.to_string()), USAGE.decode)
            .await
    }
}
