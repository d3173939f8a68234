//! Rows behind queues, schedules, the reconciler and outbound webhooks:
//! queue configuration, claim selection, schedules, recovery attempts and
//! channel deliveries.

use super::rows::{self, R, to_text};
use super::sql::{SqlTx, q};
use super::{Backend, Claimant, QueueTx, Result};
use crate::clock::Micros;
use crate::model::{
    CallOutcome, Delivery, QueueConfig, QueueCounts, RecoveryAttempt, Run, Schedule,
};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

const CONFIG_COLS: &str = "name, concurrency, rate_per_minute, invoke_url, created_at, updated_at";

fn queue_config(row: &AnyRow) -> R<QueueConfig> {
    Ok(QueueConfig {
        name: row.try_get("name")?,
        concurrency: row.try_get::<Option<i32>, _>("concurrency")?.map(i64::from),
        rate_per_minute: row
            .try_get::<Option<i32>, _>("rate_per_minute")?
            .map(i64::from),
        invoke_url: row.try_get("invoke_url")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const SCHEDULE_COLS: &str = "name, cron, workflow_name, input_json, queue_name, max_attempts, \
    enabled, next_run_at, last_enqueued_at, created_at, updated_at";
/// The columns as read: sqlx's `Any` driver cannot decode SQLite booleans,
/// so `enabled` comes back as an integer on both backends.
const SCHEDULE_SELECT: &str = "name, cron, workflow_name, input_json, queue_name, max_attempts, \
    CAST(CASE WHEN enabled THEN 1 ELSE 0 END AS BIGINT) AS enabled, next_run_at, last_enqueued_at, \
    created_at, updated_at";

fn schedule(row: &AnyRow) -> R<Schedule> {
    let input: String = row.try_get("input_json")?;
    let enabled = row.try_get::<i64, _>("enabled")? != 0;
    Ok(Schedule {
        name: row.try_get("name")?,
        cron: row.try_get("cron")?,
        workflow_name: row.try_get("workflow_name")?,
        input: serde_json::from_str(&input).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        queue: row.try_get("queue_name")?,
        max_attempts: row.try_get("max_attempts")?,
        enabled,
        next_run_at: row.try_get("next_run_at")?,
        last_enqueued_at: row.try_get("last_enqueued_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const DELIVERY_COLS: &str =
    "id, run_id, channel_id, gate_id, event_type, url, secret, payload_json, created_at";

fn delivery(row: &AnyRow) -> R<Delivery> {
    let payload: String = row.try_get("payload_json")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        channel_id: row.try_get("channel_id")?,
        gate_id: row.try_get("gate_id")?,
        event_type: row.try_get("event_type")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        payload: serde_json::from_str::<Value>(&payload)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: row.try_get("created_at")?,
    })
}

/// `$1, $2, …` for every column of a column list.
fn placeholders(cols: &str) -> String {
    let n = cols.split(',').count();
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(row: &AnyRow) -> R<i64> {
    row.try_get(0)
}

fn name(row: &AnyRow) -> R<String> {
    row.try_get(0)
}

/// The SQL condition selecting the runs `who` may claim.
fn claimable_by(who: Claimant) -> &'static str {
    match who {
        Claimant::External => "component_digest IS NULL",
        Claimant::Wasm => "component_digest IS NOT NULL",
    }
}

impl SqlTx {
    fn skip_locked(&self, lock: bool) -> &'static str {
        if lock && self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }

    async fn scalar(&mut self, query: super::sql::Query<'_>) -> Result<i64> {
        Ok(self.one(query, count).await?.unwrap_or(0))
    }
}

#[async_trait]
impl QueueTx for SqlTx {
    async fn insert_run_unless_active(&mut self, r: &Run) -> Result<bool> {
        // Without a conflict target, DO NOTHING covers the partial unique
        // index on active (queue, dedupe key) pairs on both backends, and
        // (unlike a caught violation) leaves a Postgres transaction usable.
        let sql = format!(
            "INSERT INTO runs ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            rows::RUN_COLS,
            placeholders(rows::RUN_COLS)
        );
        Ok(self.exec(super::sql::bind_run(q(&sql), r)).await? == 1)
    }

    async fn active_run_by_key(&mut self, queue: &str, key: &str) -> Result<Option<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE queue_name = $1 AND dedupe_key = $2 \
             AND status IN ('queued', 'running')",
            rows::RUN_COLS
        );
        self.one(
            q(&sql).bind(queue.to_string()).bind(key.to_string()),
            rows::run,
        )
        .await
    }

    async fn ready_queue_runs(
        &mut self,
        queue: &str,
        now: Micros,
        limit: i64,
        who: Claimant,
        lock: bool,
    ) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE queue_name = $1 AND status = 'queued' AND run_at <= $2 \
             AND {} ORDER BY priority DESC, run_at ASC, id LIMIT $3{}",
            rows::RUN_COLS,
            claimable_by(who),
            self.skip_locked(lock)
        );
        self.all(
            q(&sql).bind(queue.to_string()).bind(now).bind(limit),
            rows::run,
        )
        .await
    }

    async fn queues_with_ready_runs(&mut self, now: Micros, who: Claimant) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT queue_name FROM runs WHERE queue_name IS NOT NULL AND status = 'queued' \
             AND run_at <= $1 AND {} ORDER BY queue_name",
            claimable_by(who)
        );
        self.all(q(&sql).bind(now), name).await
    }

    async fn running_in_queue(&mut self, queue: &str) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM runs WHERE queue_name = $1 AND status = 'running'";
        self.scalar(q(sql).bind(queue.to_string())).await
    }

    async fn claimed_since(&mut self, queue: &str, since: Micros) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM runs WHERE queue_name = $1 AND claimed_at > $2";
        self.scalar(q(sql).bind(queue.to_string()).bind(since))
            .await
    }

    async fn queue_counts(&mut self) -> Result<Vec<QueueCounts>> {
        let sql = "SELECT queue_name, status, COUNT(*) FROM runs WHERE queue_name IS NOT NULL \
            GROUP BY queue_name, status ORDER BY queue_name";
        let rows = q(sql).fetch_all(self.c()).await?;
        let mut out: Vec<QueueCounts> = Vec::new();
        for row in rows {
            let queue: String = row.try_get(0)?;
            let status: String = row.try_get(1)?;
            let n: i64 = row.try_get(2)?;
            if out.last().is_none_or(|c| c.name != queue) {
                out.push(QueueCounts {
                    name: queue,
                    ..QueueCounts::default()
                });
            }
            let c = out.last_mut().expect("just pushed");
            match status.as_str() {
                "queued" => c.queued += n,
                "running" => c.running += n,
                "failed" => c.failed += n,
                "completed" => c.completed += n,
                "cancelled" => c.cancelled += n,
                _ => {}
            }
        }
        Ok(out)
    }

    async fn expired_leases(
        &mut self,
        now: Micros,
        nudged_since: Micros,
        limit: i64,
    ) -> Result<Vec<Run>> {
        // The lease rule of `model::lease`: expired once `lease_expires_at <= now`.
        let sql = format!(
            "SELECT {} FROM runs WHERE status = 'running' AND lease_expires_at <= $1 \
             AND component_digest IS NULL AND (queue_name IS NOT NULL OR (recovery_webhook IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM recovery_attempts a WHERE a.run_id = runs.id AND a.created_at > $2))) \
             ORDER BY lease_expires_at LIMIT $3",
            rows::RUN_COLS
        );
        self.all(q(&sql).bind(now).bind(nudged_since).bind(limit), rows::run)
            .await
    }

    async fn overdue_runs(&mut self, now: Micros, limit: i64) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE deadline_at IS NOT NULL AND deadline_at < $1 \
             AND status IN ('pending', 'queued', 'running') ORDER BY deadline_at LIMIT $2",
            rows::RUN_COLS
        );
        self.all(q(&sql).bind(now).bind(limit), rows::run).await
    }

    async fn push_run_at(&mut self, run_id: &str, expected: Micros, to: Micros) -> Result<bool> {
        let sql = "UPDATE runs SET run_at = $3 WHERE id = $1 AND status = 'queued' AND run_at = $2";
        Ok(self
            .exec(q(sql).bind(run_id.to_string()).bind(expected).bind(to))
            .await?
            == 1)
    }

    async fn queue_config(&mut self, name: &str) -> Result<Option<QueueConfig>> {
        let sql = format!("SELECT {CONFIG_COLS} FROM queue_configs WHERE name = $1");
        self.one(q(&sql).bind(name.to_string()), queue_config).await
    }

    async fn queue_configs(&mut self) -> Result<Vec<QueueConfig>> {
        let sql = format!("SELECT {CONFIG_COLS} FROM queue_configs ORDER BY name");
        self.all(q(&sql), queue_config).await
    }

    async fn put_queue_config(&mut self, c: &QueueConfig) -> Result<()> {
        let sql = format!(
            "INSERT INTO queue_configs ({CONFIG_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, \
             rate_per_minute = excluded.rate_per_minute, invoke_url = excluded.invoke_url, \
             created_at = excluded.created_at, updated_at = excluded.updated_at"
        );
        let query = q(&sql)
            .bind(c.name.clone())
            // Range-checked at the door; saturate rather than wrap regardless.
            .bind(c.concurrency.map(|v| i32::try_from(v).unwrap_or(i32::MAX)))
            .bind(
                c.rate_per_minute
                    .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
            )
            .bind(c.invoke_url.clone())
            .bind(c.created_at)
            .bind(c.updated_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn schedule(&mut self, name: &str, lock: bool) -> Result<Option<Schedule>> {
        let sql = format!(
            "SELECT {SCHEDULE_SELECT} FROM schedules WHERE name = $1{}",
            self.for_update(lock)
        );
        self.one(q(&sql).bind(name.to_string()), schedule).await
    }

    async fn schedules(&mut self) -> Result<Vec<Schedule>> {
        let sql = format!("SELECT {SCHEDULE_SELECT} FROM schedules ORDER BY name");
        self.all(q(&sql), schedule).await
    }

    async fn put_schedule(&mut self, s: &Schedule) -> Result<()> {
        let sql = format!(
            "INSERT INTO schedules ({SCHEDULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, workflow_name = excluded.workflow_name, \
             input_json = excluded.input_json, queue_name = excluded.queue_name, \
             max_attempts = excluded.max_attempts, enabled = excluded.enabled, \
             next_run_at = excluded.next_run_at, last_enqueued_at = excluded.last_enqueued_at, \
             created_at = excluded.created_at, updated_at = excluded.updated_at"
        );
        let query = q(&sql)
            .bind(s.name.clone())
            .bind(s.cron.clone())
            .bind(s.workflow_name.clone())
            .bind(to_text(&s.input))
            .bind(s.queue.clone())
            .bind(s.max_attempts)
            .bind(s.enabled)
            .bind(s.next_run_at)
            .bind(s.last_enqueued_at)
            .bind(s.created_at)
            .bind(s.updated_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn delete_schedule(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .exec(q("DELETE FROM schedules WHERE name = $1").bind(name.to_string()))
            .await?
            > 0)
    }

    async fn due_schedules(&mut self, now: Micros) -> Result<Vec<Schedule>> {
        let sql = format!(
            "SELECT {SCHEDULE_SELECT} FROM schedules WHERE enabled AND next_run_at IS NOT NULL \
             AND next_run_at <= $1 ORDER BY next_run_at, name"
        );
        self.all(q(&sql).bind(now), schedule).await
    }

    async fn insert_recovery_attempt(&mut self, a: &RecoveryAttempt) -> Result<()> {
        let sql = "INSERT INTO recovery_attempts (id, run_id, reason, webhook_url, status, http_status, \
            response_body, error_text, created_at, completed_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let query = q(sql)
            .bind(a.id.clone())
            .bind(a.run_id.clone())
            .bind(a.reason.clone())
            .bind(a.webhook_url.clone())
            .bind(a.status.clone())
            .bind(a.http_status)
            .bind(a.response_body.clone())
            .bind(a.error_text.clone())
            .bind(a.created_at)
            .bind(a.completed_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn finish_recovery_attempt(&mut self, a: &RecoveryAttempt) -> Result<()> {
        let sql = "UPDATE recovery_attempts SET status = $2, http_status = $3, response_body = $4, \
            error_text = $5, completed_at = $6 WHERE id = $1";
        let query = q(sql)
            .bind(a.id.clone())
            .bind(a.status.clone())
            .bind(a.http_status)
            .bind(a.response_body.clone())
            .bind(a.error_text.clone())
            .bind(a.completed_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn latest_recovery_attempt_at(&mut self, run_id: &str) -> Result<Option<Micros>> {
        let sql = "SELECT MAX(created_at) FROM recovery_attempts WHERE run_id = $1";
        let row = q(sql).bind(run_id.to_string()).fetch_one(self.c()).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    async fn insert_delivery(&mut self, d: &Delivery) -> Result<()> {
        let sql = format!(
            "INSERT INTO channel_deliveries ({DELIVERY_COLS}, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')"
        );
        let query = q(&sql)
            .bind(d.id.clone())
            .bind(d.run_id.clone())
            .bind(d.channel_id.clone())
            .bind(d.gate_id.clone())
            .bind(d.event_type.clone())
            .bind(d.url.clone())
            .bind(d.secret.clone())
            .bind(to_text(&d.payload))
            .bind(d.created_at);
        self.exec(query).await?;
        Ok(())
    }

    async fn claim_delivery(
        &mut self,
        id: &str,
        now: Micros,
        until: Micros,
    ) -> Result<Option<Delivery>> {
        let sql = format!(
            "UPDATE channel_deliveries SET claimed_until = $3 WHERE id = $1 AND status = 'pending' \
             AND (claimed_until IS NULL OR claimed_until < $2) RETURNING {DELIVERY_COLS}"
        );
        self.one(q(&sql).bind(id.to_string()).bind(now).bind(until), delivery)
            .await
    }

    async fn finish_delivery(
        &mut self,
        id: &str,
        outcome: &CallOutcome,
        now: Micros,
    ) -> Result<()> {
        let status = if outcome.ok() { "delivered" } else { "failed" };
        let sql = "UPDATE channel_deliveries SET status = $2, http_status = $3, response_body = $4, \
            error_text = $5, completed_at = $6 WHERE id = $1";
        let query = q(sql)
            .bind(id.to_string())
            .bind(status)
            .bind(outcome.http_status())
            .bind(outcome.body().map(String::from))
            .bind(outcome.error().map(String::from))
            .bind(now);
        self.exec(query).await?;
        Ok(())
    }

    async fn stale_deliveries(
        &mut self,
        before: Micros,
        now: Micros,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM channel_deliveries WHERE status = 'pending' AND created_at < $1 \
             AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY created_at, id LIMIT $3"
        );
        self.all(q(&sql).bind(before).bind(now).bind(limit), delivery)
            .await
    }
}
