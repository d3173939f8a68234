//! Writes that are one atomic call on either backend. Postgres chains the
//! statements of a write through writable CTEs into one statement. SQLite
//! has none, so its statements travel as one script, `BEGIN IMMEDIATE; …;
//! COMMIT`, run at once on its writer (`writer.rs`), with `$N` numbering the
//! query's arguments across all its statements. Where a statement must
//! apply only if the one before it touched a row, Postgres asks `EXISTS
//! (SELECT 1 FROM <that CTE>)` and SQLite asks `changes() > 0` (the rows
//! the last completed INSERT, UPDATE or DELETE touched).

use super::Result;
use super::dialect::Dialect;
use super::sql::{Db, Query, SqlStore};
use sqlx::any::AnyRow;

/// Appends an event; `id` is generated.
pub(super) const APPEND_EVENT: &str =
    "INSERT INTO events (run_id, seq, type, payload_json, created_at)";

/// Statements that bump run `$run`'s event counter by `count` and append
/// `count` events of it with the seqs that frees, in order, returning each
/// event's `id, seq`; event `k`'s type, payload and time are parameters
/// `first + 3k`, `+ 1`, `+ 2`. With `after` (a write of that run), it is
/// applied first and the events only if it touched a row. `set` (`a = $1,
/// b = $2, `) is more of the run row, written by the bump itself: one
/// statement cannot update a row twice. Bumping the counter takes the run
/// row's write lock until commit, so concurrent writers to one run get
/// consecutive seqs, and a rollback leaves no gap.
pub(super) fn append_events(
    d: &Dialect,
    after: Option<&str>,
    set: &str,
    run: usize,
    first: usize,
    count: usize,
) -> String {
    let bump = format!("UPDATE runs SET {set}event_seq = event_seq + {count} WHERE id = ${run}");
    // The last event takes the run's new `event_seq`.
    let rows = |from: &str| {
        (0..count)
            .map(|k| {
                let (p, back) = (first + 3 * k, count - 1 - k);
                format!(
                    "SELECT ${run}, event_seq - {back}, ${p}, ${}, ${} FROM {from}",
                    p + 1,
                    p + 2
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };
    let append = |from: &str| format!("{APPEND_EVENT} {} RETURNING id, seq", rows(from));
    match (d.writable_ctes, after) {
        (true, None) => format!("WITH s AS ({bump} RETURNING event_seq) {}", append("s")),
        (true, Some(write)) => format!(
            "WITH w AS ({write} RETURNING run_id), \
             s AS ({bump} AND EXISTS (SELECT 1 FROM w) RETURNING event_seq) {}",
            append("s")
        ),
        (false, None) => format!("{bump}; {}", append(&format!("runs WHERE id = ${run}"))),
        (false, Some(write)) => format!(
            "{write}; {bump} AND changes() > 0; {}",
            append(&format!("runs WHERE id = ${run} AND changes() > 0"))
        ),
    }
}

/// `sql` (statements of [`append_events`]) as one atomic write on its own:
/// one statement already with writable CTEs, else a script wrapped in its
/// write transaction.
pub(super) fn atomic(d: &Dialect, sql: String) -> String {
    if d.writable_ctes {
        sql
    } else {
        format!("{}; {sql}; COMMIT", d.begin_write)
    }
}

impl SqlStore {
    /// Runs an [`atomic`] write at once and returns every row it returned:
    /// on the writer where there is one (a script that fails halfway
    /// leaves its transaction open, and the turn rolls it back as it ends),
    /// else as one statement on a pooled connection.
    pub(super) async fn write_once(&self, query: Query<'_>) -> Result<Vec<AnyRow>> {
        if let Some(mut turn) = self.writer_turn().await {
            return Ok(turn.run(query)?.rows);
        }
        let mut conn = self.acquire().await?;
        let rows = query.fetch_all(conn.start()).await.db()?;
        conn.settle();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{ResumeContract, Run, RunStatus, Step};
    use crate::sql::q;
    use crate::{ConnectOptions, NewStep, SqlStore, Store, connect_sql};
    use serde_json::json;
    use sqlx::Row;
    use std::sync::Arc;

    const NOW: i64 = 1_700_000_000_000_000;

    /// A migrated SQLite store of one pooled connection for reads, with
    /// run `r` leased to `w`.
    async fn open(dir: &tempfile::TempDir) -> Arc<SqlStore> {
        let opts = ConnectOptions::sqlite_in(dir.path(), 1);
        let store = connect_sql(&opts).await.unwrap();
        let mut run = Run::new("r".into(), "w".into(), NOW);
        run.status = RunStatus::Running;
        run.lease_owner = Some("w".into());
        let mut tx = store.write().await.unwrap();
        tx.insert_run(&run).await.unwrap();
        tx.commit().await.unwrap();
        store
    }

    fn step(name: &str) -> Step {
        Step {
            id: format!("s-{name}"),
            run_id: "r".into(),
            name: name.into(),
            input_hash: "h".into(),
            input: json!({}),
            options: json!({}),
            resume_contract: ResumeContract::from_options(&json!({})),
            status: "completed".into(),
            output: Some(json!(1)),
            error: None,
            lease_owner: None,
            lease_expires_at: None,
            attempt: 1,
            started_at: Some(NOW),
            completed_at: Some(NOW),
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn new_step(name: &str) -> NewStep {
        NewStep {
            step: step(name),
            events: vec![("step.started", json!({})), ("step.completed", json!({}))],
            at: NOW,
        }
    }

    /// Step names, event seqs and the run's counter, as committed.
    async fn state(store: &SqlStore) -> (Vec<String>, Vec<i64>, i64) {
        let mut tx = store.write().await.unwrap();
        let steps = tx.steps("r").await.unwrap();
        let events = tx.events_after("r", 0, 1000).await.unwrap();
        tx.commit().await.unwrap();
        let mut conn = store.acquire().await.unwrap();
        let counter = q("SELECT event_seq FROM runs WHERE id = 'r'").fetch_one(conn.start());
        (
            steps.into_iter().map(|s| s.name).collect(),
            events.into_iter().map(|e| e.seq).collect(),
            counter.await.unwrap().get(0),
        )
    }

    #[tokio::test]
    async fn a_script_writes_its_events_only_if_its_write_touched_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let (s, payload) = (step("a"), json!({"x": 1}));
        let first = store.insert_step_if_absent(&s, &payload, NOW).await;
        assert_eq!(first.unwrap().map(|e| e.seq), Some(1));
        let again = store.insert_step_if_absent(&s, &payload, NOW).await;
        assert!(again.unwrap().is_none());
        assert_eq!(state(&store).await, (vec!["a".into()], vec![1], 1));
    }

    #[tokio::test]
    async fn a_group_takes_consecutive_seqs_and_a_fenced_one_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let group = [new_step("a"), new_step("b")];
        assert!(store.record_new_steps("w", &group).await.unwrap());
        assert!(
            !store
                .record_new_steps("zombie", &[new_step("c")])
                .await
                .unwrap()
        );
        let names = vec!["a".to_string(), "b".into()];
        assert_eq!(state(&store).await, (names, vec![1, 2, 3, 4], 4));
    }

    /// The second step's name exists: the first step's insert, already
    /// applied when the script failed, is rolled back, and the connection
    /// returns to the pool with no transaction open.
    #[tokio::test]
    async fn a_failing_script_leaves_no_partial_write_and_its_connection_usable() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        assert!(store.record_new_steps("w", &[new_step("b")]).await.unwrap());
        let group = [new_step("a"), new_step("b")];
        assert!(!store.record_new_steps("w", &group).await.unwrap());
        // A transaction left open would refuse this BEGIN IMMEDIATE.
        assert_eq!(state(&store).await, (vec!["b".into()], vec![1, 2], 2));
        assert!(store.record_new_steps("w", &[new_step("a")]).await.unwrap());
    }

    /// A write transaction dropped before its commit (its caller gave up
    /// halfway) is rolled back as its turn ends, and the writer takes the
    /// next write.
    #[tokio::test]
    async fn a_write_dropped_before_its_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let mut tx = store.write().await.unwrap();
        tx.insert_new_steps(&[new_step("a")]).await.unwrap();
        drop(tx);
        assert_eq!(state(&store).await, (vec![], vec![], 0));
        assert!(store.record_new_steps("w", &[new_step("a")]).await.unwrap());
        assert_eq!(state(&store).await, (vec!["a".into()], vec![1, 2], 2));
    }
}
