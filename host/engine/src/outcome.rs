//! How an activation of a wasm run ended, and what each ending means for
//! the run: finish it, fail it, park it until woken, retry it later, or
//! leave it alone.

use super::{Engine, Result};
use crate::clock::Micros;
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

impl Engine {
    /// Record how `owner`'s activation of `run_id` ended. A run cancelled or
    /// taken over meanwhile has nothing of ours left to record.
    pub async fn record_outcome(
        &self,
        run_id: &str,
        owner: &str,
        outcome: ActivationOutcome,
    ) -> Result<()> {
        super::telemetry::wasm_activation(&outcome);
        let recorded = match outcome {
            ActivationOutcome::Completed(value) => self
                .finish_wasm_run(run_id, owner, Ok(value))
                .await
                .map(|_| ()),
            ActivationOutcome::Failed { error, class } => {
                tracing::info!(run_id, class, error = %error, "wasm run failed");
                self.finish_wasm_run(run_id, owner, Err((error, class.to_string())))
                    .await
                    .map(|_| ())
            }
            ActivationOutcome::Suspended { until, reason } => {
                tracing::debug!(run_id, reason, "wasm run suspended");
                self.park(run_id, owner, until).await
            }
            ActivationOutcome::Retry(why) => {
                tracing::warn!(run_id, why, "wasm activation hit a host error; will retry");
                let at = self.now() + RETRY_DELAY_MS * 1000;
                self.park(run_id, owner, at).await
            }
            ActivationOutcome::Cancelled | ActivationOutcome::LeaseLost => Ok(()),
        };
        match recorded {
            Err(e) if e.is_cancelled() || e.is_lease_lost() => Ok(()),
            other => other,
        }
    }
}
