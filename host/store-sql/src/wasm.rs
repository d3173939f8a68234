//! SQL behind deployed components and the wasm worker loop.

use super::onehop::APPEND_EVENT;
use super::rows::{DEPLOYMENTS, RUNS};
use super::sql::{Db, SqlStore, SqlTx, q};
use super::table::{Codec, Json, R};
use super::{
    ClaimedRun, DeploymentRows, EventRows, HostCallRows, Result, RunRows, Tx, WasmClaim,
    WasmRunRows, rules,
};
use crate::clock::Micros;
use crate::model::{CLAIM_RESUMED, CLAIM_STARTED, Deployment};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

#[async_trait]
impl DeploymentRows for SqlTx {
    async fn put_component(&mut self, digest: &str, bytes: &[u8], now: Micros) -> Result<()> {
        let sql = "INSERT INTO components (digest, bytes, size, created_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (digest) DO NOTHING";
        let query = q(sql)
            .bind(digest.to_string())
            .bind(bytes.to_vec())
            .bind(bytes.len() as i64)
            .bind(now);
        self.exec(query).await?;
        Ok(())
    }

    async fn component(&mut self, digest: &str) -> Result<Option<Vec<u8>>> {
        let query = q("SELECT bytes FROM components WHERE digest = $1").bind(digest.to_string());
        self.one(query, |row| row.try_get(0)).await
    }

    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()> {
        self.insert(&DEPLOYMENTS, d).await
    }

    async fn deployments(&mut self, workflow: Option<&str>) -> Result<Vec<Deployment>> {
        let sql = format!(
            "SELECT {} FROM deployments WHERE ($1 IS NULL OR workflow_name = $1) \
             ORDER BY workflow_name, version DESC",
            DEPLOYMENTS.select()
        );
        let query = q(&sql).bind(workflow.map(String::from));
        self.all(query, DEPLOYMENTS.decode).await
    }

    async fn deployment_for(&mut self, workflow: &str, digest: &str) -> Result<Option<Deployment>> {
        let sql = format!(
            "SELECT {} FROM deployments WHERE workflow_name = $1 AND digest = $2 \
             ORDER BY version DESC LIMIT 1",
            DEPLOYMENTS.select()
        );
        let query = q(&sql).bind(workflow.to_string()).bind(digest.to_string());
        self.one(query, DEPLOYMENTS.decode).await
    }
}

#[async_trait]
impl HostCallRows for SqlTx {
    async fn host_calls(&mut self, run_id: &str) -> Result<Vec<(String, Value)>> {
        let sql = "SELECT call_key, answer_json FROM host_calls WHERE run_id = $1";
        self.all(q(sql).bind(run_id.to_string()), |row| {
            Ok((
                row.try_get("call_key")?,
                <Json as Codec<Value>>::get(row, "answer_json")?,
            ))
        })
        .await
    }

    async fn insert_host_call(
        &mut self,
        run_id: &str,
        key: &str,
        answer: &Value,
        now: Micros,
    ) -> Result<()> {
        let sql = "INSERT INTO host_calls (run_id, call_key, answer_json, created_at) \
            VALUES ($1, $2, $3, $4)";
        let query = q(sql)
            .bind(run_id.to_string())
            .bind(key.to_string())
            .bind(answer.to_string())
            .bind(now);
        self.exec(query).await?;
        Ok(())
    }
}

#[async_trait]
impl WasmRunRows for SqlTx {
    async fn adopt_pending(&mut self, workflow: &str, digest: &str) -> Result<u64> {
        let sql = "UPDATE runs SET component_digest = $2 WHERE workflow_name = $1 \
            AND status = 'pending' AND attempt = 0 AND component_digest IS NULL";
        self.exec(q(sql).bind(workflow.to_string()).bind(digest.to_string()))
            .await
    }

    async fn wake(&mut self, run_id: &str, now: Micros) -> Result<()> {
        // Also marks a run that is executing right now, so a wake that races
        // with its suspension is not lost (see `Engine::park`).
        let sql = "UPDATE runs SET parked_until = $2 WHERE id = $1 \
            AND component_digest IS NOT NULL AND (parked_until IS NULL OR parked_until > $2)";
        self.exec(q(sql).bind(run_id.to_string()).bind(now)).await?;
        Ok(())
    }

    async fn next_wake(&mut self, now: Micros) -> Result<Option<Micros>> {
        let sql = "SELECT MIN(parked_until) FROM runs WHERE component_digest IS NOT NULL \
            AND status = 'running' AND parked_until > $1";
        self.value(q(sql).bind(now)).await
    }
}

/// The run `$3` and its descendants (any run when `$3` is NULL), for
/// [`WASM_IN_TREE`]; opens the statement's `WITH`.
const TREE: &str = "WITH RECURSIVE tree(id) AS (\
    SELECT CAST($3 AS TEXT) \
    UNION SELECT e.child_run_id FROM run_edges e JOIN tree t ON e.parent_run_id = t.id)";

/// A wasm run in `tree` (any run when `$3` is NULL).
const WASM_IN_TREE: &str =
    "component_digest IS NOT NULL AND ($3 IS NULL OR id IN (SELECT id FROM tree))";

/// The two kinds of run that may be picked up at `$1`: pending, or
/// running with no live lease (none, or expired) and not parked into the
/// future.
fn ready_kinds() -> [String; 2] {
    [
        "status = 'pending'".to_string(),
        format!(
            "status = 'running' AND (lease_expires_at IS NULL OR {}) AND \
             (parked_until IS NULL OR parked_until <= $1)",
            rules::lease_expired("$1")
        ),
    ]
}

/// The ready runs of each kind, locked with `lock` (skipping those another
/// claimer holds), at most `$2` of each kind, oldest first within a kind:
/// their `id`, `created_at` and whether claiming one `resumed` it
/// ([`rules::claim_resumes`], read from the row as locked). Pending runs
/// come in creation order from index `runs_wasm_pending`, running ones
/// from `runs_wasm_ready`. One scan of both kinds in creation order walked
/// every finished run older than the oldest pending one: 2.5 ms per claim
/// after 4,000 runs (issue 12), and more as the table grows.
fn candidates(lock: &str) -> String {
    ready_kinds()
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            format!(
                "SELECT * FROM (SELECT id, created_at, {} AS resumed FROM runs \
                 WHERE {WASM_IN_TREE} AND {kind} ORDER BY created_at LIMIT $2{lock}) AS kind{i}",
                rules::claim_resumes()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The oldest `$2` of [`candidates`]: `id` and `resumed`.
fn picked(lock: &str) -> String {
    format!(
        "SELECT id, resumed FROM ({}) AS k ORDER BY created_at LIMIT $2",
        candidates(lock)
    )
}

/// Whether any step or outside-step call of the run `id` is recorded, as
/// an integer (`Any` cannot decode SQLite booleans), named `recorded`.
fn recorded(id: &str) -> String {
    format!(
        "CAST(CASE WHEN EXISTS (SELECT 1 FROM steps WHERE run_id = {id}) \
           OR EXISTS (SELECT 1 FROM host_calls WHERE run_id = {id}) \
         THEN 1 ELSE 0 END AS BIGINT) AS recorded"
    )
}

fn decode_claimed(row: &AnyRow) -> R<ClaimedRun> {
    Ok(ClaimedRun {
        run: (RUNS.decode)(row)?,
        recorded: row.try_get::<i64, _>("recorded")? != 0,
    })
}

impl SqlTx {
    /// Up to `claim.limit` of the runs ready to be claimed ([`picked`]),
    /// oldest first.
    async fn ready_wasm_runs(&mut self, claim: &WasmClaim<'_>) -> Result<Vec<ClaimedRun>> {
        let sql = format!(
            "{TREE} SELECT {}, {} FROM runs WHERE id IN (SELECT id FROM ({}) AS p) \
             ORDER BY created_at",
            RUNS.select(),
            recorded("runs.id"),
            picked(self.dialect.skip_locked),
        );
        let query = q(&sql)
            .bind(claim.now)
            .bind(claim.limit)
            .bind(claim.root.map(String::from));
        self.all(query, decode_claimed).await
    }
}

impl SqlStore {
    /// `Store::claim_wasm_runs` as one autocommit statement: the ready runs
    /// are locked skipping those another claimer holds, updated as
    /// `Run::claim` says (`rules::claim_resumes` picks the event and
    /// whether the attempt counts up), and each gets its event with the
    /// run's next `seq`, bumped in the same update.
    pub(super) async fn claim_wasm_runs_at_once(
        &self,
        claim: &WasmClaim<'_>,
    ) -> Result<Vec<ClaimedRun>> {
        let sql = format!(
            "{TREE}, \
             picked AS ({}), \
             c AS (UPDATE runs r SET status = 'running', lease_owner = $4, \
                 lease_expires_at = $5, parked_until = NULL, updated_at = $1, \
                 attempt = CASE WHEN p.resumed THEN r.attempt ELSE {} END, \
                 event_seq = r.event_seq + 1 \
               FROM picked p WHERE r.id = p.id RETURNING {}, r.event_seq, p.resumed), \
             e AS ({APPEND_EVENT} SELECT id, event_seq, \
               CASE WHEN resumed THEN '{CLAIM_RESUMED}' ELSE '{CLAIM_STARTED}' END, $6, $1 FROM c) \
             SELECT {}, {} FROM c ORDER BY created_at",
            picked(self.dialect.skip_locked),
            rules::saturating_increment("r.attempt"),
            RUNS.select_from("r"),
            RUNS.select(),
            recorded("c.id"),
        );
        let query = q(&sql)
            .bind(claim.now)
            .bind(claim.limit)
            .bind(claim.root.map(String::from))
            .bind(claim.owner.to_string())
            .bind(claim.lease_expires_at)
            .bind(super::table::json_text(&claim.payload));
        let mut conn = self.acquire().await?;
        let rows = query.fetch_all(conn.start()).await.db()?;
        conn.settle();
        rows.iter().map(decode_claimed).collect::<R<Vec<_>>>().db()
    }

    /// `Store::claim_wasm_runs` in one transaction, which excludes every
    /// other writer already.
    pub(super) async fn claim_wasm_runs_in_tx(
        &self,
        claim: &WasmClaim<'_>,
    ) -> Result<Vec<ClaimedRun>> {
        let mut tx = self.write_tx().await?;
        let mut runs = tx.ready_wasm_runs(claim).await?;
        for ClaimedRun { run, .. } in &mut runs {
            let kind = run.claim(claim.owner, claim.lease_expires_at, claim.now);
            tx.update_run(run).await?;
            tx.append_event(&run.id, kind, &claim.payload, claim.now)
                .await?;
        }
        Box::new(tx).commit().await?;
        Ok(runs)
    }
}
