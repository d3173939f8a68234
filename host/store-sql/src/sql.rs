//! The one SQL implementation of [`Store`], shared by Postgres and SQLite.

use super::rows::{self, opt_text, to_text};
use super::{Backend, Exclusive, Result, Store, Tx};
use crate::clock::Micros;
use crate::model::{
    Channel, Event, Gate, LiveState, Run, RunEdge, RunStatus, StateStream, StateVersion, Step,
    UsageRecord,
};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; queueing writers here is fairer and
    /// faster than letting them spin on the busy handler.
    writer: Arc<Mutex<()>>,
    /// In-process exclusion standing in for advisory locks on SQLite.
    exclusive: Arc<Mutex<()>>,
}

impl SqlStore {
    pub fn new(pool: AnyPool, backend: Backend) -> SqlStore {
        SqlStore {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            exclusive: Arc::new(Mutex::new(())),
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn try_exclusive(&self, key: i64) -> Result<Option<Box<dyn Exclusive>>> {
        super::exclusive::try_exclusive(&self.pool, self.backend, &self.exclusive, key).await
    }

    async fn write(&self) -> Result<Box<dyn Tx>> {
        let (tx, guard) = match self.backend {
            Backend::Postgres => (self.pool.begin().await?, None),
            Backend::Sqlite => {
                let guard = self.writer.clone().lock_owned().await;
                (self.pool.begin_with("BEGIN IMMEDIATE").await?, Some(guard))
            }
        };
        Ok(Box::new(SqlTx {
            conn: Conn::Tx(tx),
            backend: self.backend,
            _writer: guard,
        }))
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        let conn = self.pool.acquire().await?;
        Ok(Box::new(SqlTx {
            conn: Conn::Plain(conn),
            backend: self.backend,
            _writer: None,
        }))
    }

    async fn record_new_step(
        &self,
        step: &Step,
        owner: &str,
        events: &[(&str, Value)],
        now: Micros,
    ) -> Result<bool> {
        if self.backend == Backend::Sqlite {
            let mut tx = self.write().await?;
            let leased = tx.run(&step.run_id, false).await?.is_some_and(|r| {
                r.lease_owner.as_deref() == Some(owner) && r.status != RunStatus::Cancelled
            });
            if !leased
                || tx
                    .step_by_name(&step.run_id, &step.name, false)
                    .await?
                    .is_some()
            {
                return Ok(false);
            }
            tx.insert_step(step).await?;
            for (kind, payload) in events {
                tx.append_event(&step.run_id, kind, payload, now).await?;
            }
            tx.commit().await?;
            return Ok(true);
        }
        let [(first, first_payload), (second, second_payload)] = events else {
            anyhow::bail!("record_new_step takes exactly two events");
        };
        let sql = format!(
            "WITH f AS (SELECT id FROM runs WHERE id = $2 AND lease_owner = $17 \
               AND status <> 'cancelled' FOR UPDATE), \
             ins AS (INSERT INTO steps ({}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
               $12, $13, $14, $15, $16 WHERE EXISTS (SELECT 1 FROM f) \
               ON CONFLICT (run_id, name) DO NOTHING RETURNING run_id), \
             s AS (UPDATE runs SET event_seq = event_seq + 2 WHERE id = $2 \
               AND EXISTS (SELECT 1 FROM ins) RETURNING event_seq) \
             INSERT INTO events (run_id, seq, type, payload_json, created_at) \
             SELECT $2, s.event_seq - 1, $18, $19, $22 FROM s \
             UNION ALL SELECT $2, s.event_seq, $20, $21, $22 FROM s RETURNING id",
            rows::STEP_COLS
        );
        let query = bind_step(q(&sql), step)
            .bind(owner.to_string())
            .bind(first.to_string())
            .bind(to_text(first_payload))
            .bind(second.to_string())
            .bind(to_text(second_payload))
            .bind(now);
        let mut conn = self.pool.acquire().await?;
        Ok(query.fetch_all(&mut *conn).await?.len() == 2)
    }

    async fn insert_step_if_absent(
        &self,
        step: &Step,
        started: &Value,
        now: Micros,
    ) -> Result<Option<Event>> {
        if self.backend == Backend::Sqlite {
            // The write transaction excludes every other writer already.
            let mut tx = self.write().await?;
            if tx
                .step_by_name(&step.run_id, &step.name, false)
                .await?
                .is_some()
            {
                return Ok(None);
            }
            tx.insert_step(step).await?;
            let event = tx
                .append_event(&step.run_id, "step.started", started, now)
                .await?;
            tx.commit().await?;
            return Ok(Some(event));
        }
        // One autocommit statement: the unique (run_id, name) index decides
        // the single winner among concurrent first begins; the event is
        // appended only if the insert happened.
        let sql = format!(
            "WITH ins AS (INSERT INTO steps ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16) ON CONFLICT (run_id, name) DO NOTHING RETURNING run_id), \
             s AS (UPDATE runs SET event_seq = event_seq + 1 WHERE id = $2 \
               AND EXISTS (SELECT 1 FROM ins) RETURNING event_seq) \
             INSERT INTO events (run_id, seq, type, payload_json, created_at) \
             SELECT $2, s.event_seq, 'step.started', $17, $18 FROM s RETURNING id, seq",
            rows::STEP_COLS
        );
        let mut conn = self.pool.acquire().await?;
        let query = bind_step(q(&sql), step).bind(to_text(started)).bind(now);
        let Some(row) = query.fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        Ok(Some(Event {
            id: row.try_get(0)?,
            run_id: step.run_id.clone(),
            seq: row.try_get(1)?,
            kind: "step.started".into(),
            payload: started.clone(),
            created_at: now,
        }))
    }
}

enum Conn {
    Tx(Transaction<'static, Any>),
    Plain(PoolConnection<Any>),
}

pub(super) struct SqlTx {
    conn: Conn,
    pub(super) backend: Backend,
    _writer: Option<OwnedMutexGuard<()>>,
}

pub(super) type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

impl SqlTx {
    pub(super) fn c(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Conn::Tx(tx) => tx,
            Conn::Plain(c) => c,
        }
    }

    /// Row-lock suffix: Postgres locks the row; SQLite's write transaction
    /// already excludes every other writer.
    pub(super) fn for_update(&self, lock: bool) -> &'static str {
        if lock && self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    pub(super) async fn one<T>(
        &mut self,
        q: Query<'_>,
        map: fn(&AnyRow) -> rows::R<T>,
    ) -> Result<Option<T>> {
        let row = q.fetch_optional(self.c()).await?;
        Ok(row.as_ref().map(map).transpose()?)
    }

    pub(super) async fn all<T>(
        &mut self,
        q: Query<'_>,
        map: fn(&AnyRow) -> rows::R<T>,
    ) -> Result<Vec<T>> {
        let rows = q.fetch_all(self.c()).await?;
        Ok(rows.iter().map(map).collect::<rows::R<Vec<T>>>()?)
    }

    pub(super) async fn exec(&mut self, q: Query<'_>) -> Result<u64> {
        Ok(q.execute(self.c()).await?.rows_affected())
    }
}

pub(super) fn q(sql: &str) -> Query<'_> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

#[async_trait]
impl Tx for SqlTx {
    async fn commit(self: Box<Self>) -> Result<()> {
        if let Conn::Tx(tx) = self.conn {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn lock_key(&mut self, key: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            let sql = "SELECT pg_advisory_xact_lock(hashtext($1))::text";
            q(sql).bind(key.to_string()).fetch_one(self.c()).await?;
        }
        Ok(())
    }

    async fn run(&mut self, id: &str, lock: bool) -> Result<Option<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE id = $1{}",
            rows::RUN_COLS,
            self.for_update(lock)
        );
        self.one(q(&sql).bind(id.to_string()), rows::run).await
    }

    async fn insert_run(&mut self, r: &Run) -> Result<()> {
        let sql = format!(
            "INSERT INTO runs ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)",
            rows::RUN_COLS
        );
        self.exec(bind_run(q(&sql), r)).await?;
        Ok(())
    }

    async fn update_run(&mut self, r: &Run) -> Result<()> {
        let sql = "UPDATE runs SET id = $1, workflow_name = $2, input_json = $3, metadata_json = $4, \
            status = $5, result_json = $6, error_json = $7, recovery_webhook = $8, lease_owner = $9, \
            lease_expires_at = $10, attempt = $11, queue_name = $12, dedupe_key = $13, priority = $14, \
            run_at = $15, max_attempts = $16, deadline_at = $17, cancel_requested_at = $18, \
            cancelled_at = $19, cancel_reason = $20, cancel_actor = $21, failure_class = $22, \
            claimed_at = $23, component_digest = $24, created_at = $25, updated_at = $26, \
            completed_at = $27, parked_until = $28 WHERE id = $1";
        self.exec(bind_run(q(sql), r)).await?;
        Ok(())
    }

    async fn list_runs(&mut self, limit: i64) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {} FROM runs ORDER BY created_at DESC, id LIMIT $1",
            rows::RUN_COLS
        );
        self.all(q(&sql).bind(limit), rows::run).await
    }

    async fn step_by_name(&mut self, run_id: &str, name: &str, lock: bool) -> Result<Option<Step>> {
        let sql = format!(
            "SELECT {} FROM steps WHERE run_id = $1 AND name = $2{}",
            rows::STEP_COLS,
            self.for_update(lock)
        );
        self.one(
            q(&sql).bind(run_id.to_string()).bind(name.to_string()),
            rows::step,
        )
        .await
    }

    async fn run_status_and_step(
        &mut self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(RunStatus, Option<Step>)>> {
        let cols = rows::STEP_COLS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT r.status AS run_status, {cols} FROM runs r \
             LEFT JOIN steps s ON s.run_id = r.id AND s.name = $2 WHERE r.id = $1"
        );
        let row = q(&sql)
            .bind(run_id.to_string())
            .bind(name.to_string())
            .fetch_optional(self.c())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let status = RunStatus::parse(&row.try_get::<String, _>("run_status")?);
        let step = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(rows::step(&row)?),
            None => None,
        };
        Ok(Some((status, step)))
    }

    async fn step(&mut self, run_id: &str, step_id: &str, lock: bool) -> Result<Option<Step>> {
        let sql = format!(
            "SELECT {} FROM steps WHERE id = $1 AND run_id = $2{}",
            rows::STEP_COLS,
            self.for_update(lock)
        );
        self.one(
            q(&sql).bind(step_id.to_string()).bind(run_id.to_string()),
            rows::step,
        )
        .await
    }

    async fn step_exists(&mut self, step_id: &str) -> Result<bool> {
        let row = q("SELECT id FROM steps WHERE id = $1")
            .bind(step_id.to_string())
            .fetch_optional(self.c())
            .await?;
        Ok(row.is_some())
    }

    async fn insert_step(&mut self, s: &Step) -> Result<()> {
        let sql = format!(
            "INSERT INTO steps ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            rows::STEP_COLS
        );
        self.exec(bind_step(q(&sql), s)).await?;
        Ok(())
    }

    async fn update_step(&mut self, s: &Step) -> Result<()> {
        let sql = "UPDATE steps SET id = $1, run_id = $2, name = $3, input_hash = $4, input_json = $5, \
            options_json = $6, status = $7, output_json = $8, error_json = $9, lease_owner = $10, \
            lease_expires_at = $11, attempt = $12, started_at = $13, completed_at = $14, \
            created_at = $15, updated_at = $16 WHERE id = $1";
        self.exec(bind_step(q(sql), s)).await?;
        Ok(())
    }

    async fn steps(&mut self, run_id: &str) -> Result<Vec<Step>> {
        let sql = format!(
            "SELECT {} FROM steps WHERE run_id = $1 ORDER BY created_at, id",
            rows::STEP_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::step).await
    }

    async fn append_event(
        &mut self,
        run_id: &str,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event> {
        // Bumping the counter on the run row takes its row lock until commit,
        // so concurrent writers to one run get consecutive seqs, and a
        // rollback leaves no gap. Postgres does both in one round trip.
        let (id, seq): (i64, i64) = match self.backend {
            Backend::Postgres => {
                let sql = "WITH s AS (UPDATE runs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq) \
                    INSERT INTO events (run_id, seq, type, payload_json, created_at) \
                    SELECT $1, s.event_seq, $2, $3, $4 FROM s RETURNING id, seq";
                let row = q(sql)
                    .bind(run_id.to_string())
                    .bind(kind.to_string())
                    .bind(to_text(payload))
                    .bind(now)
                    .fetch_one(self.c())
                    .await?;
                (row.try_get(0)?, row.try_get(1)?)
            }
            Backend::Sqlite => {
                let bump =
                    "UPDATE runs SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq";
                let seq: i64 = q(bump)
                    .bind(run_id.to_string())
                    .fetch_one(self.c())
                    .await?
                    .try_get(0)?;
                let insert = "INSERT INTO events (run_id, seq, type, payload_json, created_at) \
                    VALUES ($1, $2, $3, $4, $5) RETURNING id";
                let row = q(insert)
                    .bind(run_id.to_string())
                    .bind(seq)
                    .bind(kind.to_string())
                    .bind(to_text(payload))
                    .bind(now)
                    .fetch_one(self.c())
                    .await?;
                (row.try_get(0)?, seq)
            }
        };
        Ok(Event {
            id,
            run_id: run_id.to_string(),
            seq,
            kind: kind.to_string(),
            payload: payload.clone(),
            created_at: now,
        })
    }

    async fn events_after(&mut self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>> {
        let sql = format!(
            "SELECT {} FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            rows::EVENT_COLS
        );
        self.all(
            q(&sql).bind(run_id.to_string()).bind(after).bind(limit),
            rows::event,
        )
        .await
    }

    async fn gate_by_name(&mut self, run_id: &str, name: &str) -> Result<Option<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE run_id = $1 AND name = $2",
            rows::GATE_COLS
        );
        self.one(
            q(&sql).bind(run_id.to_string()).bind(name.to_string()),
            rows::gate,
        )
        .await
    }

    async fn gate(&mut self, run_id: &str, gate_id: &str, lock: bool) -> Result<Option<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE id = $1 AND run_id = $2{}",
            rows::GATE_COLS,
            self.for_update(lock)
        );
        self.one(
            q(&sql).bind(gate_id.to_string()).bind(run_id.to_string()),
            rows::gate,
        )
        .await
    }

    async fn insert_gate(&mut self, g: &Gate) -> Result<()> {
        let sql = format!(
            "INSERT INTO gates ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            rows::GATE_COLS
        );
        self.exec(bind_gate(q(&sql), g)).await?;
        Ok(())
    }

    async fn update_gate(&mut self, g: &Gate) -> Result<()> {
        let sql = "UPDATE gates SET id = $1, run_id = $2, name = $3, prompt = $4, data_json = $5, \
            status = $6, decision = $7, actor = $8, decision_json = $9, capability_json = $10, \
            channels_json = $11, resolve_token = $12, timeout_ms = $13, created_at = $14, \
            updated_at = $15, resolved_at = $16 WHERE id = $1";
        self.exec(bind_gate(q(sql), g)).await?;
        Ok(())
    }

    async fn gates(&mut self, run_id: &str) -> Result<Vec<Gate>> {
        let sql = format!(
            "SELECT {} FROM gates WHERE run_id = $1 ORDER BY created_at, id",
            rows::GATE_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::gate).await
    }

    async fn edge(&mut self, parent_id: &str, name: &str) -> Result<Option<RunEdge>> {
        let sql = format!(
            "SELECT {} FROM run_edges WHERE parent_run_id = $1 AND name = $2",
            rows::EDGE_COLS
        );
        self.one(
            q(&sql).bind(parent_id.to_string()).bind(name.to_string()),
            rows::edge,
        )
        .await
    }

    async fn insert_edge(&mut self, e: &RunEdge) -> Result<()> {
        let sql = format!(
            "INSERT INTO run_edges ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            rows::EDGE_COLS
        );
        let query = q(&sql)
            .bind(e.id.clone())
            .bind(e.parent_run_id.clone())
            .bind(e.child_run_id.clone())
            .bind(e.name.clone())
            .bind(e.edge_type.clone())
            .bind(to_text(&e.metadata))
            .bind(e.created_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn edges(&mut self, parent_id: &str) -> Result<Vec<RunEdge>> {
        let sql = format!(
            "SELECT {} FROM run_edges WHERE parent_run_id = $1 ORDER BY created_at, id",
            rows::EDGE_COLS
        );
        self.all(q(&sql).bind(parent_id.to_string()), rows::edge)
            .await
    }

    async fn insert_channel(&mut self, c: &Channel) -> Result<()> {
        let sql = format!(
            "INSERT INTO channels ({}) VALUES ($1, $2, $3, $4, $5, $6)",
            rows::CHANNEL_COLS
        );
        let query = q(&sql)
            .bind(c.id.clone())
            .bind(c.run_id.clone())
            .bind(c.kind.clone())
            .bind(to_text(&c.config))
            .bind(to_text(&c.events))
            .bind(c.created_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn channels(&mut self, run_id: &str) -> Result<Vec<Channel>> {
        let sql = format!(
            "SELECT {} FROM channels WHERE run_id = $1 ORDER BY created_at, id",
            rows::CHANNEL_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::channel)
            .await
    }

    async fn live_state(&mut self, run_id: &str, lock: bool) -> Result<Option<LiveState>> {
        let sql = format!(
            "SELECT run_id, value_json, version, updated_at FROM run_state WHERE run_id = $1{}",
            self.for_update(lock)
        );
        self.one(q(&sql).bind(run_id.to_string()), rows::live_state)
            .await
    }

    async fn put_live_state(&mut self, s: &LiveState) -> Result<()> {
        let sql = "INSERT INTO run_state (run_id, value_json, version, updated_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (run_id) DO UPDATE SET value_json = excluded.value_json, \
            version = excluded.version, updated_at = excluded.updated_at";
        let query = q(sql)
            .bind(s.run_id.clone())
            .bind(to_text(&s.value))
            .bind(s.version)
            .bind(s.updated_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn stream(
        &mut self,
        run_id: &str,
        name: &str,
        lock: bool,
    ) -> Result<Option<StateStream>> {
        let sql = format!(
            "SELECT {} FROM state_streams WHERE run_id = $1 AND name = $2{}",
            rows::STREAM_COLS,
            self.for_update(lock)
        );
        self.one(
            q(&sql).bind(run_id.to_string()).bind(name.to_string()),
            rows::stream,
        )
        .await
    }

    async fn put_stream(&mut self, s: &StateStream, insert: bool) -> Result<()> {
        let sql = if insert {
            format!(
                "INSERT INTO state_streams ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                rows::STREAM_COLS
            )
        } else {
            "UPDATE state_streams SET id = $1, run_id = $2, name = $3, target_type = $4, \
             target_id = $5, current_version = $6, current_value_json = $7, metadata_json = $8, \
             created_at = $9, updated_at = $10 WHERE id = $1"
                .to_string()
        };
        let query = q(&sql)
            .bind(s.id.clone())
            .bind(s.run_id.clone())
            .bind(s.name.clone())
            .bind(s.target_type.clone())
            .bind(s.target_id.clone())
            .bind(s.current_version)
            .bind(to_text(&s.current_value))
            .bind(to_text(&s.metadata))
            .bind(s.created_at)
            .bind(s.updated_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn insert_version(&mut self, v: &StateVersion) -> Result<()> {
        let sql = "INSERT INTO state_versions (id, stream_id, run_id, step_id, version, value_json, \
            patch_json, label, reason, importance, metadata_json, created_by, created_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        let query = q(sql)
            .bind(v.id.clone())
            .bind(v.stream_id.clone())
            .bind(v.run_id.clone())
            .bind(v.step_id.clone())
            .bind(v.version)
            .bind(to_text(&v.value))
            .bind(opt_text(&v.patch))
            .bind(v.label.clone())
            .bind(v.reason.clone())
            .bind(v.importance.clone())
            .bind(to_text(&v.metadata))
            .bind(v.created_by.clone())
            .bind(v.created_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn streams(&mut self, run_id: &str) -> Result<Vec<StateStream>> {
        let sql = format!(
            "SELECT {} FROM state_streams WHERE run_id = $1 ORDER BY created_at, id",
            rows::STREAM_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::stream)
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
            rows::VERSION_COLS
        );
        let query = q(&sql)
            .bind(run_id.to_string())
            .bind(stream.map(String::from));
        self.all(query, rows::version).await
    }

    async fn snapshots(&mut self, run_id: &str) -> Result<Vec<StateVersion>> {
        let sql = format!(
            "SELECT {} FROM state_versions v WHERE v.run_id = $1 AND v.label IS NOT NULL \
             ORDER BY v.created_at DESC, v.version DESC",
            rows::VERSION_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::version)
            .await
    }

    async fn insert_usage(&mut self, u: &UsageRecord) -> Result<()> {
        let sql = format!(
            // Floats travel as text: sqlx 0.9's Any driver binds a null f64
            // as float4, which breaks the statement its connection cached
            // for later non-null values.
            "INSERT INTO usage_records ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             CAST($8 AS DOUBLE PRECISION), $9, $10, $11, $12, CAST($13 AS DOUBLE PRECISION), $14, $15)",
            rows::USAGE_COLS
        );
        let query = q(&sql)
            .bind(u.id.clone())
            .bind(u.run_id.clone())
            .bind(u.step_id.clone())
            .bind(u.kind.clone())
            .bind(u.provider.clone())
            .bind(u.model.clone())
            .bind(u.label.clone())
            .bind(u.quantity.map(|f| f.to_string()))
            .bind(u.unit.clone())
            .bind(u.input_tokens)
            .bind(u.output_tokens)
            .bind(u.total_tokens)
            .bind(u.cost_usd.map(|f| f.to_string()))
            .bind(to_text(&u.metadata))
            .bind(u.created_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn usage(&mut self, run_id: &str) -> Result<Vec<UsageRecord>> {
        let sql = format!(
            "SELECT {} FROM usage_records WHERE run_id = $1 ORDER BY created_at, id",
            rows::USAGE_COLS
        );
        self.all(q(&sql).bind(run_id.to_string()), rows::usage)
            .await
    }

    async fn recovery_attempts(&mut self, run_id: &str) -> Result<Vec<Value>> {
        let sql = "SELECT id, run_id, reason, webhook_url, status, http_status, response_body, \
            error_text, created_at, completed_at FROM recovery_attempts WHERE run_id = $1 \
            ORDER BY created_at DESC, id";
        self.all(q(sql).bind(run_id.to_string()), rows::recovery_attempt)
            .await
    }

    async fn deliveries(&mut self, run_id: &str) -> Result<Vec<Value>> {
        let sql = "SELECT id, run_id, channel_id, gate_id, event_type, payload_json, status, \
            http_status, response_body, error_text, created_at, completed_at \
            FROM channel_deliveries WHERE run_id = $1 ORDER BY created_at DESC, id LIMIT 100";
        self.all(q(sql).bind(run_id.to_string()), rows::delivery)
            .await
    }
}

pub(super) fn bind_run<'q>(query: Query<'q>, r: &Run) -> Query<'q> {
    query
        .bind(r.id.clone())
        .bind(r.workflow_name.clone())
        .bind(to_text(&r.input))
        .bind(to_text(&r.metadata))
        .bind(r.status.as_str())
        .bind(opt_text(&r.result))
        .bind(opt_text(&r.error))
        .bind(r.recovery_webhook.clone())
        .bind(r.lease_owner.clone())
        .bind(r.lease_expires_at)
        .bind(r.attempt)
        .bind(r.queue.clone())
        .bind(r.dedupe_key.clone())
        .bind(r.priority)
        .bind(r.run_at)
        .bind(r.max_attempts)
        .bind(r.deadline_at)
        .bind(r.cancel_requested_at)
        .bind(r.cancelled_at)
        .bind(r.cancel_reason.clone())
        .bind(r.cancel_actor.clone())
        .bind(r.failure_class.clone())
        .bind(r.claimed_at)
        .bind(r.component_digest.clone())
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.completed_at)
        .bind(r.parked_until)
}

fn bind_step<'q>(query: Query<'q>, s: &Step) -> Query<'q> {
    query
        .bind(s.id.clone())
        .bind(s.run_id.clone())
        .bind(s.name.clone())
        .bind(s.input_hash.clone())
        .bind(to_text(&s.input))
        .bind(to_text(&s.options))
        .bind(s.status.clone())
        .bind(opt_text(&s.output))
        .bind(opt_text(&s.error))
        .bind(s.lease_owner.clone())
        .bind(s.lease_expires_at)
        .bind(s.attempt)
        .bind(s.started_at)
        .bind(s.completed_at)
        .bind(s.created_at)
        .bind(s.updated_at)
}

fn bind_gate<'q>(query: Query<'q>, g: &Gate) -> Query<'q> {
    query
        .bind(g.id.clone())
        .bind(g.run_id.clone())
        .bind(g.name.clone())
        .bind(g.prompt.clone())
        .bind(to_text(&g.data))
        .bind(g.status.clone())
        .bind(g.decision.clone())
        .bind(g.actor.clone())
        .bind(opt_text(&g.decision_payload))
        .bind(to_text(&g.capability))
        .bind(to_text(&g.channels))
        .bind(g.resolve_token.clone())
        .bind(g.timeout_ms)
        .bind(g.created_at)
        .bind(g.updated_at)
        .bind(g.resolved_at)
}
