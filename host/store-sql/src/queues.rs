//! SQL behind queues, schedules, the reconciler and outbound webhooks:
//! claim selection, queue configuration, schedules, sweeps, recovery
//! attempts and channel deliveries.

use super::rows::{
    DELIVERIES, DELIVERY_RECORDS, QUEUE_CONFIGS, RECOVERY_ATTEMPTS, RUNS, SCHEDULES,
};
use super::sql::{Query, SqlTx, q};
use super::{
    Claimant, DeliveryRows, QueueConfigRows, QueueRows, RecoveryRows, Result, ScheduleRows,
    SweepRows, rules,
};
use crate::clock::Micros;
use crate::model::{
    CallOutcome, Delivery, DeliveryRecord, QueueConfig, QueueCounts, RecoveryAttempt, Run, Schedule,
};
use async_trait::async_trait;
use sqlx::Row;

/// The runs `who` may claim.
fn claimable_by(who: Claimant) -> &'static str {
    match who {
        Claimant::External => "component_digest IS NULL",
        Claimant::Wasm => "component_digest IS NOT NULL",
    }
}

impl SqlTx {
    /// A count (0 when the query returns no row).
    async fn count(&mut self, query: Query<'_>) -> Result<i64> {
        Ok(self.one(query, |row| row.try_get(0)).await?.unwrap_or(0))
    }
}

#[async_trait]
impl QueueRows for SqlTx {
    async fn insert_run_unless_active(&mut self, r: &Run) -> Result<bool> {
        // Without a conflict target, DO NOTHING covers the partial unique
        // index on active (queue, dedupe key) pairs on both backends, and
        // (unlike a caught violation) leaves a Postgres transaction usable.
        let sql = format!("{} ON CONFLICT DO NOTHING", RUNS.insert());
        Ok(self.exec((RUNS.bind)(q(&sql), r)).await? == 1)
    }

    async fn active_run_by_key(&mut self, queue: &str, key: &str) -> Result<Option<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE queue_name = $1 AND dedupe_key = $2 AND {}",
            RUNS.select(),
            rules::holds_dedupe_key()
        );
        let query = q(&sql).bind(queue.to_string()).bind(key.to_string());
        self.one(query, RUNS.decode).await
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
            RUNS.select(),
            claimable_by(who),
            self.dialect.lock_skipping(lock)
        );
        let query = q(&sql).bind(queue.to_string()).bind(now).bind(limit);
        self.all(query, RUNS.decode).await
    }

    async fn queues_with_ready_runs(&mut self, now: Micros, who: Claimant) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT queue_name FROM runs WHERE queue_name IS NOT NULL AND status = 'queued' \
             AND run_at <= $1 AND {} ORDER BY queue_name",
            claimable_by(who)
        );
        self.all(q(&sql).bind(now), |row| row.try_get(0)).await
    }

    async fn running_in_queue(&mut self, queue: &str) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM runs WHERE queue_name = $1 AND status = 'running'";
        self.count(q(sql).bind(queue.to_string())).await
    }

    async fn claimed_since(&mut self, queue: &str, since: Micros) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM runs WHERE queue_name = $1 AND claimed_at > $2";
        self.count(q(sql).bind(queue.to_string()).bind(since)).await
    }

    async fn queue_counts(&mut self) -> Result<Vec<QueueCounts>> {
        let sql = "SELECT queue_name, status, COUNT(*) FROM runs WHERE queue_name IS NOT NULL \
            GROUP BY queue_name, status ORDER BY queue_name";
        let rows: Vec<(String, String, i64)> = self
            .all(q(sql), |row| {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .await?;
        let mut out: Vec<QueueCounts> = Vec::new();
        for (queue, status, n) in rows {
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

    async fn push_run_at(&mut self, run_id: &str, expected: Micros, to: Micros) -> Result<bool> {
        let sql = "UPDATE runs SET run_at = $3 WHERE id = $1 AND status = 'queued' AND run_at = $2";
        let query = q(sql).bind(run_id.to_string()).bind(expected).bind(to);
        Ok(self.exec(query).await? == 1)
    }
}

#[async_trait]
impl QueueConfigRows for SqlTx {
    async fn queue_config(&mut self, name: &str) -> Result<Option<QueueConfig>> {
        let sql = format!(
            "SELECT {} FROM queue_configs WHERE name = $1",
            QUEUE_CONFIGS.select()
        );
        self.one(q(&sql).bind(name.to_string()), QUEUE_CONFIGS.decode)
            .await
    }

    async fn queue_configs(&mut self) -> Result<Vec<QueueConfig>> {
        let sql = format!(
            "SELECT {} FROM queue_configs ORDER BY name",
            QUEUE_CONFIGS.select()
        );
        self.all(q(&sql), QUEUE_CONFIGS.decode).await
    }

    async fn put_queue_config(&mut self, c: &QueueConfig) -> Result<()> {
        self.upsert(&QUEUE_CONFIGS, "name", c).await
    }
}

#[async_trait]
impl ScheduleRows for SqlTx {
    async fn schedule(&mut self, name: &str, lock: bool) -> Result<Option<Schedule>> {
        let sql = format!(
            "SELECT {} FROM schedules WHERE name = $1{}",
            SCHEDULES.select(),
            self.dialect.lock(lock)
        );
        self.one(q(&sql).bind(name.to_string()), SCHEDULES.decode)
            .await
    }

    async fn schedules(&mut self) -> Result<Vec<Schedule>> {
        let sql = format!("SELECT {} FROM schedules ORDER BY name", SCHEDULES.select());
        self.all(q(&sql), SCHEDULES.decode).await
    }

    async fn put_schedule(&mut self, s: &Schedule) -> Result<()> {
        self.upsert(&SCHEDULES, "name", s).await
    }

    async fn delete_schedule(&mut self, name: &str) -> Result<bool> {
        let query = q("DELETE FROM schedules WHERE name = $1").bind(name.to_string());
        Ok(self.exec(query).await? > 0)
    }

    async fn due_schedules(&mut self, now: Micros) -> Result<Vec<Schedule>> {
        let sql = format!(
            "SELECT {} FROM schedules WHERE enabled AND next_run_at IS NOT NULL \
             AND next_run_at <= $1 ORDER BY next_run_at, name",
            SCHEDULES.select()
        );
        self.all(q(&sql).bind(now), SCHEDULES.decode).await
    }
}

#[async_trait]
impl SweepRows for SqlTx {
    async fn expired_leases(
        &mut self,
        now: Micros,
        nudged_since: Micros,
        limit: i64,
    ) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE status = 'running' AND {} \
             AND component_digest IS NULL AND (queue_name IS NOT NULL OR (recovery_webhook IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM recovery_attempts a WHERE a.run_id = runs.id AND a.created_at > $2))) \
             ORDER BY lease_expires_at LIMIT $3",
            RUNS.select(),
            rules::lease_expired("$1")
        );
        let query = q(&sql).bind(now).bind(nudged_since).bind(limit);
        self.all(query, RUNS.decode).await
    }

    async fn overdue_runs(&mut self, now: Micros, limit: i64) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {} FROM runs WHERE deadline_at IS NOT NULL AND deadline_at < $1 \
             AND status IN ('pending', 'queued', 'running') ORDER BY deadline_at LIMIT $2",
            RUNS.select()
        );
        self.all(q(&sql).bind(now).bind(limit), RUNS.decode).await
    }
}

#[async_trait]
impl RecoveryRows for SqlTx {
    async fn insert_recovery_attempt(&mut self, a: &RecoveryAttempt) -> Result<()> {
        self.insert(&RECOVERY_ATTEMPTS, a).await
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
        self.value(q(sql).bind(run_id.to_string())).await
    }

    async fn recovery_attempts(&mut self, run_id: &str) -> Result<Vec<RecoveryAttempt>> {
        let sql = format!(
            "SELECT {} FROM recovery_attempts WHERE run_id = $1 ORDER BY created_at DESC, id",
            RECOVERY_ATTEMPTS.select()
        );
        let query = q(&sql).bind(run_id.to_string());
        self.all(query, RECOVERY_ATTEMPTS.decode).await
    }
}

#[async_trait]
impl DeliveryRows for SqlTx {
    async fn insert_delivery(&mut self, d: &Delivery) -> Result<()> {
        let sql = format!(
            "INSERT INTO channel_deliveries ({}, status) VALUES ({}, 'pending')",
            DELIVERIES.names(),
            DELIVERIES.params()
        );
        self.exec((DELIVERIES.bind)(q(&sql), d)).await?;
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
             AND (claimed_until IS NULL OR claimed_until < $2) RETURNING {}",
            DELIVERIES.select()
        );
        let query = q(&sql).bind(id.to_string()).bind(now).bind(until);
        self.one(query, DELIVERIES.decode).await
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
            "SELECT {} FROM channel_deliveries WHERE status = 'pending' AND created_at < $1 \
             AND (claimed_until IS NULL OR claimed_until < $2) ORDER BY created_at, id LIMIT $3",
            DELIVERIES.select()
        );
        let query = q(&sql).bind(before).bind(now).bind(limit);
        self.all(query, DELIVERIES.decode).await
    }

    async fn deliveries(&mut self, run_id: &str) -> Result<Vec<DeliveryRecord>> {
        let sql = format!(
            "SELECT {} FROM channel_deliveries WHERE run_id = $1 \
             ORDER BY created_at DESC, id LIMIT 100",
            DELIVERY_RECORDS.select()
        );
        let query = q(&sql).bind(run_id.to_string());
        self.all(query, DELIVERY_RECORDS.decode).await
    }
}
