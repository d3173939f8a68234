//! Durable approval gates: idempotent begin, token-checked exactly-once resolve.

use super::{Engine, EngineError, Result};
use crate::ids;
use crate::model::{Gate, RunStatus};
use serde_json::{Value, json};

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

impl Engine {
    /// Create the gate on first begin; later begins return it unchanged.
    pub async fn begin_gate(&self, run_id: &str, req: GateBegin) -> Result<Gate> {
        let now = self.now();
        let mut w = self.write().await?;
        let run =
            w.tx.run(run_id, false)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        if run.status == RunStatus::Cancelled {
            return Err(EngineError::run_cancelled(None));
        }
        w.tx.lock_key(&format!("{run_id}:gate:{}", req.name))
            .await?;
        if let Some(existing) = w.tx.gate_by_name(run_id, &req.name).await? {
            return Ok(existing);
        }
        let gate = Gate {
            id: ids::new_id("gate"),
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
        self.commit(w).await?;
        Ok(gate)
    }

    /// A gate and its run's status (the poll endpoint).
    pub async fn get_gate(&self, run_id: &str, gate_id: &str) -> Result<(Gate, RunStatus)> {
        let mut r = self.read().await?;
        let gate = r
            .gate(run_id, gate_id, false)
            .await?
            .ok_or(EngineError::NotFound("gate not found"))?;
        let run = r
            .run(run_id, false)
            .await?
            .ok_or(EngineError::NotFound("gate not found"))?;
        Ok((gate, run.status))
    }

    /// Decide a pending gate. Of concurrent resolutions exactly one wins; the
    /// row lock makes the pending check and the update one atomic step.
    pub async fn resolve_gate(
        &self,
        run_id: &str,
        gate_id: &str,
        req: GateResolve,
    ) -> Result<Gate> {
        let refused = || {
            EngineError::Conflict(
                json!({"error": "gate not found, already resolved, or invalid token"}),
            )
        };
        let now = self.now();
        let mut w = self.write().await?;
        let mut gate =
            w.tx.gate(run_id, gate_id, true)
                .await?
                .ok_or_else(refused)?;
        let token_ok: bool =
            subtle::ConstantTimeEq::ct_eq(gate.resolve_token.as_bytes(), req.token.as_bytes())
                .into();
        if !gate.is_pending() || !token_ok {
            return Err(refused());
        }
        gate.status = req.decision.clone();
        gate.decision = Some(req.decision);
        gate.actor = req.actor;
        gate.decision_payload = Some(req.payload);
        gate.resolved_at = Some(now);
        gate.updated_at = now;
        w.tx.update_gate(&gate).await?;
        let public = gate.public(&self.settings.public_url);
        w.event(run_id, "gate.resolved", json!({"gate": public}), now)
            .await?;
        self.wake(&mut w, run_id, now).await?;
        self.commit(w).await?;
        Ok(gate)
    }
}

impl Engine {
    /// A gate by its name within a run (the CLI resolves gates by name).
    pub async fn gate_named(&self, run_id: &str, name: &str) -> Result<Gate> {
        self.read()
            .await?
            .gate_by_name(run_id, name)
            .await?
            .ok_or(EngineError::NotFound("gate not found"))
    }

    /// Pending gates of a run.
    pub async fn pending_gates(&self, run_id: &str) -> Result<Vec<Gate>> {
        let gates = self.read().await?.gates(run_id).await?;
        Ok(gates.into_iter().filter(Gate::is_pending).collect())
    }
}
