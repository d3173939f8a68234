//! The token/cost usage ledger.

use super::limits;
use super::write::Write;
use super::{Engine, EngineError, Entity, Result};
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

impl NewUsage {
    /// The limits on a record, whichever door it came through: stored text
    /// holds no NUL, a kind is not empty, a cost is not negative, and every
    /// token count lies in [`limits::TOKENS`], a derived total too. Returns
    /// the record's `totalTokens`: as given, else the sum of the given sides
    /// (null if neither is given). A door may call this to refuse a record
    /// before queueing it.
    pub fn check(&self) -> Result<Option<i64>> {
        let texts = [
            ("stepId", &self.step_id),
            ("provider", &self.provider),
            ("model", &self.model),
            ("label", &self.label),
            ("unit", &self.unit),
        ];
        for (field, text) in texts {
            limits::check_opt_text(field, text.as_deref())?;
        }
        if let Some(kind) = &self.kind {
            limits::check_nonempty("kind", kind)?;
        }
        if let Some(cost) = self.cost_usd {
            limits::check_non_negative("costUsd", cost)?;
        }
        let counts = [
            ("inputTokens", self.input_tokens),
            ("outputTokens", self.output_tokens),
            ("totalTokens", self.total_tokens),
        ];
        for (field, count) in counts {
            if let Some(n) = count {
                limits::TOKENS.check(field, n)?;
            }
        }
        if self.total_tokens.is_some()
            || (self.input_tokens.is_none() && self.output_tokens.is_none())
        {
            return Ok(self.total_tokens);
        }
        let sum = self
            .input_tokens
            .unwrap_or(0)
            .checked_add(self.output_tokens.unwrap_or(0))
            .unwrap_or(i64::MAX);
        Ok(Some(limits::TOKENS.check("totalTokens", sum)?))
    }
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
            return Err(EngineError::NotFound(Entity::Step));
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
        let total_tokens = req.check()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: Option<i64>, output: Option<i64>, total: Option<i64>) -> NewUsage {
        NewUsage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: total,
            ..NewUsage::default()
        }
    }

    #[test]
    fn records_are_checked_and_totals_never_wrap() {
        let max = limits::TOKENS.max;
        assert_eq!(usage(None, None, None).check().unwrap(), None);
        assert_eq!(usage(Some(2), None, None).check().unwrap(), Some(2));
        assert_eq!(usage(Some(2), Some(3), None).check().unwrap(), Some(5));
        assert_eq!(usage(Some(2), Some(3), Some(1)).check().unwrap(), Some(1));
        assert_eq!(usage(Some(max), Some(0), None).check().unwrap(), Some(max));
        for bad in [
            usage(Some(max), Some(1), None),
            usage(Some(i64::MAX), Some(i64::MAX), None),
            usage(Some(i64::MAX), None, Some(1)),
            usage(Some(-1), None, None),
            usage(None, None, Some(i64::MIN)),
            NewUsage {
                model: Some("a\0b".into()),
                ..NewUsage::default()
            },
            NewUsage {
                kind: Some(String::new()),
                ..NewUsage::default()
            },
            NewUsage {
                cost_usd: Some(-1.0),
                ..NewUsage::default()
            },
        ] {
            assert!(
                matches!(bad.check(), Err(EngineError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
