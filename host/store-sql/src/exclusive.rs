//! Cross-process exclusion for the reconciler tick. Postgres replicas share
//! a session-level advisory lock; an SQLite database has one process, so an
//! in-process lock is the whole story there.

use super::{Backend, Exclusive, Result};
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Advisory lock held on one pooled connection until released.
struct Advisory {
    conn: PoolConnection<Any>,
    key: i64,
}

#[async_trait]
impl Exclusive for Advisory {
    async fn release(mut self: Box<Self>) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(())
    }
}

struct Local(OwnedMutexGuard<()>);

#[async_trait]
impl Exclusive for Local {
    async fn release(self: Box<Self>) -> Result<()> {
        drop(self.0);
        Ok(())
    }
}

pub(crate) async fn try_exclusive(
    pool: &AnyPool,
    backend: Backend,
    local: &Arc<Mutex<()>>,
    key: i64,
) -> Result<Option<Box<dyn Exclusive>>> {
    match backend {
        Backend::Postgres => {
            let mut conn = pool.acquire().await?;
            let row = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            let granted: bool = row.try_get(0)?;
            Ok(granted.then(|| Box::new(Advisory { conn, key }) as Box<dyn Exclusive>))
        }
        Backend::Sqlite => Ok(local
            .clone()
            .try_lock_owned()
            .ok()
            .map(|g| Box::new(Local(g)) as Box<dyn Exclusive>)),
    }
}
