//! Outbound webhooks: recovery/invoke calls (`run.resume`, `run.invoke`,
//! signed with `TIDEBASE_WEBHOOK_SECRET`) and channel deliveries (signed with
//! each channel's own secret).
//!
//! Every call happens after the transaction that decided it has committed,
//! outside any lock, with a timeout; its bookkeeping is written in its own
//! transactions. The caller that triggered a call waits for it and for its
//! outcome to be recorded (`semantics.md` §15.2, §16): channel deliveries are
//! recorded `pending` beside the event that triggers them
//! ([`record_deliveries`], called from the one place events are appended)
//! and sent one at a time when that transaction commits; a run's recovery
//! webhook after `fail` is sent after those. Since nothing is locked while a
//! receiver is called, other writers to the run never wait on it, and a
//! receiver may itself call the API for the same run (the SDKs' recovery
//! handlers resume the run inside the webhook call).

use super::write::Write;
use super::{Engine, EngineError, Result};
use crate::clock::Micros;
use crate::ids;
use crate::model::{CallOutcome, Delivery, Event, RecoveryAttempt, Run};
use crate::store::Tx;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

pub const RECOVERY_USER_AGENT: &str = "tidebase-recovery/0.5.0";
pub const CHANNEL_USER_AGENT: &str = "tidebase-channel/0.3.0";
/// Stored response bodies keep this many characters.
const BODY_CHARS: usize = 8000;
/// Calls of one reconciler tick in flight at once. Calls made for an API
/// caller are not throttled here: incoming connections bound them, and a
/// shared limit could starve a receiver's own API calls (a recovery handler
/// resuming the run) of the slots its caller holds.
const TICK_IN_FLIGHT: usize = 64;

/// Event types that reach channels (`http-api.md` §4.2).
pub const DELIVERABLE: [&str; 8] = [
    "run.completed",
    "run.failed",
    "run.cancelled",
    "step.failed",
    "state.updated",
    "usage.recorded",
    "gate.created",
    "gate.resolved",
];

/// Process-wide outbound machinery shared by every clone of an [`Engine`].
pub(crate) struct Outbound {
    client: reqwest::Client,
    pub(crate) timeout: Duration,
}

impl Outbound {
    pub(crate) fn new(timeout_ms: u64) -> Outbound {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .unwrap_or_default();
        Outbound { client, timeout }
    }

    /// POST `body` to `url`; any 2xx is success. Never fails: transport
    /// problems come back as [`CallOutcome::Transport`].
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        user_agent: &str,
        secret: Option<&str>,
    ) -> CallOutcome {
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", user_agent);
        if let Some(secret) = secret {
            req = req.header("x-tidebase-signature", sign(secret, &body));
        }
        let mut res = match req.body(body).send().await {
            Ok(res) => res,
            Err(e) => return CallOutcome::Transport(self.describe(&e)),
        };
        let status = res.status().as_u16();
        // Read no more than the stored prefix can need (4 bytes a char).
        let mut raw = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    raw.extend_from_slice(&chunk);
                    if raw.len() >= BODY_CHARS * 4 {
                        break;
                    }
                }
                Ok(None) => break,
                // The status arrived; a body cut short still counts as a response.
                Err(_) => break,
            }
        }
        // NUL becomes U+FFFD: Postgres text columns refuse it.
        let body: String = String::from_utf8_lossy(&raw)
            .chars()
            .take(BODY_CHARS)
            .map(|c| {
                if c == '\0' {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect();
        CallOutcome::Response { status, body }
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!(
                "fetch failed: timed out after {} ms",
                self.timeout.as_millis()
            );
        }
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("fetch failed: {cause}")
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

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

/// The channel envelope, fields in protocol order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    run_id: Option<&'a str>,
    gate_id: Option<&'a str>,
    delivery_id: &'a str,
    payload: &'a Value,
}

/// A recovery or invoke call whose attempt row is recorded, ready to send.
pub(crate) struct RecoveryCall {
    attempt: RecoveryAttempt,
    body: Vec<u8>,
}

/// Channels that receive an event: `(channel id, url, secret)`.
type Recipient = (Option<String>, String, Option<String>);

fn wants(events: Option<&Value>, kind: &str) -> bool {
    match events.and_then(Value::as_array) {
        None => true,
        Some(list) => list.is_empty() || list.iter().any(|e| e == kind),
    }
}

/// Record `pending` deliveries for an event, if it is deliverable and has
/// recipients; returns their ids (in the order they should be sent).
///
/// Channel payloads differ from event payloads for some types; they are
/// derived here from the event and the rows the triggering transaction has
/// just written, so every deliverable site gets deliveries without code of
/// its own.
pub(crate) async fn record_deliveries(tx: &mut dyn Tx, event: &Event) -> Result<Vec<String>> {
    let kind = event.kind.as_str();
    if !DELIVERABLE.contains(&kind) {
        return Ok(vec![]);
    }
    let run_id = event.run_id.as_str();
    let mut recipients: Vec<Recipient> = tx
        .channels(run_id)
        .await?
        .into_iter()
        .filter(|c| wants(Some(&c.events), kind))
        .map(|c| {
            let url = c
                .config
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let secret = c
                .config
                .get("secret")
                .and_then(Value::as_str)
                .map(String::from);
            (Some(c.id), url, secret)
        })
        .collect();
    let gate_id = if kind.starts_with("gate.") {
        event.payload["gate"]["id"].as_str().map(String::from)
    } else {
        None
    };
    if let Some(gid) = &gate_id
        && let Some(gate) = tx.gate(run_id, gid, false).await?
    {
        for c in gate.channels.as_array().into_iter().flatten() {
            if !wants(c.get("events"), kind) {
                continue;
            }
            let Some(url) = c.get("url").and_then(Value::as_str) else {
                continue;
            };
            let secret = c.get("secret").and_then(Value::as_str).map(String::from);
            recipients.push((None, url.to_string(), secret));
        }
    }
    if recipients.is_empty() {
        return Ok(vec![]);
    }
    let p = &event.payload;
    let payload = match kind {
        "run.completed" | "run.cancelled" | "run.failed" => {
            let run = tx.run(run_id, false).await?;
            let mut v = json!({"run": run});
            if kind == "run.failed" {
                v["error"] = p.get("error").cloned().unwrap_or(Value::Null);
            }
            v
        }
        "step.failed" => {
            let step_id = p["stepId"].as_str().unwrap_or_default();
            let step = tx.step(run_id, step_id, false).await?;
            let mut v = json!({
                "step": step,
                "retryable": p.get("retryable"),
                "resumeDecision": p.get("resumeDecision"),
            });
            if let Some(error) = p.get("error") {
                v["error"] = error.clone();
            }
            v
        }
        "state.updated" => {
            let state = tx.live_state(run_id, false).await?;
            json!({"state": state, "stateVersion": p.get("stateVersion")})
        }
        _ => p.clone(),
    };
    let mut ids = Vec::with_capacity(recipients.len());
    for (channel_id, url, secret) in recipients {
        let d = Delivery {
            id: ids::new_id("del"),
            run_id: Some(run_id.to_string()),
            channel_id,
            gate_id: gate_id.clone(),
            event_type: kind.to_string(),
            url,
            secret,
            payload: payload.clone(),
            created_at: event.created_at,
        };
        tx.insert_delivery(&d).await?;
        ids.push(d.id);
    }
    Ok(ids)
}

/// Run `work` to its end even if the caller is dropped (an HTTP client that
/// hung up mid-request), and wait for it: a webhook call, once its row is
/// committed, is always made and its outcome recorded. `None` only when the
/// runtime is shutting down.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::spawn(work).await {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// Outbound calls decided while a caller held something it must release
/// first (the reconciler's tick lock): sent by [`Engine::send_outbox`].
#[derive(Default)]
pub(crate) struct Outbox {
    pub recoveries: Vec<RecoveryCall>,
    /// Delivery ids, at most one per run (so they may go out concurrently).
    pub deliveries: Vec<String>,
}

impl Engine {
    /// Send committed deliveries one at a time, in the order they were
    /// recorded, each recorded `delivered`/`failed` before the next; returns
    /// when all are final. Called after commit, holding nothing.
    pub(crate) async fn deliver(&self, ids: &[String]) {
        for id in ids {
            self.deliver_one(id).await;
        }
    }

    async fn deliver_one(&self, id: &str) {
        if let Err(e) = self.send_delivery(id).await {
            tracing::warn!(delivery = %id, error = format!("{e:#}"), "channel delivery not recorded");
        }
    }

    /// Claim, send and record one delivery; a delivery someone else holds
    /// or already finished is left alone.
    async fn send_delivery(&self, id: &str) -> Result<()> {
        let now = self.now();
        let hold = now + (self.outbound.timeout.as_micros() as i64) + 60_000_000;
        let claimed = {
            let mut w = self.store.write().await?;
            let d = w.claim_delivery(id, now, hold).await?;
            w.commit().await?;
            d
        };
        let Some(d) = claimed else { return Ok(()) };
        let envelope = Envelope {
            kind: &d.event_type,
            run_id: d.run_id.as_deref(),
            gate_id: d.gate_id.as_deref(),
            delivery_id: &d.id,
            payload: &d.payload,
        };
        let body = serde_json::to_vec(&envelope).map_err(anyhow::Error::from)?;
        let outcome = self
            .outbound
            .post(&d.url, body, CHANNEL_USER_AGENT, d.secret.as_deref())
            .await;
        let mut w = self.store.write().await?;
        w.finish_delivery(&d.id, &outcome, self.now()).await?;
        w.commit().await?;
        Ok(())
    }

    /// Pending deliveries that no sender picked up (e.g. left by a process
    /// that stopped before sending): the oldest of each run, so one tick
    /// keeps each run's order and sends to every run at once.
    pub(crate) async fn stale_deliveries(&self, now: Micros) -> Result<Vec<String>> {
        let stale = self
            .read()
            .await?
            .stale_deliveries(now - 30_000_000, now, 100)
            .await?;
        let mut runs: Vec<Option<String>> = Vec::new();
        let mut ids = Vec::new();
        for d in stale {
            if !runs.contains(&d.run_id) {
                runs.push(d.run_id);
                ids.push(d.id);
            }
        }
        Ok(ids)
    }

    /// Send an outbox's calls concurrently (each bounded by the timeout)
    /// and record their outcomes.
    pub(crate) async fn send_outbox(&self, outbox: Outbox) {
        let mut calls: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        for call in outbox.recoveries {
            let engine = self.clone();
            calls.push(Box::pin(async move { engine.send_recovery(call).await }));
        }
        for id in outbox.deliveries {
            let engine = self.clone();
            calls.push(Box::pin(async move { engine.deliver_one(&id).await }));
        }
        futures::stream::iter(calls)
            .buffer_unordered(TICK_IN_FLIGHT)
            .collect::<Vec<()>>()
            .await;
    }

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
            .post(&attempt.webhook_url, body, RECOVERY_USER_AGENT, secret)
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
    fn signature_is_prefixed_lowercase_hex_hmac() {
        // RFC 4231 test case 2.
        let sig = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_keep_protocol_field_order() {
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
        let payload = json!({"a": 1});
        let env = Envelope {
            kind: "run.completed",
            run_id: Some("run_1"),
            gate_id: None,
            delivery_id: "del_1",
            payload: &payload,
        };
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"type":"run.completed","runId":"run_1","gateId":null,"deliveryId":"del_1","payload":{"a":1}}"#
        );
    }

    #[test]
    fn empty_event_filter_means_every_event() {
        assert!(wants(Some(&json!([])), "run.failed"));
        assert!(wants(None, "run.failed"));
        assert!(wants(Some(&json!(["run.failed"])), "run.failed"));
        assert!(!wants(Some(&json!(["run.completed"])), "run.failed"));
    }
}
