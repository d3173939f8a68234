//! Every difference between the two backends, as one value per backend:
//! the SQL implementation reads these fields and never asks which database
//! it is talking to.

use sqlx::migrate::Migrator;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

pub(super) struct Dialect {
    /// For operators.
    pub name: &'static str,
    /// This dialect's index into the copies [`sql_once!`] keeps.
    pub slot: usize,
    /// URL prefixes that select this backend.
    pub schemes: &'static [&'static str],
    pub migrator: &'static Migrator,
    /// Open one connection before building the pool, to fail within seconds
    /// with the real cause (see `connect::reach`).
    pub reach_first: bool,
    /// Upper bound on the pool size.
    pub max_connections: u32,
    /// Appended to a URL without options (create the file if missing).
    pub default_url_options: Option<&'static str>,
    /// Run on every new connection.
    pub on_connect: &'static [&'static str],
    /// The environment variable that sets `PRAGMA synchronous` on every
    /// connection (see [`synchronous_level`]); `None`: no such setting.
    pub synchronous_env: Option<&'static str>,
    /// Opens a write transaction.
    pub begin_write: &'static str,
    /// Every write runs on one connection this process owns, in turn
    /// (`writer.rs`): a database with one writer at a time is fairer and
    /// faster that way than with writers spinning on its busy handler.
    pub one_writer: bool,
    /// Suffix that locks selected rows until commit ("" where the write
    /// transaction already excludes every other writer).
    pub row_lock: &'static str,
    /// Suffix that locks selected rows and skips rows others hold.
    pub skip_locked: &'static str,
    /// Takes a transaction-scoped lock on the text key `$1`; `None` where
    /// the write transaction already excludes every other writer.
    pub key_lock: Option<&'static str>,
    /// Session-scoped try-lock and unlock on the bigint key `$1`; `None`:
    /// one process owns the database, so exclusion is in-process.
    pub session_lock: Option<(&'static str, &'static str)>,
    /// Data-modifying statements inside `WITH`, which make a multi-row write
    /// one statement (one round trip, atomic without a transaction).
    pub writable_ctes: bool,
    /// The text of a JSON-text column's top-level key when that value is a
    /// JSON string, else NULL: `(column, key)` → SQL expression. The key is
    /// a constant of the code, never input.
    pub json_string: fn(&str, &str) -> String,
}

/// The SQL text `build` makes for dialect `d` (and `variant`, e.g. whether
/// to lock), built on first use at this call site and kept: hot statements
/// were rebuilt column by column on every call (2–3% of the CPU of a
/// replayed step). `build` is a `fn`, so the text can depend on the dialect,
/// the variant and constants of the code only.
macro_rules! sql_once {
    ($d:expr, $variant:expr, $build:expr) => {{
        static BUILT: [[std::sync::OnceLock<String>; 2]; 2] =
            [const { [const { std::sync::OnceLock::new() }; 2] }; 2];
        let d: &'static $crate::dialect::Dialect = $d;
        let variant: bool = $variant;
        let build: fn(&$crate::dialect::Dialect, bool) -> String = $build;
        BUILT[d.slot][usize::from(variant)]
            .get_or_init(|| build(d, variant))
            .as_str()
    }};
    ($d:expr, $build:expr) => {
        sql_once!($d, false, |d, _| ($build)(d))
    };
}
pub(super) use sql_once;

/// The SQL text `build` makes for dialect `d` and `shape`, counts the text
/// depends on (the rows of a multi-row insert), kept once built. A few
/// shapes recur, a run's last group and full group-commit flushes; building
/// them per call was 3.8% of the host in a profile of 10-step wasm runs.
/// Past 256 shapes kept, the text is built per call.
pub(super) fn sql_shaped(
    d: &Dialect,
    shape: [usize; 3],
    build: impl FnOnce() -> String,
) -> Arc<str> {
    const SHAPES: usize = 256;
    type Kept = BTreeMap<(usize, [usize; 3]), Arc<str>>;
    static BUILT: Mutex<Kept> = Mutex::new(BTreeMap::new());
    let key = (d.slot, shape);
    let built = || BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(sql) = built().get(&key) {
        return sql.clone();
    }
    let sql: Arc<str> = build().into();
    let mut kept = built();
    if kept.len() < SHAPES {
        kept.insert(key, sql.clone());
    }
    sql
}

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) static POSTGRES: Dialect = Dialect {
    name: "Postgres",
    slot: 0,
    schemes: &["postgres://", "postgresql://"],
    migrator: &POSTGRES_MIGRATIONS,
    reach_first: true,
    max_connections: u32::MAX,
    default_url_options: None,
    on_connect: &[],
    synchronous_env: None,
    begin_write: "BEGIN",
    one_writer: false,
    row_lock: " FOR UPDATE",
    skip_locked: " FOR UPDATE SKIP LOCKED",
    key_lock: Some("SELECT pg_advisory_xact_lock(hashtext($1))::text"),
    session_lock: Some((
        "SELECT pg_try_advisory_lock($1)",
        "SELECT pg_advisory_unlock($1)",
    )),
    writable_ctes: true,
    json_string: |col, key| {
        format!(
            "(CASE WHEN jsonb_typeof({col}::jsonb -> '{key}') = 'string' \
             THEN {col}::jsonb ->> '{key}' END)"
        )
    },
};

pub(super) static SQLITE: Dialect = Dialect {
    name: "SQLite",
    slot: 1,
    schemes: &["sqlite:"],
    migrator: &SQLITE_MIGRATIONS,
    reach_first: false,
    max_connections: 8,
    default_url_options: Some("mode=rwc"),
    // WAL lets readers run beside the single writer; the busy timeout
    // covers writers from other processes.
    on_connect: &[
        "PRAGMA journal_mode = WAL",
        "PRAGMA busy_timeout = 10000",
        "PRAGMA foreign_keys = ON",
    ],
    synchronous_env: Some("TIDEBASE_SQLITE_SYNCHRONOUS"),
    // IMMEDIATE takes the write lock up front, so a transaction never fails
    // to upgrade from reading to writing halfway through.
    begin_write: "BEGIN IMMEDIATE",
    one_writer: true,
    row_lock: "",
    skip_locked: "",
    key_lock: None,
    session_lock: None,
    writable_ctes: false,
    json_string: |col, key| {
        format!(
            "(CASE WHEN json_type({col}, '$.{key}') = 'text' \
             THEN json_extract({col}, '$.{key}') END)"
        )
    },
};

impl Dialect {
    /// The dialect a database URL selects.
    pub fn of(url: &str) -> Option<&'static Dialect> {
        [&POSTGRES, &SQLITE]
            .into_iter()
            .find(|d| d.schemes.iter().any(|s| url.starts_with(s)))
    }

    /// `row_lock` when `lock` is asked for.
    pub fn lock(&self, lock: bool) -> &'static str {
        if lock { self.row_lock } else { "" }
    }

    /// `skip_locked` when `lock` is asked for.
    pub fn lock_skipping(&self, lock: bool) -> &'static str {
        if lock { self.skip_locked } else { "" }
    }
}

/// The `PRAGMA synchronous` levels an operator may choose, and the default.
/// In WAL mode: `normal` never corrupts and loses nothing when the process
/// dies, but a power loss or OS crash may lose the last commits; `full` and
/// `extra` sync every commit and survive power loss; `off` may corrupt the
/// database on power loss.
pub const SYNCHRONOUS_LEVELS: [&str; 4] = ["off", "normal", "full", "extra"];
pub const SYNCHRONOUS_DEFAULT: &str = "normal";

/// The level `value` names (any case), or an error naming the choices.
pub fn synchronous_level(var: &str, value: Option<&str>) -> Result<&'static str, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(SYNCHRONOUS_DEFAULT);
    };
    SYNCHRONOUS_LEVELS
        .into_iter()
        .find(|l| l.eq_ignore_ascii_case(value))
        .ok_or_else(|| {
            format!(
                "{var} must be one of {} (got {value:?})",
                SYNCHRONOUS_LEVELS.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::synchronous_level;

    #[test]
    fn synchronous_levels_parse_and_bad_ones_are_named() {
        let level = |v| synchronous_level("V", v);
        assert_eq!(level(None), Ok("normal"));
        assert_eq!(level(Some("")), Ok("normal"));
        assert_eq!(level(Some("FULL")), Ok("full"));
        assert_eq!(level(Some(" off ")), Ok("off"));
        let err = level(Some("fast")).unwrap_err();
        assert!(
            err.contains("V must be one of off, normal, full, extra"),
            "{err}"
        );
        assert!(err.contains("\"fast\""), "{err}");
    }
}
