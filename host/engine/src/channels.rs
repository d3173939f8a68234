//! Which channels an event reaches, and the `pending` delivery rows that
//! say so. Recorded beside the event in the transaction that appends it
//! (the one caller is [`super::write::Write::event`]); sending them is
//! [`super::deliveries`]'s business, after commit.

use super::Result;
use crate::ids;
use crate::model::{Delivery, Event};
use crate::store::Tx;
use serde_json::{Value, json};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_event_filter_means_every_event() {
        assert!(wants(Some(&json!([])), "run.failed"));
        assert!(wants(None, "run.failed"));
        assert!(wants(Some(&json!(["run.failed"])), "run.failed"));
        assert!(!wants(Some(&json!(["run.completed"])), "run.failed"));
    }
}
