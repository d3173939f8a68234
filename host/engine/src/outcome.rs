//! How an activation of a wasm run ended, and what each ending means for
//! the run: finish it, fail it, park it until woken, retry it later, or
//! leave it alone.

use super::group_commit::Pending;
use super::{Engine, Result};
use crate::clock::Micros;
use crate::store::{NewStep, StoreError};
use serde_json::Value;

/// Back-off before retrying a run whose activation hit a host-side error.
const RETRY_DELAY_MS: i64 = 1_000;

#[derive(Debug)]
pub enum ActivationOutcome {
    Completed(Value),
    /// The workflow failed; `class` becomes the run's `failureClass`.
    Failed {
        error: Value,
        class: &'static str,
    },
    /// Waiting on a gate, a sleep or a child.
    Suspended {
        until: Micros,
        reason: String,
    },
    Cancelled,
    LeaseLost,
    /// A host-side problem (e.g. the database was unreachable): the run is
    /// retried after a back-off, without failing it.
    Retry(String),
}

/// How an activation ended, with the checkpoints of pure steps it left to
/// the transaction that records the ending ([`super::group_commit`]): a
/// run of ten steps then commits once at its end, not twice.
#[derive(Debug)]
pub struct Ended {
    pub outcome: ActivationOutcome,
    pub(crate) unwritten: Vec<NewStep>,
}

impl From<ActivationOutcome> for Ended {
    fn from(outcome: ActivationOutcome) -> Ended {
        Ended {
            outcome,
            unwritten: Vec::new(),
        }
    }
}

impl Engine {
    /// Record how `owner`'s activation of `run_id` ended, with the steps it
    /// left unwritten. A run cancelled or taken over meanwhile has nothing
    /// of ours left to record.
    pub async fn record_outcome(&self, run_id: &str, owner: &str, ended: Ended) -> Result<()> {
        super::telemetry::wasm_activation(&ended.outcome);
        let Ended { outcome, unwritten } = ended;
        let recorded = match self
            .record_ending(run_id, owner, &outcome, &unwritten)
            .await
        {
            // A step of one of those names exists after all: each step takes
            // the full checkpoint path, which says what it keeps, and the
            // ending is recorded on its own.
            Err(super::EngineError::Store(StoreError::UniqueViolation(_))) => {
                let pending = Pending::holding(self, run_id, owner, unwritten);
                match pending.flush().await {
                    Ok(()) => self.record_ending(run_id, owner, &outcome, &[]).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match recorded {
            Err(e) if e.is_cancelled() || e.is_lease_lost() => Ok(()),
            other => other,
        }
    }

    async fn record_ending(
        &self,
        run_id: &str,
        owner: &str,
        outcome: &ActivationOutcome,
        steps: &[NewStep],
    ) -> Result<()> {
        match outcome {
            ActivationOutcome::Completed(value) => self
                .finish_wasm_run(run_id, owner, Ok(value.clone()), steps)
                .await
                .map(|_| ()),
            ActivationOutcome::Failed { error, class } => {
                tracing::info!(run_id, class, error = %error, "wasm run failed");
                let failure = Err((error.clone(), class.to_string()));
                self.finish_wasm_run(run_id, owner, failure, steps)
                    .await
                    .map(|_| ())
            }
            ActivationOutcome::Suspended { until, reason } => {
                tracing::debug!(run_id, reason, "wasm run suspended");
                self.park(run_id, owner, *until, steps).await
            }
            ActivationOutcome::Retry(why) => {
                tracing::warn!(run_id, why, "wasm activation hit a host error; will retry");
                let at = self.now() + RETRY_DELAY_MS * 1000;
                self.park(run_id, owner, at, steps).await
            }
            ActivationOutcome::Cancelled | ActivationOutcome::LeaseLost => Ok(()),
        }
    }
}
