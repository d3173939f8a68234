//! The engine's database connections: concurrent work is served by reusing
//! the pool's connections, never by opening connections and dropping them
//! half-open (each a Postgres backend forked and torn down). Connections
//! are counted where they cannot hide: at a TCP relay in front of Postgres.

use crate::harness::{Backend, Opts, TestServer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tidebase_host::store::{ConnectOptions, connect};
use tokio::net::{TcpListener, TcpStream};

const POOL: u32 = 32;

/// Relays every connection to `upstream`; returns its port and the number
/// of connections it accepted so far.
async fn counting_relay(upstream: String) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(upstream).await {
                    tokio::io::copy_bidirectional(&mut client, &mut server)
                        .await
                        .ok();
                }
            });
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_reuse_connections_instead_of_opening_new_ones() {
    let srv = TestServer::start_with(Backend::Postgres, Opts::default()).await;
    let (port, accepted) = counting_relay("127.0.0.1:5432".into()).await;
    let url = srv
        .db_url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    assert_ne!(
        url, srv.db_url,
        "the test database is reached through the relay"
    );
    let store = connect(&ConnectOptions {
        database_url: Some(url),
        data_dir: std::env::temp_dir(),
        auto_migrate: false,
        max_connections: POOL,
    })
    .await
    .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            for _ in 0..300 {
                store
                    .read()
                    .await
                    .unwrap()
                    .steps("no-such-run")
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    let opened = accepted.load(Ordering::SeqCst);
    assert!(
        opened <= POOL as usize,
        "{opened} connections opened for a pool of {POOL}"
    );
}
