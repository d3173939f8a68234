//! Choosing, opening and migrating a backend. Errors here are for the
//! operator starting the host, with the context that explains them.

use super::checkpoint;
use super::dialect::Dialect;
use super::writer::{Shared, Target, Writer};
use super::{SqlStore, Store};
use anyhow::{Context, Result, bail};
use sqlx::Connection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, Migrator};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long opening the first Postgres connection may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The embedded SQLite database in `dir`, migrated, as tests open it.
    #[cfg(test)]
    pub(crate) fn sqlite_in(dir: &std::path::Path, max_connections: u32) -> ConnectOptions {
        ConnectOptions {
            database_url: None,
            data_dir: dir.to_path_buf(),
            auto_migrate: true,
            max_connections,
        }
    }

    /// The URL actually used, and the dialect it selects.
    fn resolve(&self) -> Result<(String, &'static Dialect)> {
        let url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!("cannot create data dir {}", self.data_dir.display())
                })?;
                format!("sqlite://{}", self.data_dir.join("tidebase.db").display())
            }
        };
        let Some(dialect) = Dialect::of(&url) else {
            bail!("unsupported database URL {url:?}: expected postgres://… or sqlite:…");
        };
        // A relative SQLite file is pinned to the working directory now, so
        // what the operator is shown is the absolute path that is opened.
        let url = match sqlite_file(&url) {
            Some((file, options)) if file.is_relative() => {
                let file = std::path::absolute(&file)
                    .with_context(|| format!("cannot make {} absolute", file.display()))?;
                format!("sqlite://{}{options}", file.display())
            }
            _ => url,
        };
        Ok((url, dialect))
    }

    /// The SQLite database file these options open (absolute); `None` for
    /// Postgres and in-memory SQLite.
    pub fn sqlite_file(&self) -> Result<Option<PathBuf>> {
        let (url, _) = self.resolve()?;
        Ok(sqlite_file(&url).map(|(file, _)| file))
    }

    /// Which database these options open, for the operator (credentials
    /// redacted).
    pub fn describe(&self) -> Result<String> {
        let (url, dialect) = self.resolve()?;
        Ok(format!("{} ({})", dialect.name, redact(&url)))
    }
}

/// Open the store, applying (or, with auto-migrate off, checking) migrations.
pub async fn connect(opts: &ConnectOptions) -> Result<Arc<dyn Store>> {
    Ok(connect_sql(opts).await?)
}

/// [`connect`], keeping the concrete store (the bench measures its commit
/// ceiling through the same pool).
pub async fn connect_sql(opts: &ConnectOptions) -> Result<Arc<SqlStore>> {
    sqlx::any::install_default_drivers();
    let (url, dialect) = opts.resolve()?;
    if dialect.reach_first {
        reach(&url).await?;
    }
    let url = name_private_memory(url);
    let url = match dialect.default_url_options {
        Some(options) if !url.contains('?') => format!("{url}?{options}"),
        _ => url,
    };
    let writer_target = dialect.one_writer.then(|| writer_target(&url));
    let synchronous = match dialect.synchronous_env {
        Some(var) => {
            let value = std::env::var(var).ok();
            let level = super::dialect::synchronous_level(var, value.as_deref())
                .map_err(anyhow::Error::msg)?;
            Some(format!("PRAGMA synchronous = {level}"))
        }
        None => None,
    };
    // No ping on every checkout: it is a round trip per transaction, and a
    // dead connection surfaces as an error on first use anyway.
    let setup = super::writer::setup(dialect, synchronous.as_deref());
    let pool = AnyPoolOptions::new()
        .max_connections(opts.max_connections.min(dialect.max_connections))
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            let synchronous = synchronous.clone();
            Box::pin(async move {
                for statement in dialect.on_connect.iter().copied() {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                if let Some(pragma) = synchronous {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(pragma))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    if opts.auto_migrate {
        let migrating = dialect.migrator.run(&pool).await;
        migrating.context("applying migrations")?;
    } else {
        let pending = pending_in(&pool, dialect.migrator).await?;
        if !pending.is_empty() {
            bail!(
                "database has pending migrations ({}); run `tidebase-host migrate` or unset TIDEBASE_AUTO_MIGRATE=0",
                pending.join(", ")
            );
        }
    }
    // Opened once migrations made the file what the writer expects.
    let writer = match writer_target {
        Some(target) => Some(
            open_writer(&target, setup).with_context(|| format!("cannot open {}", redact(&url)))?,
        ),
        None => None,
    };
    Ok(Arc::new(SqlStore::new(pool, dialect, writer)))
}

/// SQLite's writer and, for a database file, its checkpoints beside it
/// (an in-memory database has no WAL).
fn open_writer(target: &Target, mut setup: Vec<String>) -> anyhow::Result<Shared> {
    let Target::File(path) = target else {
        return Ok(Shared::new(Writer::open(target, &setup)?));
    };
    let checkpointer_setup = setup.clone();
    setup.extend(checkpoint::WRITER_SETUP.map(String::from));
    let writer = Shared::new(Writer::open(target, &setup)?);
    checkpoint::beside(path, &checkpointer_setup, writer.downgrade())?;
    Ok(writer)
}

/// `sqlite::memory:` as a named, shared in-memory database: the pool's
/// connections and the writer's must all reach the one database.
fn name_private_memory(url: String) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if !matches!(url.as_str(), "sqlite::memory:" | "sqlite://:memory:") {
        return url;
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!("sqlite:file:tidebase-memory-{pid}-{n}?mode=memory&cache=shared")
}

/// What the writer opens to reach the database the SQLite `url` names.
fn writer_target(url: &str) -> Target {
    match sqlite_file(url) {
        Some((file, _)) => Target::File(file),
        None => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"));
            let uri = rest.unwrap_or(url);
            Target::Uri(match uri.starts_with("file:") {
                true => uri.to_string(),
                false => format!("file:{uri}"),
            })
        }
    }
}

/// Open and close one connection, to fail within seconds with the real
/// cause (refused, authentication, unknown database, unreachable host): the
/// pool would retry a refused connection until its 30 s acquire timeout and
/// then report only that it timed out.
async fn reach(url: &str) -> Result<()> {
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
    let (url, dialect) = opts.resolve()?;
    if dialect.reach_first {
        reach(&url).await?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    pending_in(&pool, dialect.migrator).await
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

/// The file of a `sqlite:` URL and the `?options` after it; `None` for
/// another scheme or an in-memory database (`:memory:`, or a named one in
/// URI form, `file:name?mode=memory`, which has no file to pin).
fn sqlite_file(url: &str) -> Option<(PathBuf, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, options) = rest.find('?').map_or((rest, ""), |i| rest.split_at(i));
    let in_memory = path.starts_with(":memory:") || options.contains("mode=memory");
    let path = path.strip_prefix("file:").unwrap_or(path);
    (!path.is_empty() && !in_memory).then(|| (PathBuf::from(path), options))
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectOptions, connect_sql, sqlite_file};
    use crate::Store;
    use crate::model::Run;
    use std::path::PathBuf;

    /// The writer is a connection of its own: given `sqlite::memory:` it
    /// must still reach the database the pool migrated and reads from.
    #[tokio::test]
    async fn an_in_memory_url_is_one_database_for_writer_and_readers() {
        let opts = ConnectOptions {
            database_url: Some("sqlite::memory:".into()),
            data_dir: PathBuf::from("unused"),
            auto_migrate: true,
            max_connections: 2,
        };
        let store = connect_sql(&opts).await.unwrap();
        let mut tx = store.write().await.unwrap();
        tx.insert_run(&Run::new("r".into(), "w".into(), 1))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut read = store.read().await.unwrap();
        assert!(read.run("r", false).await.unwrap().is_some());
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        let file = |url| sqlite_file(url).map(|(f, o)| (f, o.to_string()));
        assert_eq!(
            file("sqlite:///tmp/a.db"),
            Some((PathBuf::from("/tmp/a.db"), String::new()))
        );
        assert_eq!(
            file("sqlite://rel/a.db?mode=rwc"),
            Some((PathBuf::from("rel/a.db"), "?mode=rwc".into()))
        );
        assert_eq!(
            file("sqlite:a.db"),
            Some((PathBuf::from("a.db"), String::new()))
        );
        assert_eq!(
            file("sqlite:file:a.db?cache=shared"),
            Some((PathBuf::from("a.db"), "?cache=shared".into()))
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite:file:rules-1?mode=memory&cache=shared"), None);
        assert_eq!(file("postgres://h/db"), None);
    }
}
