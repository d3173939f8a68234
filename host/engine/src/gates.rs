//! Durable approval gates: idempotent begin, token-checked exactly-once
//! resolve, and timeouts for gates of runs the host executes.

use super::write::Write;
use super::{Conflict, Engine, EngineError, Entity, Result, limits};
use crate::clock::Micros;
use crate::ids;
use crate::model::{Gate, Run, RunStatus, TIMED_OUT};
use serde_json::{Value, json};

/// Longest gate timeout: 100 years of 365 days. Deadlines stay far inside
/// the range of microsecond timestamps.
pub const MAX_GATE_TIMEOUT_MS: i64 = 100 * 365 * 24 * 60 * 60 * 1000;

#[derive(Clone, Debug)]
pub struct GateBegin {
    pub name: String,
    pub prompt: String,
    pub data: Value,
    pub channels: Value,
    pub capability: Value,
    pub timeout_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct GateResolve {
    pub token: String,
    pub decision: String,
    pub actor: Option<String>,
    pub payload: Value,
}

/// A gate decision as an operator gives it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub decision: String,
    pub actor: Option<String>,
    pub payload: Value,
}

impl Decision {
    /// An operator's approval or rejection by `actor`, with an optional
    /// note recorded as the decision payload `{"note": …}` (CLI, MCP).
    pub fn noted(approve: bool, actor: String, note: Option<String>) -> Decision {
        Decision {
            decision: if approve { "approved" } else { "rejected" }.into(),
            actor: Some(actor),
            payload: note.map_or_else(|| json!({}), |note| json!({"note": note})),
        }
    }
}

/// Who resolves a gate.
enum Resolver<'a> {
    /// Whoever presents the gate's resolve token.
    Token(&'a str),
    /// An operator, already trusted by the door it came through.
    Operator,
}

/// Why `settle` did not resolve: refused (with the gate, if it exists), or
/// the store failed.
enum Settle {
    Refused(Option<Box<Gate>>),
    Failed(EngineError),
}

impl From<EngineError> for Settle {
    fn from(e: EngineError) -> Settle {
        Settle::Failed(e)
    }
}

impl From<crate::store::StoreError> for Settle {
    fn from(e: crate::store::StoreError) -> Settle {
        Settle::Failed(e.into())
    }
}

fn check_timeout(timeout_ms: Option<i64>) -> Result<()> {
    match timeout_ms {
        Some(ms) if !(1..=MAX_GATE_TIMEOUT_MS).contains(&ms) => Err(EngineError::BadRequest(
            format!("timeoutMs must be an integer from 1 to {MAX_GATE_TIMEOUT_MS} (milliseconds)"),
        )),
        _ => Ok(()),
    }
}

impl GateBegin {
    /// The limits on a gate begin, whichever door it came through.
    pub fn check(&self) -> Result<()> {
        limits::check_name("name", &self.name)?;
        limits::check_nonempty("prompt", &self.prompt)?;
        check_timeout(self.timeout_ms)
    }
}

/// Whether `gate` timed out: only gates of runs the host executes have a
/// server-side timeout (SDK-driven runs keep v0.5's: none).
fn is_due(run: &Run, gate: &Gate, now: Micros) -> bool {
    run.component_digest.is_some()
        && gate.is_pending()
        && gate.deadline().is_some_and(|deadline| now >= deadline)
}

impl Engine {
    /// Create the gate on first begin; later begins return it unchanged,
    /// unless its timeout has passed meanwhile (then it is recorded as timed
    /// out first).
    pub async fn begin_gate(&self, run_id: &str, req: GateBegin) -> Result<Gate> {
        req.check()?;
        let now = self.now();
        let mut w = self.write().await?;
        let run =
            w.tx.run(run_id, false)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status == RunStatus::Cancelled {
            return Err(EngineError::RunCancelled(None));
        }
        w.tx.lock_key(&format!("{run_id}:gate:{}", req.name))
            .await?;
        if let Some(existing) = w.tx.gate_by_name(run_id, &req.name).await? {
            if !is_due(&run, &existing, now) {
                return Ok(existing);
            }
            // Decide under the gate's row lock, which resolvers take too.
            let mut gate =
                w.tx.gate(run_id, &existing.id, true)
                    .await?
                    .ok_or(EngineError::NotFound(Entity::Gate))?;
            if is_due(&run, &gate, now) {
                self.time_out(&mut w, &mut gate, now).await?;
                self.commit(w).await?;
            }
            return Ok(gate);
        }
        let gate = self
            .open_gate(&mut w, run_id, ids::new_id("gate"), req, now)
            .await?;
        self.commit(w).await?;
        Ok(gate)
    }

    /// Insert a new pending gate with id `id` and announce it
    /// (`gate.created`).
    pub(crate) async fn open_gate(
        &self,
        w: &mut Write,
        run_id: &str,
        id: String,
        req: GateBegin,
        now: Micros,
    ) -> Result<Gate> {
        let gate = Gate {
            id,
            run_id: run_id.to_string(),
            name: req.name,
            prompt: req.prompt,
            data: if req.data.is_null() {
                json!({})
            } else {
                req.data
            },
            status: "pending".into(),
            decision: None,
            actor: None,
            decision_payload: None,
            capability: req.capability,
            channels: req.channels,
            resolve_token: ids::resolve_token(),
            created_at: now,
            updated_at: now,
            resolved_at: None,
            timeout_ms: req.timeout_ms,
        };
        w.tx.insert_gate(&gate).await?;
        let public = gate.public(&self.settings.public_url);
        w.event(run_id, "gate.created", json!({"gate": public}), now)
            .await?;
        Ok(gate)
    }

    /// A gate and its run's status (the poll endpoint).
    pub async fn get_gate(&self, run_id: &str, gate_id: &str) -> Result<(Gate, RunStatus)> {
        let mut r = self.read().await?;
        let gate = r
            .gate(run_id, gate_id, false)
            .await?
            .ok_or(EngineError::NotFound(Entity::Gate))?;
        let run = r
            .run(run_id, false)
            .await?
            .ok_or(EngineError::NotFound(Entity::Gate))?;
        Ok((gate, run.status))
    }

    /// Decide a pending gate on behalf of a holder of its resolve token
    /// (HTTP, channels). Every refusal reads the same, so the answer tells a
    /// token guesser nothing.
    pub async fn resolve_gate(
        &self,
        run_id: &str,
        gate_id: &str,
        req: GateResolve,
    ) -> Result<Gate> {
        let decision = Decision {
            decision: req.decision,
            actor: req.actor,
            payload: req.payload,
        };
        self.settle(run_id, gate_id, Resolver::Token(&req.token), decision)
            .await
            .map_err(|e| match e {
                Settle::Refused(_) => EngineError::Conflict(Conflict::GateRefused),
                Settle::Failed(e) => e,
            })
    }

    /// Decide a pending gate as an operator (CLI, later a UI), who is trusted
    /// by holding the database or an admin session: the resolve token is
    /// neither asked for nor handed out, the actor is recorded, and refusals
    /// say why.
    pub async fn resolve_gate_as_operator(
        &self,
        run_id: &str,
        gate_name: &str,
        decision: Decision,
    ) -> Result<Gate> {
        // Operators get no token back either: a gate they see has it blanked.
        let tokenless = |mut gate: Gate| {
            gate.resolve_token.clear();
            gate
        };
        let gate = self.gate_named(run_id, gate_name).await?;
        self.settle(run_id, &gate.id, Resolver::Operator, decision)
            .await
            .map(tokenless)
            .map_err(|e| match e {
                Settle::Refused(Some(gate)) => {
                    EngineError::Conflict(Conflict::GateDecided(Box::new(tokenless(*gate))))
                }
                Settle::Refused(None) => EngineError::NotFound(Entity::Gate),
                Settle::Failed(e) => e,
            })
    }

    /// The one resolve rule, whoever resolves: of concurrent resolutions
    /// exactly one wins (the row lock makes the pending check and the update
    /// one atomic step), and a gate whose timeout passed is recorded as timed
    /// out and refuses.
    async fn settle(
        &self,
        run_id: &str,
        gate_id: &str,
        resolver: Resolver<'_>,
        decision: Decision,
    ) -> std::result::Result<Gate, Settle> {
        let now = self.now();
        let mut w = self.write().await?;
        let Some(mut gate) = w.tx.gate(run_id, gate_id, true).await? else {
            return Err(Settle::Refused(None));
        };
        if gate.deadline().is_some_and(|d| now >= d) {
            let run =
                w.tx.run(run_id, false)
                    .await?
                    .ok_or_else(EngineError::run_not_found)?;
            if is_due(&run, &gate, now) {
                self.time_out(&mut w, &mut gate, now).await?;
                self.commit(w).await?;
                return Err(Settle::Refused(Some(Box::new(gate))));
            }
        }
        let authorized = match resolver {
            Resolver::Token(token) => {
                subtle::ConstantTimeEq::ct_eq(gate.resolve_token.as_bytes(), token.as_bytes())
                    .into()
            }
            Resolver::Operator => true,
        };
        if !gate.is_pending() || !authorized {
            return Err(Settle::Refused(Some(Box::new(gate))));
        }
        let Decision {
            decision,
            actor,
            payload,
        } = decision;
        self.decide(&mut w, &mut gate, &decision, actor, payload, now)
            .await?;
        self.commit(w).await?;
        Ok(gate)
    }

    /// Record the timeout of a due gate (locked by the caller).
    async fn time_out(&self, w: &mut Write, gate: &mut Gate, now: Micros) -> Result<()> {
        self.decide(w, gate, TIMED_OUT, None, json!({}), now).await
    }

    /// Store a gate's final decision, announce it, decide the grants that
    /// waited on it, and wake its run.
    async fn decide(
        &self,
        w: &mut Write,
        gate: &mut Gate,
        decision: &str,
        actor: Option<String>,
        payload: Value,
        now: Micros,
    ) -> Result<()> {
        gate.status = decision.to_string();
        gate.decision = Some(decision.to_string());
        gate.actor = actor;
        gate.decision_payload = Some(payload);
        gate.resolved_at = Some(now);
        gate.updated_at = now;
        w.tx.update_gate(gate).await?;
        let public = gate.public(&self.settings.public_url);
        w.event(&gate.run_id, "gate.resolved", json!({"gate": public}), now)
            .await?;
        self.settle_grants(w, gate, now).await?;
        self.wake(w, &gate.run_id, now).await
    }
}

impl Engine {
    /// A gate by its name within a run (the CLI resolves gates by name).
    pub async fn gate_named(&self, run_id: &str, name: &str) -> Result<Gate> {
        self.read()
            .await?
            .gate_by_name(run_id, name)
            .await?
            .ok_or(EngineError::NotFound(Entity::Gate))
    }

    /// Pending gates of a run.
    pub async fn pending_gates(&self, run_id: &str) -> Result<Vec<Gate>> {
        let gates = self.read().await?.gates(run_id).await?;
        Ok(gates.into_iter().filter(Gate::is_pending).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_GATE_TIMEOUT_MS, check_timeout};

    #[test]
    fn gate_timeouts_are_range_checked() {
        for ok in [None, Some(1), Some(MAX_GATE_TIMEOUT_MS)] {
            assert!(check_timeout(ok).is_ok(), "{ok:?}");
        }
        for bad in [0, -1, MAX_GATE_TIMEOUT_MS + 1, i64::MAX, i64::MIN] {
            let err = check_timeout(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("timeoutMs"), "{bad}: {err}");
        }
    }
}
