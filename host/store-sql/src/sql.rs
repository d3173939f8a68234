//! The one SQL implementation of [`Store`], shared by Postgres and SQLite:
//! the store, its transactions, and the rows of runs, steps and events.

use super::dialect::{Dialect, sql_once, sql_shaped};
use super::onehop::{append_events, atomic};
use super::rows::{EVENTS, RUNS, STEPS};
use super::table::{R, Table};
use super::warm::{Warm, WarmConn};
use super::writer::{Shared, Turn};
use super::{
    ClaimedRun, EventRows, Exclusive, NewStep, Result, RunRows, StepRows, Store, StoreError, Tx,
    WasmClaim, rules,
};
use crate::clock::Micros;
use crate::model::{Event, Run, RunStatus, Step};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use std::collections::HashSet;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Instant;
use tidebase_engine::RunQuery;
use tidebase_engine::telemetry;

pub struct SqlStore {
    /// The pool, through connections kept warm between uses.
    conns: Arc<Warm>,
    pub(super) dialect: &'static Dialect,
    /// The connection every write runs on (`Dialect::one_writer`).
    writer: Option<Shared>,
    /// Keys of [`Store::try_exclusive`] held in this process, where the
    /// dialect has no session lock.
    held: Arc<SyncMutex<HashSet<i64>>>,
}

impl SqlStore {
    pub(super) fn new(
        pool: AnyPool,
        dialect: &'static Dialect,
        writer: Option<Shared>,
    ) -> SqlStore {
        SqlStore {
            conns: Warm::new(pool),
            dialect,
            writer,
            held: Arc::default(),
        }
    }

    pub(super) async fn acquire(&self) -> Result<WarmConn> {
        self.conns.acquire().await.db()
    }

    /// Runs an [`atomic`] write of [`append_events`] after a step write
    /// that is already bound, binding the event's type, payload and time
    /// after it; `None` when the write touched no row (nothing was written).
    async fn fetch_appended(
        &self,
        query: Query<'_>,
        run_id: &str,
        (kind, payload): (&str, &Value),
        now: Micros,
    ) -> Result<Option<Event>> {
        let query = bind_event(query, (kind, payload), now);
        let rows = self.write_once(query).await?;
        rows.first()
            .map(|row| appended(row, run_id, (kind, payload), now))
            .transpose()
    }

    /// A write transaction, as its concrete type.
    pub(super) async fn write_tx(&self) -> Result<SqlTx> {
        let conn = match self.writer_turn().await {
            Some(mut turn) => {
                turn.run(q(self.dialect.begin_write))?;
                Conn::Writer(turn)
            }
            None => Conn::Tx(self.conns.begin(self.dialect.begin_write).await.db()?),
        };
        Ok(SqlTx {
            conn,
            dialect: self.dialect,
            timer: TxTimer::start("rollback"),
        })
    }

    /// Waits for this process's turn on its writer, where it has one
    /// (`Dialect::one_writer`).
    pub(super) async fn writer_turn(&self) -> Option<Turn> {
        match &self.writer {
            Some(writer) => Some(writer.turn().await),
            None => None,
        }
    }
}

/// Binds an event's type, payload and time as the next parameters.
fn bind_event<'q>(query: Query<'q>, (kind, payload): (&str, &Value), now: Micros) -> Query<'q> {
    query
        .bind(kind.to_string())
        .bind(super::table::json_text(payload))
        .bind(now)
}

/// The event an [`append_events`] of one event returned as `row` (its
/// `id, seq`).
fn appended(
    row: &AnyRow,
    run_id: &str,
    (kind, payload): (&str, &Value),
    now: Micros,
) -> Result<Event> {
    Ok(Event {
        id: row.try_get(0).db()?,
        run_id: run_id.to_string(),
        seq: row.try_get(1).db()?,
        kind: kind.to_string(),
        payload: payload.clone(),
        created_at: now,
    })
}

/// Sorts a driver error into what callers branch on.
pub(super) fn store_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(ref d) if d.is_unique_violation() => {
            StoreError::UniqueViolation(Box::new(e))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        e => StoreError::Other(Box::new(e)),
    }
}

/// Driver results as store results. (`?` cannot convert them: the store's
/// error type knows no driver.)
pub(super) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for R<T> {
    fn db(self) -> Result<T> {
        self.map_err(store_error)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn write(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(self.write_tx().await?))
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(SqlTx {
            conn: Conn::Plain(self.acquire().await?),
            dialect: self.dialect,
            timer: TxTimer::start("read"),
        }))
    }

    async fn record_new_steps(&self, owner: &str, steps: &[NewStep]) -> Result<bool> {
        let Some(first) = steps.first() else {
            return Ok(true);
        };
        let run_id = &first.step.run_id;
        // A unique violation means a step of one of these names exists: the
        // whole write is undone, as the contract says.
        match self.record_new_steps_at_once(run_id, owner, steps).await {
            Err(StoreError::UniqueViolation(_)) => Ok(false),
            other => other,
        }
    }

    async fn claim_wasm_runs(&self, claim: &WasmClaim<'_>) -> Result<Vec<ClaimedRun>> {
        if self.dialect.writable_ctes {
            self.claim_wasm_runs_at_once(claim).await
        } else {
            self.claim_wasm_runs_in_tx(claim).await
        }
    }

    async fn insert_step_if_absent(
        &self,
        step: &Step,
        started: &Value,
        now: Micros,
    ) -> Result<Option<Event>> {
        // One atomic write: the unique (run_id, name) index decides the
        // single winner among concurrent first begins; the event is appended
        // only if the insert happened.
        let sql = sql_once!(self.dialect, |d| {
            let insert = format!("{} ON CONFLICT (run_id, name) DO NOTHING", STEPS.insert());
            append_after(d, &insert, STEPS.len() + 1)
        });
        let query = (STEPS.bind)(q(sql), step);
        self.fetch_appended(query, &step.run_id, ("step.started", started), now)
            .await
    }

    async fn replace_step_if_unchanged(
        &self,
        read: &Step,
        step: &Step,
        (kind, payload): (&str, &Value),
        now: Micros,
    ) -> Result<Option<Event>> {
        // The step's columns are $1…$n (id first, run id second), then these.
        let sql = sql_once!(self.dialect, |d| {
            let p = |i: usize| format!("${}", STEPS.len() + i);
            let unchanged = format!(
                "{} AND run_id = $2 AND lease_owner = {} AND attempt = {} AND status = {} \
                 AND updated_at = {}",
                STEPS.update("id"),
                p(1),
                p(2),
                p(3),
                p(4)
            );
            append_after(d, &unchanged, STEPS.len() + 5)
        });
        let bind = |sql| {
            (STEPS.bind)(q(sql), step)
                .bind(read.lease_owner.clone())
                .bind(read.attempt)
                .bind(read.status.clone())
                .bind(read.updated_at)
        };
        self.fetch_appended(bind(sql), &step.run_id, (kind, payload), now)
            .await
    }

    async fn try_exclusive(&self, key: i64) -> Result<Option<Box<dyn Exclusive>>> {
        let Some((try_lock, unlock)) = self.dialect.session_lock else {
            if !self.held.lock().expect("not poisoned").insert(key) {
                return Ok(None);
            }
            let held = self.held.clone();
            return Ok(Some(Box::new(HeldKey { held, key })));
        };
        let mut conn = self.acquire().await?.into_pooled();
        let row = q(try_lock).bind(key).fetch_one(&mut *conn).await.db()?;
        if !row.try_get::<bool, _>(0).db()? {
            return Ok(None);
        }
        Ok(Some(Box::new(SessionLock {
            conn,
            key,
            unlock,
            released: false,
        })))
    }
}

impl SqlStore {
    /// [`Store::record_new_steps`] as one [`atomic`] write: the fence locks
    /// the run row, the steps are inserted only if it admitted `owner`, and
    /// the events take the next `seq`s only if they were.
    async fn record_new_steps_at_once(
        &self,
        run_id: &str,
        owner: &str,
        steps: &[NewStep],
    ) -> Result<bool> {
        let sql = new_steps_sql(self.dialect, steps, true);
        let query = bind_new_steps(q(&sql), run_id, Some(owner), steps);
        Ok(self.write_once(query).await?.len() == event_count(steps))
    }
}

/// Statements that insert whole new steps of run `$r` and append their
/// events in order (see [`append_events`]). `fenced`: only while the run
/// admits the writer `$o` ([`rules::admits_writer`]), whose row they lock,
/// and as one [`atomic`] statement. Parameters: each step's columns, then
/// `$r`, then `$o` when fenced, then each event's type, payload and time
/// ([`bind_new_steps`]). The text depends on the counts only, so it is kept
/// per shape.
fn new_steps_sql(d: &Dialect, steps: &[NewStep], fenced: bool) -> Arc<str> {
    let (rows, events) = (steps.len(), event_count(steps));
    sql_shaped(d, [usize::from(fenced), rows, events], || {
        let built = build_new_steps_sql(d, rows, events, fenced);
        if fenced { atomic(d, built) } else { built }
    })
}

fn build_new_steps_sql(d: &Dialect, count: usize, events: usize, fenced: bool) -> String {
    let width = STEPS.len();
    let rows: Vec<String> = (0..count)
        .map(|i| format!("({})", STEPS.params_from(1 + i * width)))
        .collect();
    let run_p = count * width + 1;
    let (insert, first_event) = if fenced {
        let fence = format!(
            "SELECT 1 FROM runs WHERE id = ${run_p} AND {}{}",
            rules::admits_writer(&format!("${}", run_p + 1)),
            d.row_lock
        );
        let insert = format!(
            "{} SELECT * FROM (VALUES {}) AS v WHERE EXISTS ({fence})",
            insert_into(&STEPS),
            rows.join(", "),
        );
        (insert, run_p + 2)
    } else {
        let insert = format!("{} VALUES {}", insert_into(&STEPS), rows.join(", "));
        (insert, run_p + 1)
    };
    append_events(d, Some(&insert), "", run_p, first_event, events)
}

/// The [`atomic`] write of `write` (a step INSERT or UPDATE of run `$2`)
/// and, only if it touched a row, one event of that run; the event's type,
/// payload and time are parameters `$first…`.
fn append_after(d: &Dialect, write: &str, first: usize) -> String {
    atomic(d, append_events(d, Some(write), "", 2, first, 1))
}

/// Binds the parameters of [`new_steps_sql`] (`owner` when fenced).
fn bind_new_steps<'q>(
    mut query: Query<'q>,
    run_id: &str,
    owner: Option<&str>,
    steps: &[NewStep],
) -> Query<'q> {
    for new in steps {
        query = (STEPS.bind)(query, &new.step);
    }
    query = query.bind(run_id.to_string());
    if let Some(owner) = owner {
        query = query.bind(owner.to_string());
    }
    for new in steps {
        for (kind, payload) in &new.events {
            query = bind_event(query, (kind, payload), new.at);
        }
    }
    query
}

fn event_count(steps: &[NewStep]) -> usize {
    steps.iter().map(|s| s.events.len()).sum()
}

/// `"INSERT INTO table (columns)"`, for an insert from a `SELECT`.
fn insert_into<T>(table: &Table<T>) -> String {
    format!("INSERT INTO {} ({})", table.name, table.names())
}

/// A session lock held on one pooled connection. Unless it is released,
/// the connection is closed rather than pooled, which ends the lock.
struct SessionLock {
    conn: PoolConnection<Any>,
    key: i64,
    unlock: &'static str,
    released: bool,
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if !self.released {
            self.conn.close_on_drop();
        }
    }
}

#[async_trait]
impl Exclusive for SessionLock {
    async fn release(mut self: Box<Self>) -> Result<()> {
        let unlock = q(self.unlock).bind(self.key);
        unlock.fetch_one(&mut *self.conn).await.db()?;
        self.released = true;
        Ok(())
    }
}

/// A key held in this process; released when dropped.
struct HeldKey {
    held: Arc<SyncMutex<HashSet<i64>>>,
    key: i64,
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        self.held.lock().expect("not poisoned").remove(&self.key);
    }
}

#[async_trait]
impl Exclusive for HeldKey {
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

enum Conn {
    /// A write transaction on the pool (Postgres).
    Tx(Transaction<'static, Any>),
    /// A write transaction on this process's writer (SQLite).
    Writer(Turn),
    /// Reads, each statement on its own.
    Plain(WarmConn),
}

pub(super) struct SqlTx {
    conn: Conn,
    pub(super) dialect: &'static Dialect,
    timer: TxTimer,
}

/// Measures a transaction from its begin to how it ended: `commit`,
/// `rollback` (a write dropped without committing) or `read`.
struct TxTimer {
    started: Instant,
    end: &'static str,
}

impl TxTimer {
    fn start(end: &'static str) -> TxTimer {
        TxTimer {
            started: Instant::now(),
            end,
        }
    }
}

impl Drop for TxTimer {
    fn drop(&mut self) {
        telemetry::store_transaction(self.end, self.started.elapsed().as_secs_f64());
    }
}

pub(super) type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

pub(super) fn q(sql: &str) -> Query<'_> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

impl SqlTx {
    /// Every row `q` returns.
    async fn rows(&mut self, q: Query<'_>) -> Result<Vec<AnyRow>> {
        let rows = match &mut self.conn {
            Conn::Writer(turn) => return Ok(turn.run(q)?.rows),
            Conn::Tx(tx) => q.fetch_all(&mut **tx).await,
            Conn::Plain(c) => q.fetch_all(c.start()).await,
        }
        .db()?;
        self.settled();
        Ok(rows)
    }

    /// How many rows `q` inserted, updated or deleted.
    pub(super) async fn exec(&mut self, q: Query<'_>) -> Result<u64> {
        let done = match &mut self.conn {
            Conn::Writer(turn) => return Ok(turn.run(q)?.changed),
            Conn::Tx(tx) => q.execute(&mut **tx).await,
            Conn::Plain(c) => q.execute(c.start()).await,
        }
        .db()?;
        self.settled();
        Ok(done.rows_affected())
    }

    /// A plain connection whose statement completed can be kept warm (one
    /// that failed or was cancelled goes back through the pool).
    fn settled(&mut self) {
        if let Conn::Plain(c) = &mut self.conn {
            c.settle();
        }
    }

    pub(super) async fn one<T>(
        &mut self,
        q: Query<'_>,
        map: fn(&AnyRow) -> R<T>,
    ) -> Result<Option<T>> {
        let rows = self.rows(q).await?;
        rows.first().map(map).transpose().db()
    }

    pub(super) async fn all<T>(
        &mut self,
        q: Query<'_>,
        map: fn(&AnyRow) -> R<T>,
    ) -> Result<Vec<T>> {
        let rows = self.rows(q).await?;
        rows.iter().map(map).collect::<R<Vec<T>>>().db()
    }

    /// The one value of a one-row, one-column result.
    pub(super) async fn value<T>(&mut self, q: Query<'_>) -> Result<T>
    where
        T: sqlx::Type<Any> + for<'r> sqlx::Decode<'r, Any>,
    {
        let rows = self.rows(q).await?;
        let row = rows.first().ok_or(sqlx::Error::RowNotFound).db()?;
        row.try_get(0).db()
    }

    /// Runs an [`append_events`] of one event of `run_id`, binding the
    /// event's type, payload and time after what `query` has bound.
    async fn fetch_event(
        &mut self,
        query: Query<'_>,
        run_id: &str,
        (kind, payload): (&str, &Value),
        now: Micros,
    ) -> Result<Event> {
        let rows = self.rows(bind_event(query, (kind, payload), now)).await?;
        let row = rows.first().ok_or(sqlx::Error::RowNotFound).db()?;
        appended(row, run_id, (kind, payload), now)
    }

    /// Insert one row of `table`.
    pub(super) async fn insert<T>(&mut self, table: &Table<T>, row: &T) -> Result<()> {
        let sql = table.insert();
        self.exec((table.bind)(q(&sql), row)).await?;
        Ok(())
    }

    /// Replace every column of the row of `table` whose `key` matches.
    pub(super) async fn update<T>(&mut self, table: &Table<T>, key: &str, row: &T) -> Result<()> {
        let sql = table.update(key);
        self.exec((table.bind)(q(&sql), row)).await?;
        Ok(())
    }

    /// Insert a row of `table` or replace the one whose `key` conflicts.
    pub(super) async fn upsert<T>(&mut self, table: &Table<T>, key: &str, row: &T) -> Result<()> {
        let sql = table.upsert(key);
        self.exec((table.bind)(q(&sql), row)).await?;
        Ok(())
    }
}

#[async_trait]
impl Tx for SqlTx {
    async fn commit(mut self: Box<Self>) -> Result<()> {
        match self.conn {
            Conn::Writer(mut turn) => drop(turn.run(q("COMMIT"))?),
            Conn::Tx(tx) => tx.commit().await.db()?,
            Conn::Plain(_) => return Ok(()),
        }
        self.timer.end = "commit";
        Ok(())
    }

    async fn lock_key(&mut self, key: &str) -> Result<()> {
        if let Some(sql) = self.dialect.key_lock {
            self.value::<String>(q(sql).bind(key.to_string())).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl RunRows for SqlTx {
    async fn run(&mut self, id: &str, lock: bool) -> Result<Option<Run>> {
        let sql = sql_once!(self.dialect, lock, |d, lock| {
            let select = RUNS.select();
            format!("SELECT {select} FROM runs WHERE id = $1{}", d.lock(lock))
        });
        self.one(q(sql).bind(id.to_string()), RUNS.decode).await
    }

    async fn insert_run(&mut self, r: &Run) -> Result<()> {
        self.insert(&RUNS, r).await
    }

    async fn update_run(&mut self, r: &Run) -> Result<()> {
        self.update(&RUNS, "id", r).await
    }

    async fn find_runs(&mut self, rq: &RunQuery, limit: i64) -> Result<Vec<Run>> {
        super::listing::find_runs(self, rq, limit).await
    }

    async fn run_counts(&mut self) -> Result<Vec<(String, RunStatus, i64)>> {
        let sql = "SELECT workflow_name, status, COUNT(*) FROM runs GROUP BY workflow_name, status";
        self.all(q(sql), |row| {
            let status: String = row.try_get(1)?;
            Ok((row.try_get(0)?, RunStatus::parse(&status), row.try_get(2)?))
        })
        .await
    }
}

#[async_trait]
impl StepRows for SqlTx {
    async fn step_by_name(&mut self, run_id: &str, name: &str, lock: bool) -> Result<Option<Step>> {
        let sql = sql_once!(self.dialect, lock, |d, lock| {
            let (select, lock) = (STEPS.select(), d.lock(lock));
            format!("SELECT {select} FROM steps WHERE run_id = $1 AND name = $2{lock}")
        });
        let query = q(sql).bind(run_id.to_string()).bind(name.to_string());
        self.one(query, STEPS.decode).await
    }

    async fn run_status_and_step(
        &mut self,
        run_id: &str,
        name: &str,
    ) -> Result<Option<(RunStatus, Option<Step>)>> {
        let sql = sql_once!(self.dialect, |_| {
            format!(
                "SELECT r.status AS run_status, {} FROM runs r \
                 LEFT JOIN steps s ON s.run_id = r.id AND s.name = $2 WHERE r.id = $1",
                STEPS.select_from("s")
            )
        });
        let query = q(sql).bind(run_id.to_string()).bind(name.to_string());
        self.one(query, |row| {
            let status = RunStatus::parse(&row.try_get::<String, _>("run_status")?);
            let step = match row.try_get::<Option<String>, _>("id")? {
                Some(_) => Some((STEPS.decode)(row)?),
                None => None,
            };
            Ok((status, step))
        })
        .await
    }

    async fn step(&mut self, run_id: &str, step_id: &str, lock: bool) -> Result<Option<Step>> {
        let sql = sql_once!(self.dialect, lock, |d, lock| {
            let (select, lock) = (STEPS.select(), d.lock(lock));
            format!("SELECT {select} FROM steps WHERE id = $1 AND run_id = $2{lock}")
        });
        let query = q(sql).bind(step_id.to_string()).bind(run_id.to_string());
        self.one(query, STEPS.decode).await
    }

    async fn step_exists(&mut self, step_id: &str) -> Result<bool> {
        let query = q("SELECT id FROM steps WHERE id = $1").bind(step_id.to_string());
        Ok(!self.rows(query).await?.is_empty())
    }

    async fn insert_step(&mut self, s: &Step) -> Result<()> {
        self.insert(&STEPS, s).await
    }

    async fn update_step(&mut self, s: &Step) -> Result<()> {
        self.update(&STEPS, "id", s).await
    }

    async fn insert_new_steps(&mut self, steps: &[NewStep]) -> Result<()> {
        let Some(first) = steps.first() else {
            return Ok(());
        };
        let sql = new_steps_sql(self.dialect, steps, false);
        let query = bind_new_steps(q(&sql), &first.step.run_id, None, steps);
        let appended = self.rows(query).await?.len();
        if appended != event_count(steps) {
            return Err(StoreError::Other(
                format!("appended {appended} of {} step events", event_count(steps)).into(),
            ));
        }
        Ok(())
    }

    async fn steps(&mut self, run_id: &str) -> Result<Vec<Step>> {
        let sql = sql_once!(self.dialect, |_| {
            let select = STEPS.select();
            format!("SELECT {select} FROM steps WHERE run_id = $1 ORDER BY created_at, id")
        });
        self.all(q(sql).bind(run_id.to_string()), STEPS.decode)
            .await
    }
}

#[async_trait]
impl EventRows for SqlTx {
    async fn append_event(
        &mut self,
        run_id: &str,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event> {
        // One round trip on either backend.
        let sql = sql_once!(self.dialect, |d| append_events(d, None, "", 1, 2, 1));
        let query = q(sql).bind(run_id.to_string());
        self.fetch_event(query, run_id, (kind, payload), now).await
    }

    async fn update_run_with_event(
        &mut self,
        run: &Run,
        kind: &str,
        payload: &Value,
        now: Micros,
    ) -> Result<Event> {
        let sql = sql_once!(self.dialect, |d| {
            let set = format!("{}, ", RUNS.assignments());
            let (id, first) = (RUNS.position("id"), RUNS.len() + 1);
            append_events(d, None, &set, id, first, 1)
        });
        let query = (RUNS.bind)(q(sql), run);
        self.fetch_event(query, &run.id, (kind, payload), now).await
    }

    async fn events_after(&mut self, run_id: &str, after: i64, limit: i64) -> Result<Vec<Event>> {
        let sql = sql_once!(self.dialect, |_| {
            let select = EVENTS.select();
            format!(
                "SELECT {select} FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            )
        });
        let query = q(sql).bind(run_id.to_string()).bind(after).bind(limit);
        self.all(query, EVENTS.decode).await
    }
}
