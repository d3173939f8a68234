//! Recovery and invoke webhooks (`run.resume`, `run.invoke`; `semantics.md`
//! §15): an attempt row and its `recovery.started` event are recorded with
//! the write that decided the call, the call is made after commit, and its
//! outcome is recorded before the caller is answered.

use super::outbound::{RECOVERY_USER_AGENT, detached};
use super::write::Write;
use super::{Engine, EngineError, Result};
use crate::clock::Micros;
use crate::ids;
use crate::model::{CallOutcome, RecoveryAttempt, Run};
use serde::Serialize;
use serde_json::json;

/// The `run.resume` / `run.invoke` body, fields in protocol order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    run_id: &'a str,
    workflow_name: &'a str,
    reason: &'a str,
    attempt: i32,
}

/// A recovery or invoke call whose attempt row is recorded, ready to send.
pub(crate) struct RecoveryCall {
    attempt: RecoveryAttempt,
    body: Vec<u8>,
}

impl Engine {
    /// Record a `pending` recovery attempt and its `recovery.started` event
    /// inside `w`; send it with [`Engine::finish_recovery`] after commit.
    pub(crate) async fn start_recovery(
        &self,
        w: &mut Write,
        run: &Run,
        kind: &str,
        url: &str,
        reason: &str,
        now: Micros,
    ) -> Result<RecoveryCall> {
        let attempt = RecoveryAttempt {
            id: ids::new_id("rec"),
            run_id: run.id.clone(),
            reason: reason.to_string(),
            webhook_url: url.to_string(),
            status: "pending".into(),
            http_status: None,
            response_body: None,
            error_text: None,
            created_at: now,
            completed_at: None,
        };
        w.tx.insert_recovery_attempt(&attempt).await?;
        let payload = json!({"recoveryAttemptId": attempt.id, "reason": reason});
        w.event(&run.id, "recovery.started", payload, now).await?;
        let body = RecoveryBody {
            kind,
            run_id: &run.id,
            workflow_name: &run.workflow_name,
            reason,
            attempt: run.attempt,
        };
        let body = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
        Ok(RecoveryCall { attempt, body })
    }

    /// Send a recorded recovery/invoke call and record its outcome.
    pub(crate) async fn finish_recovery(&self, call: RecoveryCall) -> Result<RecoveryAttempt> {
        let RecoveryCall { mut attempt, body } = call;
        let secret = self.settings.webhook_secret.as_deref();
        let outcome = self
            .outbound
            .post(
                "recovery",
                &attempt.webhook_url,
                body,
                RECOVERY_USER_AGENT,
                secret,
            )
            .await;
        let now = self.now();
        attempt.status = if outcome.ok() { "delivered" } else { "failed" }.into();
        attempt.http_status = outcome.http_status();
        attempt.response_body = outcome.body().map(String::from);
        attempt.error_text = outcome.error().map(String::from);
        attempt.completed_at = Some(now);
        let mut w = self.write().await?;
        w.tx.finish_recovery_attempt(&attempt).await?;
        let (kind, payload) = match &outcome {
            CallOutcome::Response { status, .. } => (
                if outcome.ok() {
                    "recovery.delivered"
                } else {
                    "recovery.failed"
                },
                json!({"recoveryAttemptId": attempt.id, "httpStatus": status}),
            ),
            CallOutcome::Transport(error) => (
                "recovery.failed",
                json!({"recoveryAttemptId": attempt.id, "error": error}),
            ),
        };
        w.event(&attempt.run_id, kind, payload, now).await?;
        self.commit(w).await?;
        Ok(attempt)
    }

    /// Send a recorded call; a failure to record its outcome is logged.
    pub(crate) async fn send_recovery(&self, call: RecoveryCall) {
        let id = call.attempt.id.clone();
        if let Err(e) = self.finish_recovery(call).await {
            tracing::warn!(attempt = %id, error = %e, "recovery attempt outcome not recorded");
        }
    }

    /// `POST /runs/:id/recover`: fire `run.resume` now and wait for the
    /// outcome, which is returned (a failed call is still a result).
    pub async fn recover_run(&self, id: &str, reason: Option<String>) -> Result<RecoveryAttempt> {
        let (engine, id) = (self.clone(), id.to_string());
        detached(async move { engine.recover_detached(&id, reason).await })
            .await
            .ok_or_else(|| anyhow::anyhow!("shutting down: recovery call abandoned"))?
    }

    async fn recover_detached(&self, id: &str, reason: Option<String>) -> Result<RecoveryAttempt> {
        let now = self.now();
        let mut w = self.write().await?;
        let run =
            w.tx.run(id, false)
                .await?
                .ok_or_else(EngineError::run_not_found)?;
        let Some(url) = run.recovery_webhook.clone() else {
            return Err(EngineError::Unprocessable(
                "run has no recoveryWebhook configured",
            ));
        };
        let reason = reason.unwrap_or_else(|| "manual".into());
        let call = self
            .start_recovery(&mut w, &run, "run.resume", &url, &reason, now)
            .await?;
        self.commit(w).await?;
        self.finish_recovery(call).await
    }

    /// After a run failed terminally: call its recovery webhook
    /// (`run.resume`, reason `run_failed`), if it has one, and record the
    /// outcome before returning. The handler may resume the run meanwhile
    /// (`semantics.md` §15.3); nothing it needs is held here. Neither a
    /// failed call nor a failure to record it changes the fail's result.
    pub(crate) async fn after_run_failed(&self, run: &Run) {
        let Some(url) = run.recovery_webhook.as_deref() else {
            return;
        };
        let started = async {
            let now = self.now();
            let mut w = self.write().await?;
            let call = self
                .start_recovery(&mut w, run, "run.resume", url, "run_failed", now)
                .await?;
            self.commit(w).await?;
            Ok::<_, EngineError>(call)
        }
        .await;
        match started {
            Ok(call) => self.send_recovery(call).await,
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "run_failed recovery webhook not recorded")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_keeps_protocol_field_order() {
        let body = RecoveryBody {
            kind: "run.resume",
            run_id: "run_1",
            workflow_name: "w",
            reason: "manual",
            attempt: 2,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"type":"run.resume","runId":"run_1","workflowName":"w","reason":"manual","attempt":2}"#
        );
    }
}
