//! The benchmark's database and engine: a fresh Postgres database (or a
//! temporary SQLite file), an engine whose store counts its transactions, and
//! readings of Postgres' own commit and row counters.

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tidebase_host::config::Settings;
use tidebase_host::engine::{Engine, GroupCommit};
use tidebase_host::model::{Event, Step};
use tidebase_host::store::{
    ClaimedRun, ConnectOptions, Exclusive, NewStep, SqlStore, Store, Tx, WasmClaim,
};

/// How many store transactions the engine opened.
#[derive(Default)]
pub struct Counters {
    /// `Store::write`: one write transaction (BEGIN … COMMIT, or a rollback
    /// when the engine found nothing to write).
    pub writes: AtomicU64,
    /// `Store::read`: one pooled connection for plain reads (on Postgres,
    /// every statement on it is its own autocommit transaction).
    pub reads: AtomicU64,
}

/// A [`Store`] that counts the transactions the engine asks for.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Arc<Counters>,
}

#[async_trait]
impl Store for CountingStore {
    async fn write(&self) -> tidebase_host::store::Result<Box<dyn Tx>> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write().await
    }

    async fn read(&self) -> tidebase_host::store::Result<Box<dyn Tx>> {
        self.counts.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.read().await
    }

    /// One autocommit statement on Postgres (counted as a write).
    async fn insert_step_if_absent(
        &self,
        step: &Step,
        started: &Value,
        now: i64,
    ) -> tidebase_host::store::Result<Option<Event>> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert_step_if_absent(step, started, now).await
    }

    /// One autocommit statement on Postgres (counted as a write).
    async fn record_new_steps(
        &self,
        owner: &str,
        steps: &[NewStep],
    ) -> tidebase_host::store::Result<bool> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.record_new_steps(owner, steps).await
    }

    /// One autocommit statement on Postgres (counted as a write).
    async fn claim_wasm_runs(
        &self,
        claim: &WasmClaim<'_>,
    ) -> tidebase_host::store::Result<Vec<ClaimedRun>> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.claim_wasm_runs(claim).await
    }

    /// One autocommit statement on Postgres (counted as a write).
    async fn replace_step_if_unchanged(
        &self,
        read: &Step,
        step: &Step,
        event: (&str, &Value),
        now: i64,
    ) -> tidebase_host::store::Result<Option<Event>> {
        self.counts.writes.fetch_add(1, Ordering::Relaxed);
        self.inner
            .replace_step_if_unchanged(read, step, event, now)
            .await
    }

    async fn try_exclusive(
        &self,
        key: i64,
    ) -> tidebase_host::store::Result<Option<Box<dyn Exclusive>>> {
        self.inner.try_exclusive(key).await
    }
}

/// Which kind of database the benchmark created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where the benchmark database lives, so it can be removed afterwards.
enum Place {
    Postgres { admin_url: String, name: String },
    Sqlite { dir: PathBuf },
}

/// A fresh database for one benchmark invocation.
pub struct Db {
    pub backend: Backend,
    /// The URL the engine connects to.
    pub url: String,
    place: Place,
    keep: bool,
}

impl Db {
    /// Create `tb_bench_<random>` on the Postgres server of `admin_url`, or a
    /// SQLite file in a temporary directory.
    pub async fn create(g: &crate::Global) -> Result<Db> {
        Db::create_on(g, g.backend()).await
    }

    /// [`Db::create`] on the given backend, whatever `--sqlite` says.
    pub async fn create_on(g: &crate::Global, backend: Backend) -> Result<Db> {
        let (admin_url, keep) = (g.database_url.as_str(), g.keep_db);
        let sqlite = backend == Backend::Sqlite;
        sqlx::any::install_default_drivers();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let tag = &tag[..12];
        if sqlite {
            let dir = std::env::temp_dir().join(format!("tb_bench_{tag}"));
            std::fs::create_dir_all(&dir).context("create the SQLite temp dir")?;
            let url = format!("sqlite://{}/bench.db", dir.display());
            return Ok(Db {
                backend: Backend::Sqlite,
                url,
                place: Place::Sqlite { dir },
                keep,
            });
        }
        let name = format!("tb_bench_{tag}");
        let mut conn = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot reach Postgres at {admin_url}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .context("create the benchmark database")?;
        if g.pg_log_statements {
            let sql = format!("ALTER DATABASE {name} SET log_statement = 'all'");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            eprintln!("logging every statement of {name} in the Postgres server log");
        }
        conn.close().await.ok();
        Ok(Db {
            backend: Backend::Postgres,
            url: database_url(admin_url, &name),
            place: Place::Postgres {
                admin_url: admin_url.to_string(),
                name,
            },
            keep,
        })
    }

    /// Counters of this database, read from outside it.
    pub async fn stats(&self, counts: Option<Arc<Counters>>, settle: Duration) -> Result<Stats> {
        let pg = match &self.place {
            Place::Postgres { admin_url, name } => Some(PgStats::connect(admin_url, name).await?),
            Place::Sqlite { .. } => None,
        };
        Ok(Stats { pg, counts, settle })
    }

    /// An engine on this database (migrated) whose store counts
    /// transactions, and the store itself (for its commit ceiling).
    pub async fn engine(
        &self,
        max_connections: u32,
    ) -> Result<(Engine, Arc<Counters>, Arc<SqlStore>)> {
        let opts = ConnectOptions {
            database_url: Some(self.url.clone()),
            data_dir: std::env::temp_dir(),
            auto_migrate: true,
            max_connections,
        };
        let sql = tidebase_host::store::connect_sql(&opts).await?;
        let counts = Arc::new(Counters::default());
        let store = Arc::new(CountingStore {
            inner: sql.clone(),
            counts: counts.clone(),
        });
        // Read as the host reads it, to compare grouped and single checkpoints.
        let group = std::env::var(GroupCommit::VAR).ok();
        let settings = Settings {
            wasm_group_commit: GroupCommit::from_var(group.as_deref())
                .map_err(anyhow::Error::msg)?,
            ..Settings::default()
        };
        let engine = Engine::new(store, tidebase_host::clock::system(), settings);
        Ok((engine, counts, sql))
    }

    /// A separate connection for the benchmark's own polling queries.
    pub async fn poller(&self) -> Result<Poller> {
        let url = match self.backend {
            Backend::Sqlite => format!("{}?mode=rw", self.url),
            Backend::Postgres => self.url.clone(),
        };
        let conn = sqlx::AnyConnection::connect(&url).await?;
        Ok(Poller { conn, queries: 0 })
    }

    /// Drop the database (or delete the SQLite directory) unless kept.
    pub async fn remove(self) -> Result<()> {
        if self.keep {
            eprintln!("kept the benchmark database: {}", self.url);
            return Ok(());
        }
        match self.place {
            Place::Postgres { admin_url, name } => {
                let mut conn = PgConnection::connect(&admin_url).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                conn.close().await.ok();
            }
            Place::Sqlite { dir } => std::fs::remove_dir_all(dir)?,
        }
        Ok(())
    }
}

/// `url` with its database name replaced by `name`.
pub fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// The database name in a Postgres URL.
pub fn database_name(url: &str) -> Option<String> {
    let base = url.split('?').next()?;
    let rest = &base[base.find("://")? + 3..];
    let name = &rest[rest.find('/')? + 1..];
    (!name.is_empty()).then(|| name.to_string())
}

/// Counting queries of the benchmark itself on the benchmark database, so
/// they can be subtracted from Postgres' commit counter.
pub struct Poller {
    conn: sqlx::AnyConnection,
    pub queries: u64,
}

impl Poller {
    /// `SELECT count(*) …`: one autocommit transaction.
    pub async fn count(&mut self, sql: &str) -> Result<i64> {
        self.queries += 1;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut self.conn)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// One text column of the first row, if any.
    pub async fn text(&mut self, sql: &str) -> Result<Option<String>> {
        self.queries += 1;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<String>, _>(0)?,
            None => None,
        })
    }
}

/// `pg_stat_database` of the benchmark database, read over a connection to
/// another database (the admin one) so the readings do not count themselves.
pub struct PgStats {
    conn: tokio::sync::Mutex<PgConnection>,
    name: String,
}

impl PgStats {
    pub async fn connect(url: &str, name: &str) -> Result<PgStats> {
        let admin = database_url(url, "postgres");
        let conn = PgConnection::connect(&admin)
            .await
            .with_context(|| format!("cannot reach Postgres at {admin}"))?;
        Ok(PgStats {
            conn: tokio::sync::Mutex::new(conn),
            name: name.to_string(),
        })
    }

    async fn read(&self) -> Result<PgCounters> {
        let mut conn = self.conn.lock().await;
        // Flushes only this backend's own pending counters; the engine's
        // pooled backends flush theirs when idle, within 10 s (PG 15+).
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut *conn)
            .await
            .ok();
        let row = sqlx::query(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted \
             FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&self.name)
        .fetch_one(&mut *conn)
        .await?;
        Ok(PgCounters {
            xact_commit: row.try_get(0)?,
            xact_rollback: row.try_get(1)?,
            tup_inserted: row.try_get(2)?,
            tup_updated: row.try_get(3)?,
            tup_deleted: row.try_get(4)?,
        })
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PgCounters {
    pub xact_commit: i64,
    pub xact_rollback: i64,
    pub tup_inserted: i64,
    pub tup_updated: i64,
    pub tup_deleted: i64,
}

/// Readings taken before and after a measured phase.
pub struct Stats {
    pg: Option<PgStats>,
    counts: Option<Arc<Counters>>,
    /// How long to wait for idle backends to flush their counters.
    settle: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Snap {
    pub pg: Option<PgCounters>,
    pub writes: Option<u64>,
    pub reads: Option<u64>,
}

/// What a phase cost, per unit of work (a step).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    /// Postgres commits, read-only autocommit statements included, minus
    /// the benchmark's own polling queries.
    pub commits: Option<f64>,
    pub rollbacks: Option<f64>,
    /// Rows inserted + updated + deleted.
    pub rows_written: Option<f64>,
    /// Write transactions the engine opened.
    pub writes: Option<f64>,
    /// Read connections the engine took.
    pub reads: Option<f64>,
}

impl Stats {
    pub fn external(pg: Option<PgStats>, settle: Duration) -> Stats {
        Stats {
            pg,
            counts: None,
            settle,
        }
    }

    /// A reading after waiting for Postgres' counters to settle.
    pub async fn snap(&self) -> Result<Snap> {
        let pg = match &self.pg {
            Some(pg) => {
                tokio::time::sleep(self.settle).await;
                Some(pg.read().await?)
            }
            None => None,
        };
        let (writes, reads) = match &self.counts {
            Some(c) => (
                Some(c.writes.load(Ordering::Relaxed)),
                Some(c.reads.load(Ordering::Relaxed)),
            ),
            None => (None, None),
        };
        Ok(Snap { pg, writes, reads })
    }
}

impl Snap {
    /// The cost between `self` (before) and `after`, per `units`, not
    /// counting `own_queries` autocommit statements of the benchmark.
    pub fn cost(&self, after: &Snap, units: u64, own_queries: u64) -> Cost {
        let per = |d: f64| if units == 0 { 0.0 } else { d / units as f64 };
        let pg = self.pg.zip(after.pg);
        Cost {
            commits: pg
                .map(|(b, a)| per((a.xact_commit - b.xact_commit) as f64 - own_queries as f64)),
            rollbacks: pg.map(|(b, a)| per((a.xact_rollback - b.xact_rollback) as f64)),
            rows_written: pg.map(|(b, a)| {
                let rows = (a.tup_inserted - b.tup_inserted)
                    + (a.tup_updated - b.tup_updated)
                    + (a.tup_deleted - b.tup_deleted);
                per(rows as f64)
            }),
            writes: self
                .writes
                .zip(after.writes)
                .map(|(b, a)| per((a - b) as f64)),
            reads: self
                .reads
                .zip(after.reads)
                .map(|(b, a)| per((a - b) as f64)),
        }
    }
}

/// This process's resident set size, in KiB.
pub fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kib)
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// CPU time so far: the whole machine, this process, and every `postgres`
/// process, in clock ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    all: u64,
    busy: u64,
    own: u64,
    postgres: u64,
}

/// Where the CPU went during a phase, in cores (1.0 = one core busy).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub cores: f64,
    pub busy: f64,
    pub bench: f64,
    pub postgres: f64,
    /// Everything else: other processes on the machine (noise).
    pub other: f64,
}

/// utime + stime of a `/proc/<pid>/stat` line, and its command name.
fn proc_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let mut fields = stat[close + 1..].split_whitespace();
    // After the command: state is field 3; utime and stime are 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

impl Cpu {
    pub fn sample() -> Cpu {
        let mut cpu = Cpu::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/stat")
            && let Some(line) = stat.lines().find(|l| l.starts_with("cpu "))
        {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest time is in user).
            let all: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            cpu.all = all;
            cpu.busy = all - idle;
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            cpu.own = proc_ticks(&stat).map_or(0, |(_, t)| t);
        }
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name();
                if !name
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    continue;
                }
                if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                    && let Some(("postgres", t)) = proc_ticks(&stat)
                {
                    cpu.postgres += t;
                }
            }
        }
        cpu
    }

    /// Usage between `self` and `later`. Postgres backends that exited in
    /// between are missed (the benchmark's pool keeps its connections).
    pub fn usage(&self, later: &Cpu) -> CpuUse {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let all = later.all.saturating_sub(self.all) as f64;
        if all == 0.0 {
            return CpuUse::default();
        }
        let cores = |ticks: u64| ticks as f64 / all * ncpu;
        let busy = cores(later.busy.saturating_sub(self.busy));
        let bench = cores(later.own.saturating_sub(self.own));
        let postgres = cores(later.postgres.saturating_sub(self.postgres));
        CpuUse {
            cores: ncpu,
            busy,
            bench,
            postgres,
            other: (busy - bench - postgres).max(0.0),
        }
    }
}
