//! Queues: enqueue with dedupe, the claim algorithm (one copy, shared by
//! external workers and the host's wasm worker), queue statistics and
//! configuration.

use super::runs::NewRun;
use super::write::Write;
use super::{Engine, Result};
use crate::clock::{Micros, iso};
use crate::ids;
use crate::model::{QueueConfig, Run, RunStatus};
use crate::store::Claimant;
use serde_json::{Value, json};

/// The claim rate window: one minute, sliding.
const RATE_WINDOW_MICROS: Micros = 60_000_000;

/// `POST /queues/:queue/enqueue`.
#[derive(Clone, Debug)]
pub struct Enqueue {
    pub queue: String,
    pub run: NewRun,
    pub dedupe_key: Option<String>,
    /// Explicit earliest start; wins over `delay_ms`.
    pub run_at: Option<Micros>,
    pub delay_ms: Option<i64>,
    pub max_attempts: Option<i32>,
    pub priority: Option<i32>,
    pub deadline_ms: Option<i64>,
}

impl Enqueue {
    pub fn new(queue: impl Into<String>, run: NewRun) -> Enqueue {
        Enqueue {
            queue: queue.into(),
            run,
            dedupe_key: None,
            run_at: None,
            delay_ms: None,
            max_attempts: None,
            priority: None,
            deadline_ms: None,
        }
    }
}

/// One field of a configuration update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Field omitted: keep the stored value.
    #[default]
    Keep,
    /// Explicit `null`: clear it (our deviation; v0.5 kept it).
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }
}

/// `PUT /queues/:queue/config`.
#[derive(Clone, Debug, Default)]
pub struct QueueConfigPatch {
    pub concurrency: Patch<i64>,
    pub rate_per_minute: Patch<i64>,
    pub invoke_url: Patch<String>,
}

impl Engine {
    /// Build the row of a new queued run (not yet inserted).
    pub(crate) async fn queued_run(
        &self,
        w: &mut Write,
        workflow_name: String,
        queue: &str,
        run_at: Micros,
        now: Micros,
    ) -> Result<Run> {
        let mut run = Run::new(ids::new_id("run"), workflow_name, now);
        run.status = RunStatus::Queued;
        run.queue = Some(queue.to_string());
        run.run_at = Some(run_at);
        self.pin_component(w, &mut run).await?;
        Ok(run)
    }

    /// Enqueue a run. With a dedupe key held by an active run of the queue,
    /// nothing is written and that run is returned with `true`.
    pub async fn enqueue(&self, req: Enqueue) -> Result<(Run, bool)> {
        req.run.check()?;
        let now = self.now();
        let mut w = self.write().await?;
        // The insert does nothing when the key is taken; the holder is then
        // re-read. If it finished in between, the key is free: try again.
        for _ in 0..5 {
            if let Some(key) = &req.dedupe_key
                && let Some(existing) = w.tx.active_run_by_key(&req.queue, key).await?
            {
                return Ok((existing, true));
            }
            let run_at = req
                .run_at
                .unwrap_or(now.saturating_add(req.delay_ms.unwrap_or(0).saturating_mul(1000)));
            let mut run = self
                .queued_run(
                    &mut w,
                    req.run.workflow_name.clone(),
                    &req.queue,
                    run_at,
                    now,
                )
                .await?;
            run.input = if req.run.input.is_null() {
                json!({})
            } else {
                req.run.input.clone()
            };
            run.metadata = req.run.metadata.clone();
            run.recovery_webhook = req.run.recovery_webhook.clone();
            run.dedupe_key = req.dedupe_key.clone();
            run.priority = req.priority.unwrap_or(0);
            run.max_attempts = req.max_attempts.unwrap_or(1);
            run.deadline_at = req
                .deadline_ms
                .map(|ms| now.saturating_add(ms.saturating_mul(1000)));
            if !w.tx.insert_run_unless_active(&run).await? {
                continue;
            }
            self.insert_channels(&mut w, &run.id, &req.run.channels, now)
                .await?;
            let payload = json!({"queue": req.queue, "runAt": iso(run_at)});
            w.event(&run.id, "run.enqueued", payload, now).await?;
            self.commit(w).await?;
            return Ok((run, false));
        }
        Err(anyhow::anyhow!("enqueue kept racing with dedupe key {:?}", req.dedupe_key).into())
    }

    /// Claim up to `limit` ready runs (`semantics.md` §13.4) in one
    /// transaction, under each queue's concurrency cap and claim rate.
    ///
    /// `wasm = false` is `POST /queues/claim`: it never returns runs pinned to
    /// a deployed component. `wasm = true` is the host's wasm worker: only
    /// such runs, and with `queues = None` from every queue that has some.
    pub async fn claim_queued(
        &self,
        queues: Option<&[String]>,
        owner: &str,
        limit: i64,
        wasm: bool,
    ) -> Result<Vec<Run>> {
        let who = if wasm {
            Claimant::Wasm
        } else {
            Claimant::External
        };
        let now = self.now();
        let mut w = self.write().await?;
        let mut names: Vec<String> = Vec::new();
        let listed = match queues {
            Some(q) => q.to_vec(),
            None => w.tx.queues_with_ready_runs(now, who).await?,
        };
        for name in listed {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        // Serialise with other claimers of the same queues (cap arithmetic
        // must not race), taking the locks in one global order so claimers
        // listing queues in different orders cannot deadlock.
        let mut lock_order = names.clone();
        lock_order.sort();
        for name in &lock_order {
            w.tx.lock_key(&format!("queue:{name}")).await?;
        }
        let mut claimed: Vec<Run> = Vec::new();
        // (queue, when the run became due) of each claim, measured once committed.
        let mut waits: Vec<(String, Micros)> = Vec::new();
        for name in &names {
            let capacity = limit - claimed.len() as i64;
            if capacity <= 0 {
                break;
            }
            let capacity = self
                .queue_capacity(&mut w, name, capacity, now, true)
                .await?;
            if capacity <= 0 {
                continue;
            }
            for mut run in
                w.tx.ready_queue_runs(name, now, capacity, who, true)
                    .await?
            {
                let due = run
                    .run_at
                    .map_or(run.created_at, |at| at.max(run.created_at));
                waits.push((name.clone(), due));
                run.status = RunStatus::Running;
                run.lease_owner = Some(owner.to_string());
                run.lease_expires_at = Some(self.lease_expiry(now));
                run.attempt = run.attempt.saturating_add(1);
                run.claimed_at = Some(now);
                run.updated_at = now;
                w.tx.update_run(&run).await?;
                w.event(
                    &run.id,
                    "run.claimed",
                    json!({"leaseOwner": owner, "queue": name}),
                    now,
                )
                .await?;
                claimed.push(run);
            }
        }
        self.commit(w).await?;
        for (queue, due) in waits {
            super::telemetry::claimed(&queue, due, now);
        }
        Ok(claimed)
    }

    /// `wanted` reduced by the queue's concurrency cap and, with `rated`,
    /// its claim rate over the last minute.
    pub(crate) async fn queue_capacity(
        &self,
        w: &mut Write,
        queue: &str,
        wanted: i64,
        now: Micros,
        rated: bool,
    ) -> Result<i64> {
        let Some(config) = w.tx.queue_config(queue).await? else {
            return Ok(wanted);
        };
        let mut capacity = wanted;
        if let Some(cap) = config.concurrency {
            let running = w.tx.running_in_queue(queue).await?;
            capacity = capacity.min((cap - running).max(0));
        }
        if rated && let Some(rate) = config.rate_per_minute {
            let recent = w.tx.claimed_since(queue, now - RATE_WINDOW_MICROS).await?;
            capacity = capacity.min((rate - recent).max(0));
        }
        Ok(capacity)
    }

    /// `GET /queues`: per-status counts of every queue with runs, then an
    /// all-zero entry for each configured queue without runs.
    pub async fn queue_stats(&self) -> Result<Vec<Value>> {
        let mut r = self.read().await?;
        let counts = r.queue_counts().await?;
        let configs = r.queue_configs().await?;
        let config_of = |name: &str| configs.iter().find(|c| c.name == name).map(|c| json!(c));
        let mut out: Vec<Value> = counts
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "queued": c.queued, "running": c.running, "failed": c.failed,
                    "completed": c.completed, "cancelled": c.cancelled, "config": config_of(&c.name),
                })
            })
            .collect();
        for c in configs
            .iter()
            .filter(|c| !counts.iter().any(|n| n.name == c.name))
        {
            out.push(json!({
                "name": c.name, "queued": 0, "running": 0, "failed": 0,
                "completed": 0, "cancelled": 0, "config": c,
            }));
        }
        Ok(out)
    }

    /// Upsert a queue's configuration: omitted fields keep their value, an
    /// explicit null clears it.
    pub async fn configure_queue(
        &self,
        name: &str,
        patch: QueueConfigPatch,
    ) -> Result<QueueConfig> {
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.lock_key(&format!("queue-config:{name}")).await?;
        let current = w.tx.queue_config(name).await?;
        let base = current.clone().unwrap_or_else(|| QueueConfig {
            name: name.to_string(),
            created_at: now,
            ..QueueConfig::default()
        });
        let config = QueueConfig {
            concurrency: patch.concurrency.apply(base.concurrency),
            rate_per_minute: patch.rate_per_minute.apply(base.rate_per_minute),
            invoke_url: patch.invoke_url.apply(base.invoke_url.clone()),
            updated_at: now,
            ..base
        };
        w.tx.put_queue_config(&config).await?;
        self.commit(w).await?;
        Ok(config)
    }
}
