//! SQLite's writer: one connection this process owns, on which every write
//! runs, one at a time, in the thread of the task whose turn it is.
//!
//! Through sqlx each statement is a hop to the connection's worker thread
//! and back, and the one writer held its turn across those hops: under load
//! about 0.35 ms per write against well under 0.1 ms of SQLite's own work
//! (issue 12), so the writer was idle most of the time it was held. Here a
//! write is SQLite's work alone, with no thread between the turn and the
//! database. Reads stay on the pool: WAL lets them run beside this writer.
//! A write blocks its thread for SQLite's work (and, at `synchronous =
//! full`, the sync of its commit), and only the turn's holder does, so at
//! most one runtime thread at a time waits on the database; every other
//! writer waits for its turn asynchronously.
//!
//! Statements are the store's own `sqlx` queries, so both backends share
//! every SQL text and binding; their rows come back as the `AnyRow`s the
//! decoders read. A script (`;`-separated, `$N` numbering the query's
//! arguments across all its statements, as sqlx-sqlite reads it) runs
//! statement by statement, each prepared once and cached.

use super::dialect::Dialect;
use super::sql::Query;
use super::{Result, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use sqlx::Execute;
use sqlx_core::any::{AnyColumn, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Distinct statements kept prepared (scripts of step groups vary with the
/// group's size).
const PREPARED: usize = 512;

/// Where the writer connects: the pool's database file, or the URI of a
/// shared in-memory database.
pub(super) enum Target {
    File(std::path::PathBuf),
    Uri(String),
}

pub(super) struct Writer {
    conn: Connection,
}

/// What a query did: every row its statements returned, in order, and how
/// many rows it inserted, updated or deleted.
pub(super) struct Ran {
    pub rows: Vec<AnyRow>,
    pub changed: u64,
}

impl Writer {
    /// Opens the writer with the pool's per-connection settings (`setup`).
    pub(super) fn open(target: &Target, setup: &[String]) -> anyhow::Result<Writer> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match target {
            Target::File(path) => Connection::open_with_flags(path, flags)?,
            Target::Uri(uri) => Connection::open_with_flags(uri, flags)?,
        };
        conn.set_prepared_statement_cache_capacity(PREPARED);
        let mut writer = Writer { conn };
        for statement in setup {
            writer.run_sql(statement, &[])?;
        }
        Ok(writer)
    }

    /// Runs `query` (one statement or a script) to its end.
    pub(super) fn run(&mut self, mut query: Query<'_>) -> Result<Ran> {
        let args = query
            .take_arguments()
            .map_err(|e| StoreError::other(format!("binding arguments: {e}")))?
            .map(|a| a.values.0)
            .unwrap_or_default();
        let sql = query.sql();
        self.run_sql(sql.as_str(), &args)
    }

    fn run_sql(&mut self, script: &str, args: &[AnyValueKind]) -> Result<Ran> {
        let before = self.conn.total_changes();
        let mut rows = Vec::new();
        for sql in statements(script) {
            let mut stmt = self.conn.prepare_cached(sql).map_err(sqlite_error)?;
            for i in 1..=stmt.parameter_count() {
                let n = argument_number(stmt.parameter_name(i), i)?;
                let arg = args.get(n - 1).map_or(Arg::NULL, Arg);
                stmt.raw_bind_parameter(i, arg).map_err(sqlite_error)?;
            }
            // BEGIN, COMMIT and writes without RETURNING: no rows to map.
            if stmt.column_count() == 0 {
                stmt.raw_execute().map_err(sqlite_error)?;
                continue;
            }
            let columns = columns(&stmt)?;
            let mut results = stmt.raw_query();
            while let Some(row) = results.next().map_err(sqlite_error)? {
                rows.push(any_row(row, &columns)?);
            }
        }
        let changed = self.conn.total_changes() - before;
        Ok(Ran { rows, changed })
    }

    /// Rolls back a transaction left open: a write dropped before its
    /// commit, or a script that failed halfway. The connection is then
    /// ready for the next turn; should even the rollback fail, the next
    /// `BEGIN IMMEDIATE` says so rather than writing into this transaction.
    fn settle(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// The writer shared by this process's writes.
#[derive(Clone)]
pub(super) struct Shared(Arc<Mutex<Writer>>);

impl Shared {
    pub(super) fn new(writer: Writer) -> Shared {
        Shared(Arc::new(Mutex::new(writer)))
    }

    /// The writer, for one that must not keep it alive (its checkpoints).
    pub(super) fn downgrade(&self) -> std::sync::Weak<Mutex<Writer>> {
        Arc::downgrade(&self.0)
    }

    /// Waits for this process's turn to write.
    pub(super) async fn turn(&self) -> Turn {
        Turn(self.0.clone().lock_owned().await)
    }
}

/// The writer, held for one write; whatever the write left open is rolled
/// back when the turn ends.
pub(super) struct Turn(OwnedMutexGuard<Writer>);

impl Deref for Turn {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        &self.0
    }
}

impl DerefMut for Turn {
    fn deref_mut(&mut self) -> &mut Writer {
        &mut self.0
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.settle();
    }
}

/// The SQL the pool runs on every new connection, for the writer to run too.
pub(super) fn setup(dialect: &Dialect, synchronous: Option<&str>) -> Vec<String> {
    let each = dialect.on_connect.iter().map(|s| s.to_string());
    each.chain(synchronous.map(String::from)).collect()
}

/// The statements of a script, split at the `;`s outside quotes (the
/// store's SQL has no comments).
fn statements(script: &str) -> impl Iterator<Item = &str> {
    let mut quote = None;
    let mut start = 0;
    let mut cuts = Vec::new();
    for (i, c) in script.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ';') => {
                cuts.push(&script[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    cuts.push(&script[start..]);
    cuts.into_iter().filter(|s| !s.trim().is_empty())
}

/// The argument a parameter takes: `$N` and `?N` name the query's Nth,
/// as sqlx-sqlite binds them; the store writes no other kind.
fn argument_number(name: Option<&str>, index: usize) -> Result<usize> {
    name.and_then(|n| n.strip_prefix('$').or_else(|| n.strip_prefix('?')))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| StoreError::other(format!("parameter {index} is not $N: {name:?}")))
}

/// An sqlx argument, bound as SQLite binds it through sqlx.
struct Arg<'a>(&'a AnyValueKind);

impl Arg<'_> {
    /// An argument the query did not bind: NULL, as in sqlx-sqlite.
    const NULL: Arg<'static> = Arg(&AnyValueKind::Null(AnyTypeInfoKind::Null));
}

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let value = match self.0 {
            AnyValueKind::Null(_) => ValueRef::Null,
            AnyValueKind::Bool(b) => ValueRef::Integer(i64::from(*b)),
            AnyValueKind::SmallInt(i) => ValueRef::Integer(i64::from(*i)),
            AnyValueKind::Integer(i) => ValueRef::Integer(i64::from(*i)),
            AnyValueKind::BigInt(i) => ValueRef::Integer(*i),
            AnyValueKind::Real(r) => ValueRef::Real(f64::from(*r)),
            AnyValueKind::Double(d) => ValueRef::Real(*d),
            AnyValueKind::Text(t) => ValueRef::Text(t.as_bytes()),
            AnyValueKind::TextSlice(t) => ValueRef::Text(t.as_bytes()),
            AnyValueKind::Blob(b) => ValueRef::Blob(b),
            other => {
                let e = format!("no SQLite value for {other:?}");
                return Err(rusqlite::Error::ToSqlConversionFailure(e.into()));
            }
        };
        Ok(ToSqlOutput::Borrowed(value))
    }
}

/// A statement's column names, and the index each name reads (the last
/// column of a name, as sqlx-sqlite builds the map).
struct Columns {
    names: Vec<UStr>,
    index: Arc<sqlx_core::HashMap<UStr, usize>>,
}

fn columns(stmt: &rusqlite::Statement<'_>) -> Result<Columns> {
    let names: Vec<UStr> = (0..stmt.column_count())
        .map(|i| stmt.column_name(i).map(UStr::new))
        .collect::<rusqlite::Result<_>>()
        .map_err(sqlite_error)?;
    let index = names.iter().cloned().zip(0..).collect();
    Ok(Columns {
        names,
        index: Arc::new(index),
    })
}

/// A row as sqlx's `Any` driver reads one from SQLite: each value typed by
/// what it holds (an integer is a `BigInt`, a float a `Double`).
fn any_row(row: &rusqlite::Row<'_>, columns: &Columns) -> Result<AnyRow> {
    let mut out = AnyRow {
        column_names: columns.index.clone(),
        columns: Vec::with_capacity(columns.names.len()),
        values: Vec::with_capacity(columns.names.len()),
    };
    for (ordinal, name) in columns.names.iter().enumerate() {
        let kind = match row.get_ref(ordinal).map_err(sqlite_error)? {
            ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
            ValueRef::Integer(i) => AnyValueKind::BigInt(i),
            ValueRef::Real(f) => AnyValueKind::Double(f),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => AnyValueKind::Text(Arc::new(t.to_string())),
                Err(e) => return Err(StoreError::other(format!("column {name}: {e}"))),
            },
            ValueRef::Blob(b) => AnyValueKind::Blob(Arc::new(b.to_vec())),
        };
        out.columns.push(AnyColumn {
            ordinal,
            name: name.clone(),
            type_info: AnyTypeInfo {
                kind: type_of(&kind),
            },
        });
        out.values.push(AnyValue { kind });
    }
    Ok(out)
}

fn type_of(kind: &AnyValueKind) -> AnyTypeInfoKind {
    match kind {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

/// Sorts a SQLite error as [`super::sql::store_error`] sorts sqlx's.
fn sqlite_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    match e {
        rusqlite::Error::SqliteFailure(ref f, _)
            if matches!(
                f.extended_code,
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::UniqueViolation(Box::new(e))
        }
        e => StoreError::Other(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn scripts_split_at_semicolons_outside_quotes() {
        let script = "BEGIN IMMEDIATE; SELECT ';', \"a;b\" FROM t WHERE x = 'it''s;'; ; COMMIT";
        let split: Vec<&str> = statements(script).map(str::trim).collect();
        assert_eq!(
            split,
            [
                "BEGIN IMMEDIATE",
                "SELECT ';', \"a;b\" FROM t WHERE x = 'it''s;'",
                "COMMIT"
            ]
        );
    }
}
