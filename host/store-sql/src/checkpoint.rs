//! SQLite's WAL checkpoints, run beside the writer instead of on it.
//!
//! Left to `wal_autocheckpoint`, the connection that commits runs the
//! checkpoint, i.e. our one writer, and every write waits while it copies
//! pages and syncs the WAL and the database file: at `synchronous = normal`
//! those syncs are the only ones, and without them 10-step wasm runs were
//! 40% faster over a phase of 5,000 runs (issue 12). Here the writer never
//! checkpoints. A thread with a connection of its own copies and syncs
//! beside it, while writes go on.
//!
//! That alone lets the WAL grow without bound: SQLite starts the WAL over
//! only when a write begins after a checkpoint that copied every frame, and
//! a checkpoint beside a writer that never pauses never catches up with it.
//! So once the WAL holds [`RESTART_FRAMES`], the thread takes the writer's
//! turn for a second checkpoint, which has only the frames written during
//! the first to copy; the next write then restarts the WAL. A write waits
//! for that short catch-up once per [`RESTART_FRAMES`] instead of for a
//! whole checkpoint every 1,000 frames. A reader that still needs older
//! frames defers the restart to a later pass.
//!
//! Durability is SQLite's own at every `synchronous` level: commits sync
//! (or not) exactly as before, and a checkpoint syncs the WAL before it
//! copies and the database file before the WAL may restart.

use super::writer::Writer;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::Mutex;

/// WAL frames (pages) after which the writer's turn is taken so that the
/// WAL can restart: 8,192 frames of 4 KiB pages are 32 MiB.
const RESTART_FRAMES: i64 = 8_192;

/// Pause between passes. A pass with nothing to copy costs a few
/// microseconds; one that copies keeps the WAL short for the restart.
const PASS_EVERY: Duration = Duration::from_millis(10);

/// What the writer runs instead of checkpointing itself, and the size the
/// WAL file is cut back to when it restarts (it grows past
/// [`RESTART_FRAMES`] by what one pass lets accumulate).
pub(super) const WRITER_SETUP: [&str; 2] = [
    "PRAGMA wal_autocheckpoint = 0",
    "PRAGMA journal_size_limit = 67108864",
];

/// Starts the checkpoints of the database at `path` beside `writer`, on a
/// connection set up as the writer's (`setup`). The thread ends once the
/// writer is dropped with its store.
pub(super) fn beside(
    path: &Path,
    setup: &[String],
    writer: Weak<Mutex<Writer>>,
) -> anyhow::Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    for statement in setup {
        conn.execute_batch(statement)?;
    }
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&conn, &writer))?;
    Ok(())
}

fn run(conn: &Connection, writer: &Weak<Mutex<Writer>>) {
    let mut warned = false;
    loop {
        std::thread::sleep(PASS_EVERY);
        let Some(writer) = writer.upgrade() else {
            return;
        };
        let pass = pass(conn, &writer);
        // One warning per failing stretch, not one every 10 ms: the WAL
        // then grows until checkpoints succeed again.
        match pass {
            Err(e) if !warned => {
                warned = true;
                tracing::warn!("SQLite checkpoint failed, the WAL grows until one succeeds: {e}");
            }
            Err(_) => {}
            Ok(()) => warned = false,
        }
    }
}

/// One checkpoint beside the writer and, once the WAL is long, one more
/// on the writer's turn so the WAL can restart.
fn pass(conn: &Connection, writer: &Mutex<Writer>) -> rusqlite::Result<()> {
    let frames = checkpoint(conn)?;
    if frames >= RESTART_FRAMES {
        let _turn = writer.blocking_lock();
        checkpoint(conn)?;
    }
    Ok(())
}

/// A `PASSIVE` checkpoint (it waits for no reader or writer); the frames
/// the WAL holds.
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

#[cfg(test)]
mod tests {
    use crate::{ConnectOptions, connect_sql};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    /// Under writers that never pause, the WAL restarts: its file stays
    /// within a bound while several times that bound is committed through
    /// it. Without the catch-up on the writer's turn (or with no
    /// checkpoints at all) it grows by everything written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wal_stays_bounded_under_a_writer_that_never_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let store = connect_sql(&ConnectOptions::sqlite_in(dir.path(), 4))
            .await
            .unwrap();
        let wal = dir.path().join("tidebase.db-wal");
        let bound = 96 * MIB;
        let payload = 64 * 1024;
        let (stop, largest) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let watcher = {
            let (stop, largest) = (stop.clone(), largest.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    largest.fetch_max(len, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let mut written = 0;
        while written < 4 * bound {
            let sample = store
                .commit_ceiling(4, Duration::from_secs(1), payload)
                .await
                .unwrap();
            written += sample.commits * payload as u64;
        }
        stop.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        let largest = largest.load(Ordering::Relaxed);
        assert!(largest > 0, "the database is not in WAL mode");
        assert!(
            largest <= bound,
            "WAL grew to {} MiB while {} MiB were committed",
            largest / MIB,
            written / MIB
        );
    }
}
