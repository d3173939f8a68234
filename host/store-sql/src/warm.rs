//! Connections kept out of sqlx's pool between uses. sqlx pings every
//! connection handed back to its pool, to flush whatever a cancelled query or
//! a dropped transaction left behind: on Postgres that is a round trip to the
//! server, on SQLite a hop to the connection's worker thread, once per
//! checkout. A connection whose last statement ran to completion has nothing
//! to flush, so it is parked here instead and the next checkout takes it
//! without the pool and without the ping. A connection whose statement did
//! not complete (cancelled or failed) goes back through the pool as before.

use sqlx::pool::{MaybePoolConnection, PoolConnection};
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub(super) struct Warm {
    pool: AnyPool,
    idle: Mutex<Vec<PoolConnection<Any>>>,
    /// Signalled when a connection is parked: a checkout waiting on the pool
    /// takes it instead, since a parked connection still counts against the
    /// pool's limit and would otherwise never reach that waiter.
    parked: Notify,
}

impl Warm {
    pub(super) fn new(pool: AnyPool) -> Arc<Warm> {
        Arc::new(Warm {
            pool,
            idle: Mutex::new(Vec::new()),
            parked: Notify::new(),
        })
    }

    /// A parked connection if there is one, else the pool's next one.
    pub(super) async fn acquire(self: &Arc<Self>) -> Result<WarmConn, sqlx::Error> {
        if let Some(conn) = self.pop() {
            return Ok(self.wrap(conn));
        }
        // The pool's checkout runs as a task of its own: if a parked
        // connection is taken first, dropping the checkout would abort a
        // connection the pool may be opening, so it finishes and is parked.
        let pool = self.pool.clone();
        let mut checkout = tokio::spawn(async move { pool.acquire().await });
        loop {
            let parked = self.parked.notified();
            tokio::pin!(parked);
            parked.as_mut().enable();
            if let Some(conn) = self.pop() {
                let home = self.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(conn)) = checkout.await {
                        home.park(conn);
                    }
                });
                return Ok(self.wrap(conn));
            }
            tokio::select! {
                done = &mut checkout => {
                    let conn = done.map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))??;
                    return Ok(self.wrap(conn));
                }
                () = &mut parked => {}
            }
        }
    }

    fn pop(&self) -> Option<PoolConnection<Any>> {
        self.idle.lock().expect("not poisoned").pop()
    }

    fn park(&self, conn: PoolConnection<Any>) {
        self.idle.lock().expect("not poisoned").push(conn);
        self.parked.notify_one();
    }

    /// A transaction begun with `begin` on a connection from
    /// [`Warm::acquire`]. It ends back in the pool (its commit or rollback
    /// is flushed by the pool's ping).
    pub(super) async fn begin(
        self: &Arc<Self>,
        begin: &'static str,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        let conn = self.acquire().await?.into_pooled();
        // `Transaction::begin` is what `Pool::begin_with` runs, given a
        // connection of our choosing.
        let conn = MaybePoolConnection::PoolConnection(conn);
        Transaction::begin(conn, Some(sqlx::SqlSafeStr::into_sql_str(begin))).await
    }

    fn wrap(self: &Arc<Self>, conn: PoolConnection<Any>) -> WarmConn {
        WarmConn {
            conn: Some(conn),
            home: self.clone(),
            settled: true,
        }
    }
}

/// A checked-out connection; parked again when dropped if every statement
/// run on it was [`WarmConn::settle`]d.
pub(super) struct WarmConn {
    conn: Option<PoolConnection<Any>>,
    home: Arc<Warm>,
    settled: bool,
}

impl WarmConn {
    /// The connection, for a statement; call [`WarmConn::settle`] once that
    /// statement has completed.
    pub(super) fn start(&mut self) -> &mut AnyConnection {
        self.settled = false;
        self.conn.as_mut().expect("held until dropped")
    }

    /// The last statement ran to completion: nothing is left to flush.
    pub(super) fn settle(&mut self) {
        self.settled = true;
    }

    /// Leave the warm set for good (a session lock or a transaction holds
    /// the connection and hands it back to the pool).
    pub(super) fn into_pooled(mut self) -> PoolConnection<Any> {
        self.conn.take().expect("held until dropped")
    }
}

impl Drop for WarmConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.settled {
            self.home.park(conn);
        }
        // Otherwise `conn` drops here and returns through the pool's ping.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectOptions, Store, connect};
    use std::time::Duration;

    async fn pool(dir: &tempfile::TempDir) -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap()
    }

    fn parked(warm: &Warm) -> usize {
        warm.idle.lock().unwrap().len()
    }

    #[tokio::test]
    async fn only_a_connection_whose_statement_completed_is_parked() {
        let dir = tempfile::tempdir().unwrap();
        let warm = Warm::new(pool(&dir).await);
        let mut conn = warm.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(conn.start()).await.unwrap();
        conn.settle();
        drop(conn);
        assert_eq!(parked(&warm), 1);

        // Begun and never settled, as when a query's future is dropped.
        let mut conn = warm.acquire().await.unwrap();
        assert_eq!(parked(&warm), 0, "the parked connection was reused");
        conn.start();
        drop(conn);
        assert_eq!(parked(&warm), 0, "an unsettled connection goes to the pool");
    }

    /// Parked connections count against the pool's limit: a checkout
    /// waiting on a full pool must still get one that is parked meanwhile.
    /// Many tasks mixing reads and write transactions over two connections
    /// finish well within the pool's 30 s acquire timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkouts_beyond_the_pool_limit_do_not_starve() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ConnectOptions {
            database_url: None,
            data_dir: dir.path().to_path_buf(),
            auto_migrate: true,
            max_connections: 2,
        };
        let store: Arc<dyn Store> = connect(&opts).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let store = store.clone();
            tasks.spawn(async move {
                for j in 0..20 {
                    if (i + j) % 3 == 0 {
                        let tx = store.write().await.unwrap();
                        if j % 2 == 0 {
                            tx.commit().await.unwrap();
                        }
                    } else {
                        let mut r = store.read().await.unwrap();
                        r.steps("no-such-run").await.unwrap();
                    }
                }
            });
        }
        let all = tasks.join_all();
        tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("checkouts starved");
    }
}
