//! Group commit of a wasm activation's pure step checkpoints.
//!
//! A step is pure when it declares no side effects and made no egress call
//! during its attempt: running it again changes nothing outside the run.
//! The checkpoint of a pure step that completes on its first attempt need
//! not be durable before the workflow goes on, only before anything that
//! leaves the process or writes other durable state. So an activation keeps
//! such checkpoints here and writes them together, in one fenced store call
//! ([`crate::store::Store::record_new_steps`]), before any other write of
//! the run, before an egress call, and when the activation ends: then in
//! the transaction that records the ending ([`crate::Ended`]), unless the
//! guest printed output, whose `log` events must follow them.
//!
//! What a crash can lose is only buffered checkpoints: those steps run again
//! on resume, which is harmless because they are pure. Nothing that
//! observed them (an egress call, a gate, a child, a state write, the run's
//! result) was durable before they were.

use super::write::Write;
use super::{Engine, Result, StepBegin, StepOutcome, limits, telemetry};
use crate::store::NewStep;
use serde_json::Value;
use std::io;
use std::sync::Arc;
use tokio::sync::Mutex;

/// How many pure checkpoints an activation may hold before writing them
/// (`TIDEBASE_WASM_GROUP_COMMIT`: a number of steps, or `off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    /// At most this many buffered steps; 1 writes each checkpoint at once.
    pub max_steps: usize,
    /// At most about this many bytes of buffered inputs and outputs.
    pub max_bytes: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            max_steps: 64,
            max_bytes: 1 << 20,
        }
    }
}

impl GroupCommit {
    /// Every checkpoint written as its step completes.
    pub const OFF: GroupCommit = GroupCommit {
        max_steps: 1,
        max_bytes: 0,
    };

    pub const VAR: &str = "TIDEBASE_WASM_GROUP_COMMIT";

    /// From the variable's value (`None`: unset): `off`, or the most steps
    /// a group may hold ([`limits::GROUP_COMMIT_STEPS`]).
    pub fn from_var(text: Option<&str>) -> std::result::Result<GroupCommit, String> {
        match text.map(str::trim) {
            None | Some("") => Ok(GroupCommit::default()),
            Some("off") => Ok(GroupCommit::OFF),
            Some(n) => {
                let n = limits::GROUP_COMMIT_STEPS
                    .parse(GroupCommit::VAR, n)
                    .map_err(|v| format!("{}: {} (or off)", GroupCommit::VAR, v.message))?;
                Ok(GroupCommit {
                    max_steps: n as usize,
                    ..GroupCommit::default()
                })
            }
        }
    }
}

/// The pure checkpoints an activation has not written yet, shared with the
/// egress calls it hands out (which write them before leaving the process).
#[derive(Clone)]
pub(crate) struct Pending(Arc<Mutex<Buffer>>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

struct Buffer {
    engine: Engine,
    run_id: String,
    owner: String,
    steps: Vec<NewStep>,
    bytes: usize,
}

impl Pending {
    pub(crate) fn new(engine: &Engine, run_id: &str, owner: &str) -> Pending {
        Pending::holding(engine, run_id, owner, Vec::new())
    }

    /// A group of `steps` not written yet.
    pub(crate) fn holding(
        engine: &Engine,
        run_id: &str,
        owner: &str,
        steps: Vec<NewStep>,
    ) -> Pending {
        Pending(Arc::new(Mutex::new(Buffer {
            engine: engine.clone(),
            run_id: run_id.to_string(),
            owner: owner.to_string(),
            steps,
            bytes: 0,
        })))
    }

    /// The buffered checkpoints, now the caller's to write.
    pub(crate) async fn take(&self) -> Vec<NewStep> {
        let mut b = self.0.lock().await;
        b.bytes = 0;
        std::mem::take(&mut b.steps)
    }

    /// Keep a pure step's checkpoint; write the group once it is full.
    pub(crate) async fn add(&self, step: NewStep) -> Result<()> {
        let mut b = self.0.lock().await;
        b.bytes += json_len(&step.step.input) + step.step.output.as_ref().map_or(0, json_len);
        b.steps.push(step);
        let limit = b.engine.settings.wasm_group_commit;
        if b.steps.len() >= limit.max_steps || b.bytes >= limit.max_bytes {
            b.write().await?;
        }
        Ok(())
    }

    /// Write every buffered checkpoint now (nothing to do when none is).
    pub(crate) async fn flush(&self) -> Result<()> {
        self.0.lock().await.write().await
    }
}

impl Buffer {
    /// One fenced write of the whole group. If the store refuses it, each
    /// step takes the full checkpoint path in order, which says why: a lost
    /// lease or a cancel ends the activation, a step recorded meanwhile
    /// keeps its checkpoint.
    async fn write(&mut self) -> Result<()> {
        let steps = std::mem::take(&mut self.steps);
        self.bytes = 0;
        if steps.is_empty() {
            return Ok(());
        }
        let engine = &self.engine;
        if engine.record_new_steps(&self.owner, &steps).await? {
            return Ok(());
        }
        for new in steps {
            let step = new.step;
            let began = step.started_at.unwrap_or(new.at);
            let output = step.output.clone().unwrap_or(Value::Null);
            let req = StepBegin {
                id: Some(step.id),
                name: step.name,
                input_hash: step.input_hash,
                input: step.input,
                options: step.options,
                lease_owner: None,
            };
            let outcome = StepOutcome::Completed(output);
            engine
                .checkpoint_step(&self.run_id, &self.owner, req, outcome, Vec::new(), began)
                .await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Record whole new steps in one fenced store call; `false` when the
    /// store refused (nothing written).
    pub(crate) async fn record_new_steps(&self, owner: &str, steps: &[NewStep]) -> Result<bool> {
        let Some(first) = steps.first() else {
            return Ok(true);
        };
        if !self.store.record_new_steps(owner, steps).await? {
            return Ok(false);
        }
        self.feed.notify(&first.step.run_id);
        count_completed(steps);
        Ok(true)
    }

    /// Write whole new steps in `w`, whose transaction has fenced their run
    /// ([`Engine::fence_run`]); they count once it commits
    /// ([`count_completed`]).
    pub(crate) async fn write_new_steps(&self, w: &mut Write, steps: &[NewStep]) -> Result<()> {
        let Some(first) = steps.first() else {
            return Ok(());
        };
        w.tx.insert_new_steps(steps).await?;
        w.touch(&first.step.run_id);
        Ok(())
    }
}

/// Step attempts that completed, for the metrics, once written.
pub(crate) fn count_completed(steps: &[NewStep]) {
    for new in steps {
        let began = new.step.started_at.unwrap_or(new.at);
        telemetry::step_attempt("completed", began, new.at);
    }
}

/// The length of `v` as JSON text, without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

#[cfg(test)]
mod tests {
    use super::GroupCommit;

    #[test]
    fn the_variable_is_off_or_a_step_count() {
        assert_eq!(GroupCommit::from_var(None), Ok(GroupCommit::default()));
        assert_eq!(GroupCommit::from_var(Some(" off ")), Ok(GroupCommit::OFF));
        assert_eq!(GroupCommit::from_var(Some("8")).unwrap().max_steps, 8);
        for bad in ["0", "1001", "many", "-3"] {
            let e = GroupCommit::from_var(Some(bad)).unwrap_err();
            assert!(
                e.starts_with("TIDEBASE_WASM_GROUP_COMMIT: ") && e.ends_with("(or off)"),
                "{bad}: {e}"
            );
        }
    }
}
