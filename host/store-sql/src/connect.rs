//! Choosing, opening and migrating a backend.

use super::{Result, SqlStore, Store};
use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, Migrator};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long opening the first Postgres connection may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// `postgres://…` or `sqlite:…`; `None` means the embedded default.
    pub database_url: Option<String>,
    /// Where the embedded database lives when no URL is given.
    pub data_dir: PathBuf,
    /// Apply pending migrations at start (`TIDEBASE_AUTO_MIGRATE`).
    pub auto_migrate: bool,
    pub max_connections: u32,
}

impl ConnectOptions {
    /// The URL actually used, and which backend it selects.
    pub fn resolve(&self) -> Result<(String, Backend)> {
        let url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!("cannot create data dir {}", self.data_dir.display())
                })?;
                format!("sqlite://{}", self.data_dir.join("tidebase.db").display())
            }
        };
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            bail!("unsupported database URL {url:?}: expected postgres://… or sqlite:…");
        };
        Ok((url, backend))
    }
}

/// Open the store, applying (or, with auto-migrate off, checking) migrations.
pub async fn connect(opts: &ConnectOptions) -> Result<Arc<dyn Store>> {
    sqlx::any::install_default_drivers();
    let (url, backend) = opts.resolve()?;
    let pool = match backend {
        // No ping on every checkout: it is a round trip per transaction, and
        // a dead connection surfaces as an error on first use anyway.
        Backend::Postgres => {
            reach_postgres(&url).await?;
            AnyPoolOptions::new()
                .max_connections(opts.max_connections)
                .test_before_acquire(false)
                .connect(&url)
                .await
                .with_context(|| format!("cannot connect to {}", redact(&url)))?
        }
        Backend::Sqlite => {
            let url = if url.contains('?') {
                url
            } else {
                format!("{url}?mode=rwc")
            };
            AnyPoolOptions::new()
                .max_connections(opts.max_connections.min(8))
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets readers run beside the single writer; the
                        // busy timeout covers writers from other processes.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .with_context(|| format!("cannot open {url}"))?
        }
    };
    let migrator = backend.migrator();
    if opts.auto_migrate {
        migrator.run(&pool).await.context("applying migrations")?;
    } else {
        let pending = pending_in(&pool, migrator).await?;
        if !pending.is_empty() {
            bail!(
                "database has pending migrations ({}); run `tidebase-host migrate` or unset TIDEBASE_AUTO_MIGRATE=0",
                pending.join(", ")
            );
        }
    }
    Ok(Arc::new(SqlStore::new(pool, backend)))
}

/// Open and close one connection, to fail within seconds with the real
/// cause (refused, authentication, unknown database, unreachable host): the
/// pool would retry a refused connection until its 30 s acquire timeout and
/// then report only that it timed out.
async fn reach_postgres(url: &str) -> Result<()> {
    let what = || format!("cannot connect to {}", redact(url));
    let conn = tokio::time::timeout(PG_CONNECT_TIMEOUT, sqlx::AnyConnection::connect(url))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer within {} s (is the host reachable?)",
                PG_CONNECT_TIMEOUT.as_secs()
            )
        })
        .with_context(what)?
        .with_context(what)?;
    conn.close().await.ok();
    Ok(())
}

/// Names of migrations not yet applied to the database at `opts`.
pub async fn pending_migrations(opts: &ConnectOptions) -> Result<Vec<String>> {
    sqlx::any::install_default_drivers();
    let (url, backend) = opts.resolve()?;
    if backend == Backend::Postgres {
        reach_postgres(&url).await?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    pending_in(&pool, backend.migrator()).await
}

async fn pending_in(pool: &sqlx::AnyPool, migrator: &Migrator) -> Result<Vec<String>> {
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table("_sqlx_migrations").await?;
    let applied: Vec<i64> = conn
        .list_applied_migrations("_sqlx_migrations")
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    Ok(migrator
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{}_{}", m.version, m.description))
        .collect())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}
