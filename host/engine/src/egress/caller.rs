//! Who makes a brokered call: a step attempt of a run, under the run's
//! lease. A refused call marks its attempt, so when the step then fails its
//! error (and the run's failure class, if the run fails from it) names the
//! refusal class instead of a generic workflow error.

use super::EgressClass;
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
    pub(crate) refusals: RefusalMark,
}

impl EgressCaller {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn step(&self) -> &str {
        &self.step
    }
}

/// The class of the last call refused during a step attempt, shared by the
/// attempt and the callers it handed out (calls run detached from it).
#[derive(Clone, Debug, Default)]
pub(crate) struct RefusalMark(Arc<Mutex<Option<EgressClass>>>);

impl RefusalMark {
    pub fn set(&self, class: EgressClass) {
        *self.0.lock().expect("not poisoned") = Some(class);
    }

    /// Add the refusal class to the error of a failed attempt that had one.
    pub fn classify(&self, error: &mut Value) {
        let class = *self.0.lock().expect("not poisoned");
        if let (Some(class), Some(fields)) = (class, error.as_object_mut()) {
            fields.insert("class".into(), json!(class.as_str()));
        }
    }
}

/// The refusal class a run failing with `error` names: that of its failed
/// step whose error this is (the guest passed the step's failure on).
pub(crate) fn refusal_class(steps: &[Step], error: &Value) -> Option<String> {
    let same = |e: &Value| e["name"] == error["name"] && e["message"] == error["message"];
    steps
        .iter()
        .filter_map(|s| s.error.as_ref())
        .find(|e| same(e) && e["class"].as_str().is_some_and(EgressClass::is_class))
        .and_then(|e| e["class"].as_str().map(String::from))
}
