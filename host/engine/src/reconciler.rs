//! The reconciler (`semantics.md` §17): a background loop in `serve` whose
//! ticks requeue or fail queue runs with expired leases, nudge stalled runs
//! through their recovery webhook, cancel runs past their deadline, fire due
//! schedules, dispatch push queues and expire grants, in that order; then
//! it forgets the broker's spent challenges and old rate windows
//! (broker.md §10.2).
//!
//! One replica ticks at a time: the store's exclusion under the key v0.5
//! uses (a session advisory lock on Postgres). Every sweep is also safe
//! on its own under concurrent ticks (row locks and conditional updates), so
//! the exclusion saves work rather than providing correctness.
//!
//! The webhook calls a tick decides on (lease-expiry nudges, push dispatch,
//! stale channel deliveries) are recorded during the sweeps and sent once the
//! exclusion is released, up to 64 at once: a tick returns after their
//! outcomes are recorded, which takes a few webhook timeouts at most.

use super::recovery::RecoveryCall;
use super::runs::FailCause;
use super::{Engine, Result};
use crate::clock::Micros;
use crate::model::{Run, RunStatus, lease_expired};
use crate::store::Claimant;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Calls of one reconciler tick in flight at once. Calls made for an API
/// caller are not throttled here: incoming connections bound them, and a
/// shared limit could starve a receiver's own API calls (a recovery handler
/// resuming the run) of the slots its caller holds.
const TICK_IN_FLIGHT: usize = 64;
/// Exclusion key held during a tick (`0x74646202`, as v0.5).
pub const RECONCILER_LOCK_KEY: i64 = 1_952_735_746;
/// Expired-lease and deadline sweeps handle at most this many runs a tick.
const SWEEP_BATCH: i64 = 100;
/// A stalled run gets at most one lease-expiry nudge per minute.
const NUDGE_THROTTLE_MICROS: Micros = 60_000_000;
/// Push dispatch: runs per queue per tick, and the redelivery horizon.
const PUSH_BATCH: i64 = 10;
const PUSH_HORIZON_MICROS: Micros = 60_000_000;

/// What one tick did (counts, for diagnostics and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    /// Another tick held the reconciler lock: nothing was done.
    pub skipped: bool,
    pub requeued: usize,
    pub failed: usize,
    pub recovered: usize,
    pub cancelled_by_deadline: usize,
    pub scheduled: usize,
    pub invoked: usize,
    /// Pending channel deliveries nobody had sent, sent now.
    pub redelivered: usize,
    /// Grants past their expiry, expired now.
    pub grants_expired: usize,
}

/// Outbound calls decided while a caller held something it must release
/// first (the reconciler's tick lock): sent by [`Engine::send_outbox`].
#[derive(Default)]
pub(crate) struct Outbox {
    pub recoveries: Vec<RecoveryCall>,
    /// Delivery ids, at most one per run (so they may go out concurrently).
    pub deliveries: Vec<String>,
}

impl Engine {
    /// One reconciler tick, unless another one (in any replica) is running,
    /// in which case the report says `skipped`.
    pub async fn reconcile_once(&self) -> Result<TickReport> {
        let mut outbox = Outbox::default();
        let Some(exclusion) = self.store.try_exclusive(RECONCILER_LOCK_KEY).await? else {
            return Ok(TickReport {
                skipped: true,
                ..TickReport::default()
            });
        };
        let report = self.sweeps(&mut outbox).await;
        if let Err(e) = exclusion.release().await {
            // The store closes a connection that cannot unlock, which ends
            // the lock.
            tracing::warn!(error = format!("{e:#}"), "reconciler lock not released");
        }
        // Sent even when a later sweep failed: their attempts are recorded.
        self.send_outbox(outbox).await;
        report
    }

    /// The sweeps of one tick without the cross-replica exclusion, with the
    /// tick's start as "now", then the calls they decided on. Safe to run
    /// concurrently with itself.
    pub async fn reconcile_sweeps(&self) -> Result<TickReport> {
        let mut outbox = Outbox::default();
        let report = self.sweeps(&mut outbox).await;
        self.send_outbox(outbox).await;
        report
    }

    async fn sweeps(&self, outbox: &mut Outbox) -> Result<TickReport> {
        let now = self.now();
        let mut report = TickReport::default();
        self.sweep_expired_leases(now, &mut report, outbox).await?;
        self.sweep_deadlines(now, &mut report).await?;
        report.scheduled = self.fire_due_schedules(now).await?;
        self.sweep_push_queues(now, &mut report, outbox).await?;
        outbox.deliveries = self.stale_deliveries(now).await?;
        report.redelivered = outbox.deliveries.len();
        report.grants_expired = self.expire_grants(now).await?;
        self.sweep_abuse_stores(now).await?;
        Ok(report)
    }

    /// Tick every `every` (the first tick one interval after start) until
    /// the task is aborted. Errors are logged; the loop goes on.
    pub fn spawn_reconciler(&self, every: Duration) -> JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match engine.reconcile_once().await {
                    Ok(r) if r != TickReport::default() && !r.skipped => {
                        tracing::info!(report = ?r, "reconciler tick")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "reconciler tick failed"),
                }
            }
        })
    }

    async fn sweep_expired_leases(
        &self,
        now: Micros,
        report: &mut TickReport,
        outbox: &mut Outbox,
    ) -> Result<()> {
        let expired = self
            .read()
            .await?
            .expired_leases(now, now - NUDGE_THROTTLE_MICROS, SWEEP_BATCH)
            .await?;
        for seen in expired {
            let mut w = self.write().await?;
            let Some(run) = w.tx.run(&seen.id, true).await? else {
                continue;
            };
            let still_expired = run.status == RunStatus::Running
                && run.lease_expires_at.is_some_and(|t| lease_expired(t, now));
            if !still_expired {
                continue;
            }
            if run.queue.is_some() {
                w.quiet = true; // no channel delivery, no recovery webhook
                let (_, requeued) = self
                    .apply_fail(&mut w, run, FailCause::LeaseExpired, now)
                    .await?;
                if requeued {
                    report.requeued += 1;
                } else {
                    report.failed += 1;
                }
                self.commit(w).await?;
            } else if let Some(url) = run.recovery_webhook.clone() {
                // The run row lock orders concurrent ticks, so the throttle
                // check and the attempt insert are one atomic step.
                let recent = w.tx.latest_recovery_attempt_at(&run.id).await?;
                if recent.is_some_and(|t| t > now - NUDGE_THROTTLE_MICROS) {
                    continue;
                }
                let call = self
                    .start_recovery(&mut w, &run, "run.resume", &url, "lease_expired", now)
                    .await?;
                self.commit(w).await?;
                outbox.recoveries.push(call);
                report.recovered += 1;
            }
        }
        Ok(())
    }

    async fn sweep_deadlines(&self, now: Micros, report: &mut TickReport) -> Result<()> {
        let overdue = self.read().await?.overdue_runs(now, SWEEP_BATCH).await?;
        for seen in overdue {
            let mut w = self.write().await?;
            let Some(mut run) = w.tx.run(&seen.id, true).await? else {
                continue;
            };
            let live = matches!(
                run.status,
                RunStatus::Pending | RunStatus::Queued | RunStatus::Running
            );
            if !live || run.deadline_at.is_none_or(|d| d >= now) {
                continue;
            }
            // Our deviation: cancelActor records "reconciler", as the event says.
            self.mark_cancelled(
                &mut w,
                &mut run,
                Some("deadline".into()),
                Some("reconciler".into()),
                now,
            );
            w.tx.update_run(&run).await?;
            w.quiet = true; // deadline cancellations reach no channel
            w.event(
                &run.id,
                "run.cancelled",
                json!({"reason": "deadline", "actor": "reconciler"}),
                now,
            )
            .await?;
            self.wake_parent(&mut w, &run, now).await?;
            self.commit(w).await?;
            report.cancelled_by_deadline += 1;
        }
        Ok(())
    }

    /// Push mode (`semantics.md` §13.6): signed `run.invoke` calls for ready
    /// runs of queues with an `invokeUrl`, each run at most once per horizon.
    async fn sweep_push_queues(
        &self,
        now: Micros,
        report: &mut TickReport,
        outbox: &mut Outbox,
    ) -> Result<()> {
        let configs = self.read().await?.queue_configs().await?;
        for config in configs {
            let Some(url) = config.invoke_url.clone() else {
                continue;
            };
            let ready: Vec<Run> = {
                let mut w = self.write().await?;
                let capacity = self
                    .queue_capacity(&mut w, &config.name, PUSH_BATCH, now, false)
                    .await?;
                if capacity <= 0 {
                    continue;
                }
                w.tx.ready_queue_runs(&config.name, now, capacity, Claimant::External, false)
                    .await?
            };
            for mut run in ready {
                let Some(run_at) = run.run_at else { continue };
                let mut w = self.write().await?;
                // Moving runAt past the horizon is the claim: of concurrent
                // ticks only the one whose update matched dispatches.
                let horizon = now + PUSH_HORIZON_MICROS;
                if !w.tx.push_run_at(&run.id, run_at, horizon).await? {
                    continue;
                }
                run.run_at = Some(horizon);
                let call = self
                    .start_recovery(&mut w, &run, "run.invoke", &url, "queue_dispatch", now)
                    .await?;
                self.commit(w).await?;
                outbox.recoveries.push(call);
                report.invoked += 1;
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Send an outbox's calls concurrently (each bounded by the timeout)
    /// and record their outcomes.
    pub(crate) async fn send_outbox(&self, outbox: Outbox) {
        let mut calls: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        for call in outbox.recoveries {
            let engine = self.clone();
            calls.push(Box::pin(async move { engine.send_recovery(call).await }));
        }
        for id in outbox.deliveries {
            let engine = self.clone();
            calls.push(Box::pin(async move { engine.deliver_one(&id).await }));
        }
        futures::stream::iter(calls)
            .buffer_unordered(TICK_IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
    }
}
