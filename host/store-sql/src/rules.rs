//! Model rules that SQL filters on, each written once, here, beside the
//! Rust rule it restates. The tests below hold each pair to agreement on a
//! real database.

use crate::model::RunStatus;

/// `model::lease_expired(lease_expires_at, now)`; `now` is a placeholder.
pub(super) fn lease_expired(now: &str) -> String {
    format!("lease_expires_at <= {now}")
}

/// `RunStatus::HOLDS_DEDUPE_KEY`. The partial unique index
/// `runs_queue_dedupe_active` of migration 0001 (which cannot change once
/// applied) restates it; a test below checks the two agree.
pub(super) fn holds_dedupe_key() -> String {
    let statuses = RunStatus::HOLDS_DEDUPE_KEY.map(|s| format!("'{}'", s.as_str()));
    format!("status IN ({})", statuses.join(", "))
}

/// `Run::fence(owner)` passes; `owner` is a placeholder.
pub(super) fn admits_writer(owner: &str) -> String {
    let cancelled = RunStatus::Cancelled.as_str();
    format!("status <> '{cancelled}' AND lease_owner = {owner}")
}

/// `Run::claim_resumes`: claiming the run continues its attempt.
pub(super) fn claim_resumes() -> String {
    let running = RunStatus::Running.as_str();
    format!("(status = '{running}' AND lease_owner IS NULL AND parked_until IS NOT NULL)")
}

/// `i32::saturating_add(1)` of the INTEGER expression `x`.
pub(super) fn saturating_increment(x: &str) -> String {
    format!("(CASE WHEN {x} >= {} THEN {x} ELSE {x} + 1 END)", i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Run, lease_expired as expired};
    use crate::{ConnectOptions, Store, connect};
    use sqlx::{AnyPool, Row};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    const NOW: i64 = 1_700_000_000_000_000;

    /// A migrated SQLite store, and a plain pool on the same file.
    async fn open(dir: &tempfile::TempDir) -> (Arc<dyn Store>, AnyPool) {
        let store = connect(&ConnectOptions::sqlite_in(dir.path(), 2)).await;
        let store = store.unwrap();
        let url = format!("sqlite://{}", dir.path().join("tidebase.db").display());
        (store, AnyPool::connect(&url).await.unwrap())
    }

    async fn insert(store: &Arc<dyn Store>, runs: &[Run]) {
        let mut tx = store.write().await.unwrap();
        for run in runs {
            tx.insert_run(run).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    fn run(id: String, edit: impl FnOnce(&mut Run)) -> Run {
        let mut run = Run::new(id, "w".into(), NOW);
        edit(&mut run);
        run
    }

    /// Ids of the runs `filter` selects.
    async fn selected(pool: &AnyPool, filter: &str) -> BTreeSet<String> {
        let sql = format!("SELECT id FROM runs WHERE {filter}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>(0)).collect()
    }

    fn ids(runs: &[Run], keep: impl Fn(&Run) -> bool) -> BTreeSet<String> {
        runs.iter()
            .filter(|r| keep(r))
            .map(|r| r.id.clone())
            .collect()
    }

    #[tokio::test]
    async fn lease_expiry_in_sql_is_the_model_rule_at_the_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pool) = open(&dir).await;
        let runs: Vec<Run> = (-1..=1)
            .map(|d| run(format!("r{d}"), |r| r.lease_expires_at = Some(NOW + d)))
            .collect();
        insert(&store, &runs).await;
        assert_eq!(
            selected(&pool, &lease_expired(&NOW.to_string())).await,
            ids(&runs, |r| expired(r.lease_expires_at.unwrap(), NOW))
        );
    }

    #[tokio::test]
    async fn the_writer_fence_in_sql_is_run_fence() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pool) = open(&dir).await;
        let mut runs = Vec::new();
        for status in RunStatus::ALL {
            for owner in [Some("w1"), Some("w2"), None] {
                let id = format!("{}-{owner:?}", status.as_str());
                runs.push(run(id, |r| {
                    r.status = status;
                    r.lease_owner = owner.map(String::from);
                }));
            }
        }
        insert(&store, &runs).await;
        assert_eq!(
            selected(&pool, &admits_writer("'w1'")).await,
            ids(&runs, |r| r.fence("w1").is_ok())
        );
    }

    #[tokio::test]
    async fn claim_resumes_in_sql_is_the_model_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pool) = open(&dir).await;
        let mut runs = Vec::new();
        for status in RunStatus::ALL {
            for owner in [Some("w"), None] {
                for parked in [Some(NOW), None] {
                    let id = format!("{}-{owner:?}-{parked:?}", status.as_str());
                    runs.push(run(id, |r| {
                        r.status = status;
                        r.lease_owner = owner.map(String::from);
                        r.parked_until = parked;
                    }));
                }
            }
        }
        insert(&store, &runs).await;
        assert_eq!(
            selected(&pool, &claim_resumes()).await,
            ids(&runs, Run::claim_resumes)
        );
    }

    #[tokio::test]
    async fn the_sql_increment_saturates_as_i32_does() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pool) = open(&dir).await;
        let runs: Vec<Run> = [0, i32::MAX - 1, i32::MAX]
            .map(|a| run(format!("a{a}"), |r| r.attempt = a))
            .into();
        insert(&store, &runs).await;
        let unchanged = format!("{} = attempt", saturating_increment("attempt"));
        assert_eq!(
            selected(&pool, &unchanged).await,
            ids(&runs, |r| r.attempt.saturating_add(1) == r.attempt)
        );
    }

    /// The query, the partial unique index and the model name the same
    /// statuses: a run holds its key exactly when a second enqueue with the
    /// key is refused.
    #[tokio::test]
    async fn dedupe_holders_in_sql_and_in_the_index_are_the_model_rule() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pool) = open(&dir).await;
        let keyed = |id: String, key: &str, status: RunStatus| {
            run(id, |r| {
                r.status = status;
                r.queue = Some("q".into());
                r.dedupe_key = Some(key.into());
            })
        };
        let runs: Vec<Run> = RunStatus::ALL
            .map(|s| keyed(s.as_str().into(), s.as_str(), s))
            .into();
        insert(&store, &runs).await;
        let holders = ids(&runs, |r| RunStatus::HOLDS_DEDUPE_KEY.contains(&r.status));
        assert_eq!(selected(&pool, &holds_dedupe_key()).await, holders);

        let mut tx = store.write().await.unwrap();
        for s in RunStatus::ALL {
            let second = keyed(
                format!("again-{}", s.as_str()),
                s.as_str(),
                RunStatus::Queued,
            );
            let inserted = tx.insert_run_unless_active(&second).await.unwrap();
            assert_eq!(inserted, !holders.contains(s.as_str()), "{s:?}");
        }
        tx.commit().await.unwrap();

        let index = |sql: &'static str| {
            let at = sql.find("runs_queue_dedupe_active").unwrap();
            sql[at..].split(';').next().unwrap()
        };
        assert_eq!(
            index(include_str!("../migrations/postgres/0001_core.sql")),
            index(include_str!("../migrations/sqlite/0001_core.sql")),
            "both backends index the same statuses"
        );
    }
}
