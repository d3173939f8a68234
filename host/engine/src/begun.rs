//! The rows of step attempts this process began over HTTP and that are not
//! yet completed or failed. A step complete starts from the remembered row
//! instead of reading it back: the store's conditional replace
//! ([`crate::store::Store::replace_step_if_unchanged`]) still checks that
//! the stored row is that attempt, so a stale entry (another replica
//! re-began the step, its lease was taken over) costs a fallback, never a
//! wrong write. Bounded: the oldest entries are forgotten first.

use crate::model::Step;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Attempts remembered at most; an attempt forgotten is read back.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct BegunSteps {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Step id to the row and the number it was remembered under.
    rows: HashMap<String, (u64, Step)>,
    /// `(number, step id)` in the order remembered; an entry whose number no
    /// longer matches its row (taken, or remembered again) is stale.
    order: VecDeque<(u64, String)>,
    next: u64,
}

impl Inner {
    fn is_live(&self, (n, id): &(u64, String)) -> bool {
        self.rows.get(id).is_some_and(|(m, _)| m == n)
    }
}

impl BegunSteps {
    /// Remember the row an attempt was begun with (a new attempt of the same
    /// step replaces the older one).
    pub fn remember(&self, step: &Step) {
        let mut inner = self.inner.lock().expect("not poisoned");
        let n = inner.next;
        inner.next += 1;
        inner.rows.insert(step.id.clone(), (n, step.clone()));
        inner.order.push_back((n, step.id.clone()));
        if inner.order.len() > 2 * CAPACITY {
            let order = std::mem::take(&mut inner.order);
            inner.order = order.into_iter().filter(|e| inner.is_live(e)).collect();
        }
        while inner.rows.len() > CAPACITY {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if inner.is_live(&oldest) {
                inner.rows.remove(&oldest.1);
            }
        }
    }

    /// Forget and return the row remembered for `step_id` in `run_id`.
    pub fn take(&self, run_id: &str, step_id: &str) -> Option<Step> {
        let mut inner = self.inner.lock().expect("not poisoned");
        let (_, step) = inner.rows.remove(step_id)?;
        (step.run_id == run_id).then_some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResumeContract;
    use serde_json::json;

    fn step(id: &str, run: &str) -> Step {
        Step {
            id: id.into(),
            run_id: run.into(),
            name: id.into(),
            input_hash: "h".into(),
            input: json!({}),
            options: json!({}),
            resume_contract: ResumeContract::from_options(&json!({})),
            status: "running".into(),
            output: None,
            error: None,
            lease_owner: Some("o".into()),
            lease_expires_at: Some(1),
            attempt: 1,
            started_at: Some(0),
            completed_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_row_is_taken_once_and_only_for_its_run() {
        let begun = BegunSteps::default();
        begun.remember(&step("s1", "r1"));
        assert!(begun.take("r2", "s1").is_none(), "another run's id");
        begun.remember(&step("s1", "r1"));
        assert_eq!(begun.take("r1", "s1").map(|s| s.id), Some("s1".into()));
        assert!(begun.take("r1", "s1").is_none(), "taken already");
    }

    #[test]
    fn the_oldest_rows_are_forgotten_past_capacity() {
        let begun = BegunSteps::default();
        for i in 0..CAPACITY + 10 {
            begun.remember(&step(&format!("s{i}"), "r"));
        }
        assert!(begun.take("r", "s0").is_none());
        assert!(begun.take("r", "s9").is_none());
        assert!(begun.take("r", "s10").is_some());
        assert!(begun.take("r", &format!("s{}", CAPACITY + 9)).is_some());
        // Ids taken before eviction reaches them do not evict live rows.
        for i in 0..3 * CAPACITY {
            let id = format!("t{i}");
            begun.remember(&step(&id, "r"));
            assert!(begun.take("r", &id).is_some());
        }
        assert!(begun.take("r", &format!("s{}", CAPACITY + 8)).is_some());
    }
}
