//! Cron schedules: definition (`PUT/GET/DELETE /schedules`) and firing,
//! which the reconciler drives (`semantics.md` §14).

use super::cron;
use super::{Engine, EngineError, Entity, Result};
use crate::clock::{Micros, iso};
use crate::model::Schedule;
use serde_json::{Value, json};

/// `PUT /schedules/:name`: the whole definition; omitted fields get defaults.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    pub cron: String,
    pub workflow_name: String,
    pub input: Value,
    pub queue: Option<String>,
    pub max_attempts: Option<i32>,
    pub enabled: Option<bool>,
}

impl Engine {
    /// Create or replace a schedule. An invalid cron, or one that never
    /// fires within five years, is a 400 naming the problem.
    pub async fn put_schedule(&self, name: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let now = self.now();
        let next = cron::next_fire(&spec.cron, now).map_err(|e| {
            EngineError::BadRequest(format!("invalid cron expression {:?}: {e}", spec.cron))
        })?;
        let mut w = self.write().await?;
        w.tx.lock_key(&format!("schedule:{name}")).await?;
        let existing = w.tx.schedule(name, true).await?;
        let schedule = Schedule {
            name: name.to_string(),
            cron: spec.cron,
            workflow_name: spec.workflow_name,
            input: if spec.input.is_null() {
                json!({})
            } else {
                spec.input
            },
            queue: spec.queue.unwrap_or_else(|| "default".into()),
            max_attempts: spec.max_attempts.unwrap_or(1),
            enabled: spec.enabled.unwrap_or(true),
            next_run_at: Some(next),
            last_enqueued_at: existing.as_ref().and_then(|s| s.last_enqueued_at),
            created_at: existing.as_ref().map_or(now, |s| s.created_at),
            updated_at: now,
        };
        w.tx.put_schedule(&schedule).await?;
        self.commit(w).await?;
        Ok(schedule)
    }

    pub async fn get_schedule(&self, name: &str) -> Result<Schedule> {
        self.read()
            .await?
            .schedule(name, false)
            .await?
            .ok_or(EngineError::NotFound(Entity::Schedule))
    }

    pub async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        Ok(self.read().await?.schedules().await?)
    }

    pub async fn delete_schedule(&self, name: &str) -> Result<()> {
        let mut w = self.write().await?;
        if !w.tx.delete_schedule(name).await? {
            return Err(EngineError::NotFound(Entity::Schedule));
        }
        self.commit(w).await
    }

    /// Fire every due schedule once (`semantics.md` §14.3); returns how many
    /// runs were enqueued. Safe under concurrent ticks: each schedule row is
    /// locked and re-checked, and the fire-time dedupe key makes a second
    /// insert for the same fire impossible anyway.
    pub(crate) async fn fire_due_schedules(&self, now: Micros) -> Result<usize> {
        let due = self.read().await?.due_schedules(now).await?;
        let mut enqueued = 0;
        for seen in due {
            let mut w = self.write().await?;
            let Some(mut s) = w.tx.schedule(&seen.name, true).await? else {
                continue;
            };
            let Some(fire_at) = s.next_run_at else {
                continue;
            };
            if !s.enabled || fire_at > now || s.next_run_at != seen.next_run_at {
                continue; // changed or fired by someone else meanwhile
            }
            let fire_time = iso(fire_at);
            let mut run = self
                .queued_run(&mut w, s.workflow_name.clone(), &s.queue, now, now)
                .await?;
            run.input = s.input.clone();
            run.max_attempts = s.max_attempts;
            run.dedupe_key = Some(format!("sched:{}:{fire_time}", s.name));
            run.metadata = json!({"schedule": s.name, "fireTime": fire_time});
            // No event: schedule runs start their log with what happens next.
            if w.tx.insert_run_unless_active(&run).await? {
                enqueued += 1;
            }
            s.last_enqueued_at = Some(now);
            s.next_run_at = match cron::next_fire(&s.cron, now) {
                Ok(next) => Some(next),
                Err(e) => {
                    // Only a row written by another server can get here.
                    tracing::warn!(schedule = %s.name, cron = %s.cron, error = %e, "schedule stops firing");
                    None
                }
            };
            s.updated_at = now;
            w.tx.put_schedule(&s).await?;
            self.commit(w).await?;
        }
        Ok(enqueued)
    }
}
