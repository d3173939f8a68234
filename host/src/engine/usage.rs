//! The token/cost usage ledger.

use super::write::Write;
use super::{Engine, EngineError, Result};
use crate::clock::Micros;
use crate::ids;
use crate::model::UsageRecord;
use serde_json::{Value, json};

#[derive(Clone, Debug, Default)]
pub struct NewUsage {
    pub step_id: Option<String>,
    pub kind: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub label: Option<String>,
    pub quantity: Option<f64>,
    pub unit: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub metadata: Option<Value>,
}

impl Engine {
    pub async fn record_usage(&self, run_id: &str, req: NewUsage) -> Result<UsageRecord> {
        let now = self.now();
        let mut w = self.write().await?;
        w.tx.run(run_id, false)
            .await?
            .ok_or_else(EngineError::run_not_found)?;
        let usage = self.put_usage(&mut w, run_id, req, now).await?;
        self.commit(w).await?;
        Ok(usage)
    }

    /// [`Engine::record_usage`] inside `w`, for a run known to exist.
    pub(crate) async fn put_usage(
        &self,
        w: &mut Write,
        run_id: &str,
        req: NewUsage,
        now: Micros,
    ) -> Result<UsageRecord> {
        if let Some(step_id) = &req.step_id
            && !w.tx.step_exists(step_id).await?
        {
            return Err(EngineError::NotFound("step not found"));
        }
        self.insert_usage(w, run_id, req, now).await
    }

    pub(crate) async fn insert_usage(
        &self,
        w: &mut Write,
        run_id: &str,
        req: NewUsage,
        now: Micros,
    ) -> Result<UsageRecord> {
        // Absent total: the sum of the given sides, or null if neither is given.
        let total_tokens = req.total_tokens.or_else(|| {
            (req.input_tokens.is_some() || req.output_tokens.is_some())
                .then(|| req.input_tokens.unwrap_or(0) + req.output_tokens.unwrap_or(0))
        });
        let usage = UsageRecord {
            id: ids::new_id("use"),
            run_id: run_id.to_string(),
            step_id: req.step_id,
            kind: req.kind.unwrap_or_else(|| "custom".into()),
            provider: req.provider,
            model: req.model,
            label: req.label,
            quantity: req.quantity,
            unit: req.unit,
            input_tokens: req.input_tokens,
            output_tokens: req.output_tokens,
            total_tokens,
            cost_usd: req.cost_usd,
            metadata: req.metadata.unwrap_or_else(|| json!({})),
            created_at: now,
        };
        w.tx.insert_usage(&usage).await?;
        w.event(run_id, "usage.recorded", json!({"usage": usage}), now)
            .await?;
        Ok(usage)
    }
}
