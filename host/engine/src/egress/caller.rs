//! Who makes a brokered call: a step attempt of a run, under the run's
//! lease. This is also the one home of the rule that names a failure after
//! the egress refusal that caused it: a step attempt that fails after a
//! refused call, and a run whose workflow fails from one, get the refusal's
//! class (`egress_denied`, …) instead of a generic workflow error.

use super::{EgressClass, EgressRefusal};
use crate::ActivationOutcome;
use crate::group_commit::Pending;
use crate::model::Step;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A step attempt's calls; built by [`crate::Activation::egress_caller`].
#[derive(Clone, Debug)]
pub struct EgressCaller {
    pub(crate) run_id: String,
    pub(crate) owner: String,
    pub(crate) step: String,
    pub(crate) attempt: i32,
    /// The step's `idempotencyKey`, sent as `Idempotency-Key`.
    pub(crate) idempotency_key: Option<String>,
    /// Refusals of this step attempt.
    pub(crate) attempt_refusals: Refusals,
    /// Refusals of the whole activation.
    pub(crate) refusals: Refusals,
    /// The activation's pending checkpoints, written before the call leaves.
    pub(crate) pending: Pending,
}

impl EgressCaller {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn step(&self) -> &str {
        &self.step
    }

    /// A refusal the door decided itself (a request body over its cap)
    /// counts like the broker's own.
    pub fn note_refusal(&self, refusal: &EgressRefusal) {
        self.attempt_refusals.set(refusal);
        self.refusals.set(refusal);
    }
}

/// The last refused call, shared by whoever keeps the mark (a step attempt,
/// an activation) and the callers it handed out (calls run detached).
#[derive(Clone, Debug, Default)]
pub struct Refusals(Arc<Mutex<Option<EgressRefusal>>>);

impl Refusals {
    pub(crate) fn set(&self, refusal: &EgressRefusal) {
        *self.0.lock().expect("not poisoned") = Some(refusal.clone());
    }

    fn last(&self) -> Option<EgressRefusal> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// Add the refusal class to the error of a failed step attempt.
    pub(crate) fn classify(&self, error: &mut Value) {
        if let (Some(r), Some(fields)) = (self.last(), error.as_object_mut()) {
            fields.insert("class".into(), json!(r.class.as_str()));
        }
    }

    /// A workflow error the guest SDK names after the last refusal (it saw
    /// only an error code) takes the refusal's class, and the host's reason
    /// joins its message.
    pub fn explain(&self, outcome: ActivationOutcome) -> ActivationOutcome {
        match (outcome, self.last()) {
            (ActivationOutcome::Failed { mut error, class }, Some(r))
                if class == "workflow_error" && error["name"] == r.class.guest_error_name() =>
            {
                let message = error["message"].as_str().unwrap_or_default();
                error["message"] = json!(format!("{message}: {}", r.reason));
                ActivationOutcome::Failed {
                    error,
                    class: r.class.as_str(),
                }
            }
            (outcome, _) => outcome,
        }
    }
}

/// The refusal class a run failing with `error` names: that of its failed
/// step whose error this is (the guest passed the step's failure on, maybe
/// in a later activation than the refusal).
pub(crate) fn refusal_class(steps: &[Step], error: &Value) -> Option<String> {
    let same = |e: &Value| e["name"] == error["name"] && e["message"] == error["message"];
    steps
        .iter()
        .filter_map(|s| s.error.as_ref())
        .find(|e| same(e) && e["class"].as_str().is_some_and(EgressClass::is_class))
        .and_then(|e| e["class"].as_str().map(String::from))
}
