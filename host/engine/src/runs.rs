//! Run lifecycle: create, begin and heartbeat (run lease), complete, fail,
//! cancel, read.

use super::write::Write;
use super::{Conflict, Engine, EngineError, LeaseLost, Result, limits};
use crate::clock::Micros;
use crate::ids;
use crate::model::{Channel, Run, RunStatus};
use crate::store::NewStep;
use serde_json::{Value, json};

#[derive(Clone, Debug, Default)]
pub struct NewChannel {
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct NewRun {
    pub workflow_name: String,
    pub input: Value,
    pub metadata: Value,
    pub recovery_webhook: Option<String>,
    pub channels: Vec<NewChannel>,
}

impl NewRun {
    pub fn named(workflow_name: impl Into<String>, input: Value) -> NewRun {
        NewRun {
            workflow_name: workflow_name.into(),
            input,
            metadata: json!({}),
            recovery_webhook: None,
            channels: vec![],
        }
    }

    /// The limits on a new run, whichever door created it. (URLs are
    /// checked where they are decoded: only HTTP bodies carry them.)
    pub fn check(&self) -> Result<()> {
        Ok(limits::check_name("workflowName", &self.workflow_name)?)
    }
}

/// `channels` as they appear in `run.created` payloads: no secrets.
fn public_channels(channels: &[NewChannel]) -> Value {
    channels
        .iter()
        .map(|c| json!({"type": "webhook", "url": c.url, "events": c.events}))
        .collect()
}

impl Engine {
    /// Insert a run row, its channels and its `run.created` event.
    pub(crate) async fn insert_run(
        &self,
        w: &mut Write,
        new: NewRun,
        extra_created: Value,
        now: Micros,
    ) -> Result<Run> {
        new.check()?;
        let mut run = Run::new(ids::new_id("run"), new.workflow_name, now);
        run.input = if new.input.is_null() {
            json!({})
        } else {
            new.input
        };
        run.metadata = new.metadata;
        run.recovery_webhook = new.recovery_webhook;
        self.pin_component(w, &mut run).await?;
        w.tx.insert_run(&run).await?;
        self.insert_channels(w, &run.id, &new.channels, now).await?;
        let mut payload = json!({
            "workflowName": run.workflow_name,
            "input": run.input,
            "channels": public_channels(&new.channels),
        });
        if let (Value::Object(p), Value::Object(extra)) = (&mut payload, extra_created) {
            p.extend(extra);
        }
        w.event(&run.id, "run.created", payload, now).await?;
        Ok(run)
    }

    /// Store a run's channel subscriptions.
    pub(crate) async fn insert_channels(
        &self,
        w: &mut Write,
        run_id: &str,
        channels: &[NewChannel],
        now: Micros,
    ) -> Result<()> {
        for c in channels {
            let channel = Channel {
                id: ids::new_id("chan"),
                run_id: Some(run_id.to_string()),
                kind: "webhook".into(),
                config: json!({"url": c.url, "secret": c.secret}),
                events: json!(c.events),
                created_at: now,
            };
            w.tx.insert_channel(&channel).await?;
        }
        Ok(())
    }

    pub async fn create_run(&self, new: NewRun) -> Result<Run> {
        let now = self.now();
        let mut w = self.write().await?;
        let run = self.insert_run(&mut w, new, json!({}), now).await?;
        self.commit(w).await?;
        Ok(run)
    }

    pub async fn get_run(&self, id: &str) -> Result<Run> {
        self.read()
            .await?
            .run(id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)
    }

    /// Everything about one run, as `GET /runs/:id` returns it.
    pub async fn run_detail(&self, id: &str) -> Result<Value> {
        let mut r = self.read().await?;
        let run = r
            .run(id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        let edges = r.edges(id).await?;
        let mut children = Vec::with_capacity(edges.len());
        for e in &edges {
            if let Some(child) = r.run(&e.child_run_id, false).await? {
                children.push(child);
            }
        }
        Ok(json!({
            "run": run,
            "steps": r.steps(id).await?,
            "state": r.live_state(id, false).await?,
            "stateStreams": r.streams(id).await?,
            "stateVersions": r.versions(id, None, false).await?,
            "runEdges": edges,
            "childRuns": children,
            "recoveryAttempts": r.recovery_attempts(id).await?,
            "channels": r.channels(id).await?,
            "channelDeliveries": r.deliveries(id).await?,
            "gates": r.gates(id).await?,
            "usage": r.usage(id).await?,
            "events": r.events_after(id, 0, i64::MAX).await?,
        }))
    }

    /// Take the run lease (`POST /runs/:id/begin`). A completed run is
    /// returned unchanged with no lease; `owner` is echoed either way.
    pub async fn begin_run(&self, id: &str, owner: Option<String>) -> Result<(Run, String)> {
        let owner = owner.unwrap_or_else(ids::lease_owner);
        let now = self.now();
        let mut w = self.write().await?;
        let mut run =
            w.tx.run(id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        match run.status {
            RunStatus::Completed => return Ok((run, owner)),
            RunStatus::Cancelled => return Err(EngineError::RunCancelled(Some(Box::new(run)))),
            _ => {}
        }
        if let Some(holder) = run.live_lease_owner(now).filter(|h| *h != owner) {
            return Err(EngineError::Conflict(Conflict::RunLeased {
                owner: holder.to_string(),
            }));
        }
        run.status = RunStatus::Running;
        run.lease_owner = Some(owner.clone());
        run.lease_expires_at = Some(self.lease_expiry(now));
        run.attempt = run.attempt.saturating_add(1);
        run.updated_at = now;
        w.tx.update_run(&run).await?;
        w.event(id, "run.started", json!({"leaseOwner": owner}), now)
            .await?;
        self.commit(w).await?;
        Ok((run, owner))
    }

    /// Extend the run lease `owner` holds (`POST /runs/:id/heartbeat`, and
    /// the worker during long wasm activations; `sessions.md` §1). Fenced
    /// by owner and status only: a lapsed lease nobody took over is revived.
    /// No event, no attempt, nothing else changes.
    pub async fn heartbeat(&self, id: &str, owner: &str) -> Result<Run> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut run =
            w.tx.run(id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status != RunStatus::Running || run.lease_owner.as_deref() != Some(owner) {
            return Err(EngineError::LeaseLost(LeaseLost::Heartbeat(Box::new(run))));
        }
        run.lease_expires_at = Some(self.lease_expiry(now));
        run.updated_at = now;
        w.tx.update_run(&run).await?;
        self.commit(w).await?;
        Ok(run)
    }

    /// Finish a run successfully. Completed and cancelled runs are final:
    /// a repeat complete answers with the run unchanged.
    pub async fn complete_run(&self, id: &str, result: Value) -> Result<Run> {
        let now = self.now();
        let mut w = self.write().await?;
        let run =
            w.tx.run(id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status.is_final() {
            return Ok(run);
        }
        let run = self.apply_complete(&mut w, run, result, now).await?;
        self.commit(w).await?;
        Ok(run)
    }

    async fn apply_complete(
        &self,
        w: &mut Write,
        mut run: Run,
        result: Value,
        now: Micros,
    ) -> Result<Run> {
        run.status = RunStatus::Completed;
        run.result = Some(result.clone());
        run.error = None;
        run.clear_lease();
        run.completed_at = Some(now);
        run.updated_at = now;
        w.update_run_with_event(&run, "run.completed", json!({"result": result}), now)
            .await?;
        self.wake_parent(w, &run, now).await?;
        Ok(run)
    }

    /// Fail a run, or put a queue run with attempts left back on its queue.
    /// Returns the run and whether it was requeued, after the deliveries and
    /// the recovery webhook call the failure triggers were made.
    pub async fn fail_run(
        &self,
        id: &str,
        error: Value,
        failure_class: Option<String>,
    ) -> Result<(Run, bool)> {
        let (engine, id) = (self.clone(), id.to_string());
        let failing = async move { engine.fail_detached(&id, error, failure_class).await };
        super::outbound::detached(failing)
            .await
            .ok_or_else(|| anyhow::anyhow!("shutting down: fail abandoned"))?
    }

    async fn fail_detached(
        &self,
        id: &str,
        error: Value,
        failure_class: Option<String>,
    ) -> Result<(Run, bool)> {
        let now = self.now();
        let mut w = self.write().await?;
        let run =
            w.tx.run(id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        match run.status {
            RunStatus::Cancelled => return Ok((run, false)),
            RunStatus::Completed => {
                return Err(EngineError::Conflict(Conflict::RunCompleted(Box::new(run))));
            }
            _ => {}
        }
        let outcome = self
            .apply_fail(
                &mut w,
                run,
                FailCause::Reported {
                    error,
                    failure_class,
                },
                now,
            )
            .await?;
        self.commit(w).await?;
        if !outcome.1 {
            self.after_run_failed(&outcome.0).await;
        }
        Ok(outcome)
    }

    /// The one run-fail rule: a queue run with attempts left is requeued
    /// after its backoff, anything else fails (`max_retries` once a queue run
    /// used up several attempts) and wakes its parent. The cause only shapes
    /// the stored error and the event payloads.
    pub(crate) async fn apply_fail(
        &self,
        w: &mut Write,
        mut run: Run,
        cause: FailCause,
        now: Micros,
    ) -> Result<(Run, bool)> {
        let id = run.id.clone();
        if let FailCause::Reported { error, .. } = &cause {
            run.error = Some(error.clone());
        }
        run.clear_lease();
        run.updated_at = now;
        let requeued = run.queue.is_some() && run.attempt < run.max_attempts;
        if requeued {
            let next = now.saturating_add(backoff_ms(run.attempt) * 1000);
            run.status = RunStatus::Queued;
            run.run_at = Some(next);
            w.tx.update_run(&run).await?;
            let payload = match &cause {
                FailCause::Reported { error, .. } => json!({
                    "error": error,
                    "attempt": run.attempt,
                    "maxAttempts": run.max_attempts,
                    "nextRunAt": crate::clock::iso(next),
                }),
                FailCause::LeaseExpired => json!({
                    "reason": "lease_expired",
                    "attempt": run.attempt,
                    "maxAttempts": run.max_attempts,
                }),
            };
            w.event(&id, "run.requeued", payload, now).await?;
        } else {
            run.status = RunStatus::Failed;
            let payload = match cause {
                FailCause::Reported {
                    error,
                    failure_class,
                } => {
                    run.failure_class = if run.queue.is_some() && run.max_attempts > 1 {
                        Some("max_retries".into())
                    } else {
                        failure_class
                    };
                    json!({"error": error, "failureClass": run.failure_class})
                }
                FailCause::LeaseExpired => {
                    // Only queue runs expire into a failure, and they have
                    // used every attempt: that is a `max_retries` failure.
                    run.failure_class = Some("max_retries".into());
                    run.error =
                        Some(json!({"message": "lease expired with no attempts remaining"}));
                    json!({"failureClass": "max_retries", "reason": "lease_expired"})
                }
            };
            w.update_run_with_event(&run, "run.failed", payload, now)
                .await?;
            self.wake_parent(w, &run, now).await?;
        }
        Ok((run, requeued))
    }

    /// End a wasm run's activation with its result, fenced by the run lease
    /// so a zombie instance cannot finish a run another worker owns; the
    /// activation's unwritten `steps` go first, in the same transaction.
    pub async fn finish_wasm_run(
        &self,
        id: &str,
        owner: &str,
        result: std::result::Result<Value, (Value, String)>,
        steps: &[NewStep],
    ) -> Result<(Run, bool)> {
        let now = self.now();
        let mut w = self.write().await?;
        let run = self.fence_run(&mut w, id, owner).await?;
        self.write_new_steps(&mut w, steps).await?;
        let failed = result.is_err();
        let outcome = match result {
            Ok(value) => (self.apply_complete(&mut w, run, value, now).await?, false),
            Err((error, class)) => {
                // A workflow that fails from a step whose egress call was
                // refused fails with that refusal's class.
                let class = match class.as_str() {
                    "workflow_error" => {
                        let steps = w.tx.steps(id).await?;
                        super::egress::refusal_class(&steps, &error).unwrap_or(class)
                    }
                    _ => class,
                };
                let cause = FailCause::Reported {
                    error,
                    failure_class: Some(class),
                };
                self.apply_fail(&mut w, run, cause, now).await?
            }
        };
        self.commit(w).await?;
        super::group_commit::count_completed(steps);
        if failed && !outcome.1 {
            self.after_run_failed(&outcome.0).await;
        }
        Ok(outcome)
    }

    /// Cancel a run: one-way and idempotent; completed runs refuse.
    pub async fn cancel_run(
        &self,
        id: &str,
        reason: Option<String>,
        actor: Option<String>,
    ) -> Result<Run> {
        let now = self.now();
        let mut w = self.write().await?;
        let mut run =
            w.tx.run(id, true)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        match run.status {
            RunStatus::Cancelled => return Ok(run),
            RunStatus::Completed => {
                return Err(EngineError::Conflict(Conflict::RunCompleted(Box::new(run))));
            }
            _ => {}
        }
        self.mark_cancelled(&mut w, &mut run, reason.clone(), actor.clone(), now);
        w.tx.update_run(&run).await?;
        w.event(
            id,
            "run.cancelled",
            json!({"reason": reason, "actor": actor}),
            now,
        )
        .await?;
        self.wake_parent(&mut w, &run, now).await?;
        self.commit(w).await?;
        Ok(run)
    }

    /// Set a run's cancellation fields; the cancellation is announced to
    /// live activations once `w` commits.
    pub(crate) fn mark_cancelled(
        &self,
        w: &mut Write,
        run: &mut Run,
        reason: Option<String>,
        actor: Option<String>,
        now: Micros,
    ) {
        run.status = RunStatus::Cancelled;
        run.cancel_requested_at = Some(run.cancel_requested_at.unwrap_or(now));
        run.cancelled_at = Some(now);
        run.cancel_reason = reason;
        run.cancel_actor = actor;
        run.clear_lease();
        run.completed_at = Some(now);
        run.updated_at = now;
        w.cancelled.push(run.id.clone());
    }
}

/// Why a run fails (or is requeued for another attempt).
pub(crate) enum FailCause {
    /// The run's code reported an error (HTTP fail, wasm trap or error).
    Reported {
        error: Value,
        failure_class: Option<String>,
    },
    /// The reconciler found a queue run's lease expired.
    LeaseExpired,
}

/// Queue retry delay after attempt `a`: min(300 s, 5 s × 2^max(0, a−1)).
pub fn backoff_ms(attempt: i32) -> i64 {
    let exp = attempt.saturating_sub(1).clamp(0, 16) as u32;
    (5_000i64 << exp).min(300_000)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_follows_the_protocol_table() {
        let table = [
            (0, 5_000),
            (1, 5_000),
            (2, 10_000),
            (3, 20_000),
            (6, 160_000),
            (7, 300_000),
            (40, 300_000),
            (i32::MIN, 5_000),
            (i32::MAX, 300_000),
        ];
        for (attempt, ms) in table {
            assert_eq!(backoff_ms(attempt), ms, "attempt {attempt}");
        }
    }
}
